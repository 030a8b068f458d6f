"""Reading of .xlsx and .xlsm workbooks into grids of cells.

The workbook is opened in openpyxl's read-only mode, which streams each sheet's XML, so a sheet
whose used range runs to row 1,048,576 costs time but not a cell object per empty position.
Macros in an .xlsm are never loaded or run, only the cell values are read.
Read-only mode does not expose merged ranges. Excel keeps only the top-left value when cells are
merged, so the covered cells read as blanks. NOTE: a file that stores values in covered cells
(written by some other tool) would have them read as separate cells.

Files saved by WPS and other programs need three corrections, each made here. The sheet's
``dimension`` element can be wrong, and read-only mode would trust it. openpyxl does not know the
Chinese built-in date formats. Formulas written by programs other than Excel and WPS can lack
their cached results.
"""

import io
import logging
import warnings
import zipfile
import zlib

import openpyxl
from defusedxml.ElementTree import ParseError
from lxml.etree import LxmlError
from openpyxl.utils import get_column_letter

from ingest.errors import UnreadableFile
from ingest.readers.formulas import compute_formulas
from ingest.readers.ooxml import check_package, sheet_parts, uncached_formulas
from ingest.readers.rows import RowCollector
from ingest.table import Grid

logger = logging.getLogger(__name__)

DAMAGED_REASON = "附件无法作为Excel工作簿打开，文件可能已损坏或不完整。请用Excel或WPS打开确认后重新保存，再作为附件发送。"

# Exceptions that openpyxl and zipfile raise for a damaged package or worksheet, found by mutating
# real files. openpyxl parses some parts with lxml when it is installed. zipfile raises
# NotImplementedError for a member whose compression method field is unknown.
_DAMAGED_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, TypeError, OSError, ParseError,
                   LxmlError, NotImplementedError)

# Built-in number formats that a Chinese Excel or WPS shows as dates, such as 31 for
# yyyy"年"m"月"d"日" (ECMA-376 Part 1, 18.8.30 lists them for zh-cn). The file stores only the id,
# and openpyxl 3.1 maps ids 14-22 and 45-47 alone to dates, so it reads these cells as numbers.
_CHINESE_DATE_FORMATS = frozenset([*range(27, 37), *range(50, 59)])


def read_xlsx(data: bytes) -> list[Grid]:
    """Read every visible worksheet into a :class:`Grid`, one grid row per sheet row.

    Grid row ``i`` is sheet row ``i + 1``. Empty rows are kept so that the positions stay true,
    and the rows after the last non-empty one are dropped. Cached formula results are read; a
    formula saved without one is computed when :mod:`ingest.readers.formulas` can.
    """
    archive = _open_package(data)
    workbook = _open(data)
    try:
        _mark_chinese_dates(workbook)
        # A hidden sheet is not part of what the clerk sees and sends, so it is not read.
        collectors = [_read_sheet(sheet) for sheet in workbook.worksheets if sheet.sheet_state == "visible"]
    except _DAMAGED_ERRORS as err:
        raise UnreadableFile(f"xlsx: cannot read worksheet: {err}", DAMAGED_REASON) from err
    finally:
        workbook.close()

    _compute_uncached(archive, collectors)
    return [collector.grid() for collector in collectors]


def _open_package(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED_ERRORS as err:
        raise UnreadableFile(f"xlsx: not a ZIP package: {err}", DAMAGED_REASON) from err
    check_package(archive)
    return archive


def _open(data: bytes):
    # openpyxl warns about features it drops, such as data validation extensions. Cell values
    # do not depend on them, so the warnings are logged instead of raised.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except _DAMAGED_ERRORS as err:
            raise UnreadableFile(f"xlsx: cannot open workbook: {err}", DAMAGED_REASON) from err

    for warning in caught:
        logger.debug("xlsx: openpyxl warning: %s", warning.message)
    return workbook


def _mark_chinese_dates(workbook) -> None:
    # openpyxl has no public hook for built-in formats it does not know. Its read-only sheets
    # convert a number to a date when the cell's style index is in _date_formats, so the styles
    # using a Chinese date format are added there.
    styles = getattr(workbook, "_cell_styles", None)
    date_styles = getattr(workbook, "_date_formats", None)
    if styles is None or not isinstance(date_styles, set):
        logger.warning("xlsx: openpyxl %s has no style index; Chinese date formats read as numbers", openpyxl.__version__)
        return

    for index, style in enumerate(styles):
        if style.numFmtId in _CHINESE_DATE_FORMATS:
            date_styles.add(index)


def _read_sheet(sheet) -> RowCollector:
    # openpyxl pads every row to the stored dimension, which WPS sometimes writes as A1 alone and
    # which can be A1:XFD1048576 after a clerk formats whole rows. Without it, each row is as wide
    # as its last stored cell, and no row is cut short.
    sheet.reset_dimensions()

    title = sheet.title
    collector = RowCollector(title, lambda row, column: f"{title}!{get_column_letter(column)}{row}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for values in sheet.iter_rows(values_only=True):
            if not collector.add(values):
                break

    for warning in caught:
        # openpyxl warns, for example, of a date cell whose serial number is out of range. It
        # reads such a cell as #VALUE!, which the rules report as not a number.
        logger.info("xlsx: sheet %s: %s", title, warning.message)
    return collector


def _compute_uncached(archive: zipfile.ZipFile, collectors: list[RowCollector]) -> None:
    parts = sheet_parts(archive)
    for collector in collectors:
        part = parts.get(collector.name)
        if part is None:
            logger.info("xlsx: sheet %s: worksheet part not found, formulas not checked", collector.name)
            continue

        try:
            formulas = uncached_formulas(archive, part, max_row=len(collector.rows))
        except _DAMAGED_ERRORS as err:
            raise UnreadableFile(f"xlsx: sheet {collector.name}: cannot scan formulas: {err}", DAMAGED_REASON) from err
        if not formulas:
            continue

        logger.info("xlsx: sheet %s: computing %d formulas saved without results", collector.name, len(formulas))
        for (row, column), value in compute_formulas(formulas, collector.rows, collector.name).items():
            collector.set(row, column, value)
