"""Reading of .xlsx workbooks into grids of cells.

The workbook is opened in openpyxl's read-only mode, which streams each sheet's XML, so a sheet
whose used range runs to row 1,048,576 costs time but not a cell object per empty position.
Read-only mode does not expose merged ranges. Excel keeps only the top-left value when cells are
merged, so the covered cells read as blanks. NOTE: a file that stores values in covered cells
(written by some other tool) would have them read as separate cells.
"""

import io
import logging
import warnings
import zipfile

import openpyxl
from openpyxl.utils import get_column_letter

from ingest.errors import UnreadableFile
from ingest.table import Cell, Grid

logger = logging.getLogger(__name__)

_EMPTY_ROW: list[Cell] = []

# A weekly table is a few dozen rows. Reading stops at this row, or after this many consecutive
# empty rows, so a used range stretched to row 1,048,576 by formatting is not parsed to its end.
# NOTE: both limits are judgement calls, and content past them is not read.
_MAX_ROWS = 100_000
_MAX_EMPTY_RUN = 10_000

# Rows are padded with blank cells up to this many columns, so that a blank in the table still
# has its own reference. The form is 20 columns wide; a stray value in column XFD must not make
# every row 16,384 cells long.
_PAD_COLUMNS = 64

DAMAGED_REASON = "附件无法作为Excel工作簿打开，文件可能已损坏或不完整。请用Excel或WPS打开确认后重新保存，再作为附件发送。"


def read_xlsx(data: bytes) -> list[Grid]:
    """Read every visible worksheet into a :class:`Grid`, one grid row per sheet row.

    Grid row ``i`` is sheet row ``i + 1``. Empty rows are kept (as one shared empty list) so that
    the positions stay true, and the rows after the last non-empty one are dropped. Each kept row
    is padded with blank cells to the width of the widest row, up to 64 columns. Cached formula results are read,
    never the formulas.
    """
    workbook = _open(data)
    try:
        # A hidden sheet is not part of what the clerk sees and sends, so it is not read.
        return [_read_sheet(sheet) for sheet in workbook.worksheets if sheet.sheet_state == "visible"]
    finally:
        workbook.close()


def _open(data: bytes):
    # openpyxl warns about features it drops, such as data validation extensions. Cell values
    # do not depend on them, so the warnings are logged instead of raised.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as err:
            raise UnreadableFile(f"xlsx: cannot open workbook: {err}", DAMAGED_REASON) from err

    for warning in caught:
        logger.debug("xlsx: openpyxl warning: %s", warning.message)
    return workbook


def _read_sheet(sheet) -> Grid:
    # openpyxl pads every row to the stored dimension, which can be A1:XFD1048576 after a clerk
    # formats whole rows. Without it, each row is as wide as its last stored cell.
    sheet.reset_dimensions()

    rows: list[list[Cell]] = []
    last_filled = 0
    for number, values in enumerate(sheet.iter_rows(max_row=_MAX_ROWS, values_only=True), start=1):
        cells = _row_cells(sheet.title, number, values)
        rows.append(cells or _EMPTY_ROW)
        if cells:
            last_filled = number
        elif number - last_filled >= _MAX_EMPTY_RUN:
            logger.info("xlsx: sheet %s: stopped reading at row %d after %d empty rows", sheet.title, number, _MAX_EMPTY_RUN)
            break

    del rows[last_filled:]
    _pad(sheet.title, rows)
    return Grid(name=sheet.title, rows=rows)


def _row_cells(title: str, number: int, values: tuple) -> list[Cell]:
    width = len(values)
    while width and _is_blank(values[width - 1]):
        width -= 1

    return [
        Cell(value=values[index], ref=f"{title}!{get_column_letter(index + 1)}{number}")
        for index in range(width)
    ]


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _pad(title: str, rows: list[list[Cell]]) -> None:
    width = min(max((len(row) for row in rows), default=0), _PAD_COLUMNS)
    for number, row in enumerate(rows, start=1):
        if row and len(row) < width:
            row.extend(
                Cell(value=None, ref=f"{title}!{get_column_letter(index + 1)}{number}")
                for index in range(len(row), width)
            )
