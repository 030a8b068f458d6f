"""Reading of Excel 97-2003 .xls workbooks (BIFF8, also BIFF5), as Excel, WPS and LibreOffice save
them, into grids of cells.

xlrd reads the cached result of every formula; a BIFF FORMULA record always carries one. It reports
merged ranges only with ``formatting_info=True``, which also makes it keep formatted blank cells,
so memory grows with the number of formatted cells in the file (bounded by the attachment size).
"""

import io
import logging
import struct

import xlrd
from openpyxl.utils import get_column_letter
from xlrd.compdoc import CompDocError

from ingest.errors import UnreadableFile
from ingest.readers.rows import MAX_ROWS, RowCollector
from ingest.table import Grid

logger = logging.getLogger(__name__)

DAMAGED_REASON = "附件无法作为Excel（.xls）工作簿打开，文件可能已损坏或不完整。请用Excel或WPS打开确认后另存为.xlsx格式，再作为附件发送。"
ENCRYPTED_REASON = "附件设置了打开密码，无法读取。请去掉文件密码后重新发送。"

# Exceptions that xlrd raises for damaged or truncated files besides XLRDError, found by mutating
# real files. It checks some structures with assert statements and walks the container's
# directory tree recursively, so a cyclic tree ends in RecursionError.
_DAMAGED_ERRORS = (xlrd.XLRDError, CompDocError, struct.error, IndexError, KeyError, ValueError,
                   UnicodeDecodeError, AssertionError, TypeError, EOFError, OverflowError, RecursionError)

# Merged ranges are applied row by row. A file could declare thousands of ranges, each over
# 65,536 rows, so ranges past this many covered row segments are not applied.
_MAX_COVERED_SEGMENTS = 200_000


def read_xls(data: bytes) -> list[Grid]:
    """Read every visible worksheet into a :class:`Grid` named after the sheet, with refs like
    ``Sheet1!F8``. A merged cell keeps its value at its top-left position only.

    Raises UnreadableFile for a damaged or password-protected workbook.
    """
    book = _open(data)
    try:
        grids = []
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            # A hidden sheet is not part of what the clerk sees and sends, so it is not read.
            if sheet.visibility == 0:
                grids.append(_read_sheet(book, sheet))
            book.unload_sheet(index)
        return grids
    except _DAMAGED_ERRORS as err:
        raise UnreadableFile(f"xls: cannot read worksheet: {err}", DAMAGED_REASON) from err
    finally:
        book.release_resources()


def _open(data: bytes) -> xlrd.Book:
    messages = io.StringIO()
    try:
        book = xlrd.open_workbook(
            file_contents=data,
            formatting_info=True,
            on_demand=True,
            ragged_rows=True,
            logfile=messages,
            # Files from some generators fail xlrd's "Workbook corruption: seen[2] == 4" check
            # on the container although Excel and LibreOffice open them. Reading them is safe.
            ignore_workbook_corruption=True,
        )
    except xlrd.XLRDError as err:
        if "encrypted" in str(err).lower():
            raise UnreadableFile("xls: workbook is encrypted", ENCRYPTED_REASON) from err
        raise UnreadableFile(f"xls: cannot open workbook: {err}", DAMAGED_REASON) from err
    except _DAMAGED_ERRORS as err:
        raise UnreadableFile(f"xls: cannot open workbook: {err}", DAMAGED_REASON) from err
    finally:
        if messages.getvalue():
            logger.debug("xls: xlrd: %s", messages.getvalue().strip())
    return book


def _read_sheet(book: xlrd.Book, sheet) -> Grid:
    name = sheet.name
    collector = RowCollector(name, lambda row, column: f"{name}!{get_column_letter(column)}{row}")
    covered = _covered_segments(sheet.merged_cells, min(sheet.nrows, MAX_ROWS))

    for row in range(sheet.nrows):
        values = [_value(book, cell_type, value) for cell_type, value in zip(sheet.row_types(row), sheet.row_values(row))]
        for start, end in covered.get(row, ()):
            values[start:end] = [None] * len(values[start:end])
        if not collector.add(values):
            break

    return collector.grid()


def _covered_segments(merged: list[tuple[int, int, int, int]], rows: int) -> dict[int, list[tuple[int, int]]]:
    """Return, per row, the column spans that merged ranges cover, leaving out each top-left cell.

    xlrd gives ranges as (first row, row after last, first column, column after last).
    """
    covered: dict[int, list[tuple[int, int]]] = {}
    count = 0
    for first_row, end_row, first_column, end_column in merged:
        for row in range(first_row, min(end_row, rows)):
            start = first_column + 1 if row == first_row else first_column
            if start < end_column:
                covered.setdefault(row, []).append((start, end_column))
                count += 1
            if count >= _MAX_COVERED_SEGMENTS:
                logger.info("xls: more than %d merged row segments, the rest not applied", count)
                return covered
    return covered


def _value(book: xlrd.Book, cell_type: int, value: object) -> object:
    if cell_type in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if cell_type == xlrd.XL_CELL_NUMBER:
        return int(value) if float(value).is_integer() else value
    if cell_type == xlrd.XL_CELL_DATE:
        return _date(book, value)
    if cell_type == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if cell_type == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(value, "#N/A")
    return value


def _date(book: xlrd.Book, serial: float) -> object:
    try:
        return xlrd.xldate.xldate_as_datetime(serial, book.datemode)
    except (xlrd.xldate.XLDateError, OverflowError, ValueError):
        # A negative or huge serial in a date-formatted cell: keep the number as written.
        return serial
