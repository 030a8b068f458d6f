"""Reading of a table saved as CSV into one grid.

Excel's "CSV UTF-8" writes a byte order mark; Excel and WPS on Chinese Windows write plain "CSV"
in the ANSI code page, GBK, which GB18030 decodes as a superset. Tab-separated text ("Unicode
text", often UTF-16) is read too, and some web systems export CSV under an .xls name.
"""

import codecs
import csv
import io
import logging

from openpyxl.utils import get_column_letter

from ingest.errors import UnreadableFile
from ingest.readers.rows import RowCollector
from ingest.table import Grid

logger = logging.getLogger(__name__)

GRID_NAME = "CSV"

ENCODING_REASON = "附件中的CSV文件编码无法识别。请用Excel或WPS打开后另存为.xlsx格式，再作为附件发送。"
DAMAGED_REASON = "附件中的CSV文件无法读取，内容可能已损坏。请用Excel或WPS打开后另存为.xlsx格式，再作为附件发送。"

_SAMPLE_CHARS = 64 * 1024


def read_csv(data: bytes) -> list[Grid]:
    """Read the text as one grid named ``CSV`` with refs like ``CSV!F8``; every value is text.

    Raises UnreadableFile when the bytes are neither UTF-8 (with or without a byte order mark),
    UTF-16 with a byte order mark, nor GB18030.
    """
    text = decode_text(data)
    dialect = _dialect(text[:_SAMPLE_CHARS])

    collector = RowCollector(GRID_NAME, lambda row, column: f"{GRID_NAME}!{get_column_letter(column)}{row}")
    try:
        for values in csv.reader(io.StringIO(text, newline=""), dialect):
            if not collector.add(values):
                break
    except csv.Error as err:
        raise UnreadableFile(f"csv: cannot parse: {err}", DAMAGED_REASON) from err
    return [collector.grid()]


def decode_text(data: bytes) -> str:
    """Return the text of a CSV file by its byte order mark, else as UTF-8, else as GB18030."""
    for mark, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(mark):
            return _decode(data, encoding)

    # GBK text with Chinese characters is almost never valid UTF-8, so trying UTF-8 first is safe.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode(data, "gb18030")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"csv: not valid {encoding}: {err}", ENCODING_REASON) from err


def _dialect(sample: str) -> type[csv.Dialect]:
    # csv.Sniffer also guesses quote characters and can pick a letter as the delimiter, so only
    # the two delimiters Excel writes are compared.
    if sample.count("\t") > sample.count(","):
        return csv.excel_tab
    return csv.excel
