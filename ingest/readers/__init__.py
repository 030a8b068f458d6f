"""Readers that turn attachment bytes into grids of cells, one per worksheet or Word table."""

from ingest.errors import UnreadableFile
from ingest.readers.docx import read_docx
from ingest.readers.xlsx import read_xlsx
from ingest.table import Grid

_READERS = {"xlsx": read_xlsx, "xlsm": read_xlsx, "docx": read_docx}

_SEND_AGAIN = "请发送填写好的附件二Excel（.xlsx）或Word（.docx）文件。"

# Reasons for the reply to the clerk, by the kind that has no reader.
_REASONS = {
    "xls": "附件是旧版Excel格式（.xls），暂时无法读取。请在Excel或WPS中另存为.xlsx格式后重新发送。",
    "doc": "附件是旧版Word格式（.doc），暂时无法读取。请在Word或WPS中另存为.docx格式后重新发送。",
    "pdf": "附件是PDF文件，无法读取其中的数字。" + _SEND_AGAIN,
    "image": "附件是图片，无法读取其中的数字。" + _SEND_AGAIN,
    "zip": "附件是压缩包，请不要压缩，直接把附件二表格作为附件发送。",
    "rar": "附件是压缩包，请不要压缩，直接把附件二表格作为附件发送。",
    "7z": "附件是压缩包，请不要压缩，直接把附件二表格作为附件发送。",
}
_UNKNOWN_REASON = "附件不是可读取的表格文件。" + _SEND_AGAIN


def read_grids(data: bytes, kind: str) -> list[Grid]:
    """Read the file with the reader for ``kind`` (as returned by ``ingest.sniff.sniff_kind``).

    Raises UnreadableFile for a damaged file and for a kind no reader handles.
    """
    reader = _READERS.get(kind)
    if reader is None:
        raise UnreadableFile(f"readers: no reader for kind {kind!r}", _REASONS.get(kind, _UNKNOWN_REASON))
    return reader(data)
