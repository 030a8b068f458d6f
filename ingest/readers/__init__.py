"""Readers that turn attachment bytes into grids of cells, one per worksheet or table.

Readers do no I/O. Word 97 .doc and WPS .wps files, and WPS .et files without a BIFF workbook,
are converted to .docx or .xlsx before they are read. The pipeline runs that converter, not this
package.
"""

from ingest.errors import UnreadableFile
from ingest.readers.csv import read_csv
from ingest.readers.docx import read_docx
from ingest.readers.html import read_html
from ingest.readers.xls import ENCRYPTED_REASON, read_xls
from ingest.readers.xlsx import read_xlsx
from ingest.table import Grid

_READERS = {
    "xlsx": read_xlsx,
    # Macros are never loaded: openpyxl reads an .xlsm's cell values and leaves its VBA part alone.
    "xlsm": read_xlsx,
    "docx": read_docx,
    "xls": read_xls,
    "csv": read_csv,
    "html": read_html,
}

_SEND_AGAIN = "请发送填写好的附件二Excel（.xlsx）或Word（.docx）文件。"
_SAVE_AS = "请在Word或WPS中打开后“另存为”.docx格式（表格文件另存为.xlsx格式），再作为附件发送。"

# Reasons for the reply to the clerk, by the kind that has no reader.
_REASONS = {
    "doc": "附件是旧版Word格式（.doc）文件，需要转换后才能读取。" + _SAVE_AS,
    "wps": "附件是WPS文字格式（.wps）文件，需要转换后才能读取。" + _SAVE_AS,
    "et": "附件是WPS表格格式（.et）文件，需要转换后才能读取。请在WPS中打开后“另存为”.xlsx格式，再作为附件发送。",
    "encrypted": ENCRYPTED_REASON,
    "pdf": "附件是PDF文件，无法读取其中的数字。" + _SEND_AGAIN,
    "image": "附件是图片（照片或截图），无法读取其中的数字。" + _SEND_AGAIN,
    "zip": "附件是压缩包，请直接把附件二表格作为附件发送。",
    "rar": "请直接发送表格文件，或改用 zip 格式压缩。",
    "7z": "请直接发送表格文件，或改用 zip 格式压缩。",
    "eml": "附件是一封邮件，请直接把附件二表格作为附件发送。",
}
_UNKNOWN_REASON = "附件不是可读取的表格文件。" + _SEND_AGAIN

READABLE_KINDS = frozenset(_READERS)


def read_grids(data: bytes, kind: str) -> list[Grid]:
    """Read the file with the reader for ``kind`` (as returned by ``ingest.sniff.sniff_kind``).

    Reads xlsx, xlsm, docx, xls, csv and html. Raises UnreadableFile for a damaged file and, with
    the reason to send the clerk, for a kind no reader handles.
    """
    reader = _READERS.get(kind)
    if reader is None:
        raise UnreadableFile(f"readers: no reader for kind {kind!r}", unreadable_reason(kind))
    return reader(data)


def unreadable_reason(kind: str) -> str:
    """Return the Chinese sentence telling the clerk what to send instead of a file of ``kind``."""
    return _REASONS.get(kind, _UNKNOWN_REASON)
