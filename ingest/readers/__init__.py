"""Readers that turn attachment bytes into grids of cells, one per worksheet or Word table."""

from ingest.errors import UnreadableFile
from ingest.readers.docx import read_docx
from ingest.readers.xlsx import read_xlsx
from ingest.table import Grid

_READERS = {"xlsx": read_xlsx, "xlsm": read_xlsx, "docx": read_docx}


def read_grids(data: bytes, kind: str) -> list[Grid]:
    """Read the file with the reader for ``kind`` (as returned by ``ingest.sniff.sniff_kind``).

    Raises UnreadableFile for a damaged file and for a kind no reader handles.
    """
    reader = _READERS.get(kind)
    if reader is None:
        raise UnreadableFile(
            f"readers: no reader for kind {kind!r}",
            "附件不是可读取的Excel（.xlsx）或Word（.docx）文件，请将附件二另存为.xlsx或.docx格式后重新发送。",
        )
    return reader(data)
