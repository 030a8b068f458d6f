"""Finding the 附件二 tables in grids of cells and reading their 填报 lines and data rows.

A table is recognised by its numbering row (the cells 2, 3, ... 20 side by side, maybe after a 1)
under header rows with the form's words, or, when the clerk deleted the numbering row, by header
rows whose words name all 19 columns (see :mod:`ingest.columns`). A table may start anywhere in a
sheet, under notice text, and a sheet may hold several tables one below the other.
"""

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from ingest.calendar import week_from_text
from ingest.columns import (
    HEADER_DEPTH,
    ColumnMap,
    cell_text,
    compact,
    has_header_words,
    header_columns,
    header_top,
    is_header_row,
    numbering_positions,
)
from ingest.dates import parse_fill_date
from ingest.errors import TableNotFound
from ingest.table import Cell, Grid, ReportHeader, ReportRow, WeeklyTable
from ingest.values import is_zero_mark

logger = logging.getLogger(__name__)

# A row whose first text starts the 填表说明 or a signature line ends the data rows.
_END_OF_DATA = re.compile(r"^(?:填表说明|说明|注[：:]|备注[：:]|填报|填表人|联系电话|(?:单位)?负责人|审核人|制表人|附件)")

_LABEL = re.compile(
    r"(?P<unit_text>填报(?:乡镇|单位)\s*(?:[（(]\s*(?:单位|乡镇)\s*[)）])?)"
    r"|(?P<reporter>填报人|填表人)"
    r"|(?P<phone>联系电话|手机号码|电话)"
    r"|(?P<fill_date_text>填报(?:时间|日期)|日期)"
)
_VALUE_EDGES = "：:_ \t\u3000"

# The placeholder a blank template leaves after a label: "填报时间：    年   月   日".
_PLACEHOLDER = re.compile(r"[年月日\s_]*")

# Words of a title or header row: such a row starts the next table, not a data row.
_TITLE_WORDS = ("统计表", "周报表")

# The label of a total row: 合计, 总计, 全镇合计, 小计, 合 计.
_TOTAL_LABEL = re.compile(r".{0,6}(?:合计|总计|小计|汇总)")

NOT_FOUND_REASON = (
    "附件中没有找到附件二周统计表（表头应有“场次”“人次”“累计”等栏目名称，或有一行2至20的栏目序号）。"
    "请使用县科协下发的附件二表格填写，保留表头和栏目序号行，另存后重新发送。"
)


class _RowKind(StrEnum):
    """Kind of a row under the header: values, a crossed-out template row, a 合计 row, nothing."""

    DATA = "data"
    FILLER = "filler"
    TOTAL = "total"
    EMPTY = "empty"


@dataclass(frozen=True)
class _Layout:
    """The position of one table in its grid: its columns, its last header row and first data row."""

    columns: ColumnMap
    top: int
    anchor: int
    data_start: int


@dataclass(frozen=True)
class _Span:
    """A located table before its 填报 line is read: the layout and the rows after its data."""

    layout: _Layout
    rows: list[ReportRow]
    total: ReportRow | None
    end: int


def locate_tables(grids: list[Grid]) -> list[WeeklyTable]:
    """Return every 附件二 table found in the grids, in file order.

    Raises TableNotFound when no grid contains one.
    """
    tables = [table for grid in grids for table in _tables_in(grid)]
    if not tables:
        names = ", ".join(grid.name for grid in grids) or "none"
        raise TableNotFound(f"locate: no weekly table in grids {names}", NOT_FOUND_REASON)
    return tables


def _tables_in(grid: Grid) -> Iterator[WeeklyTable]:
    spans = list(_spans(grid))
    for number, span in enumerate(spans):
        previous_end = spans[number - 1].end if number else 0
        next_top = spans[number + 1].layout.top if number + 1 < len(spans) else None
        yield _table(grid, span, previous_end, next_top)


def _spans(grid: Grid) -> Iterator[_Span]:
    # NOTE: of two tables side by side, only the left one is found, and only by its numbering row.
    index = 0
    while index < len(grid.rows):
        layout = _layout_at(grid.rows, index)
        if layout is None:
            index += 1
            continue

        logger.debug("locate: %s: table header ends at row %d, data from row %d", grid.name, layout.anchor + 1, layout.data_start + 1)
        span = _read_rows(grid, layout)
        yield span
        index = span.end


def _layout_at(rows: list[list[Cell]], index: int) -> _Layout | None:
    """Return the table whose numbering row, or last header row, is ``rows[index]``."""
    numbering = numbering_positions(rows[index])
    if numbering is not None:
        if not has_header_words(rows[max(0, index - HEADER_DEPTH) : index]):
            return None
        return _numbered_layout(rows, index, numbering)

    if not is_header_row(rows[index]):
        return None
    following = rows[index + 1] if index + 1 < len(rows) else []
    if is_header_row(following) or numbering_positions(following) is not None:
        return None

    columns = header_columns(rows, index)
    if columns is None:
        return None
    return _Layout(columns=columns, top=header_top(rows, index), anchor=index, data_start=index + 1)


def _numbered_layout(rows: list[list[Cell]], index: int, numbering: dict[int, int]) -> _Layout:
    """Map by the numbering row, unless the header words name every column differently.

    A clerk who adds a column sometimes renumbers the whole row from 1, so that 2 is over 村（个）.
    The words under which the clerk typed the values are then the better guide.
    """
    top = header_top(rows, index - 1) if index else index
    words = header_columns(rows, index - 1) if index else None
    if words is not None and words.positions != numbering:
        logger.info("locate: numbering row %d disagrees with the header words; the words are used", index + 1)
        return _Layout(columns=words, top=top, anchor=index, data_start=index + 1)

    remark = words.remark if words is not None else _remark_position(rows[max(0, index - HEADER_DEPTH) : index])
    columns = ColumnMap(positions=numbering, remark=remark)
    return _Layout(columns=columns, top=top, anchor=index, data_start=index + 1)


def _remark_position(header_rows: list[list[Cell]]) -> int | None:
    for row in header_rows:
        for position, cell in enumerate(row):
            if compact(cell.value) == "备注":
                return position
    return None


def _read_rows(grid: Grid, layout: _Layout) -> _Span:
    """Read the data rows under the header up to the end of the table.

    A row whose value cells contain only zero marks (/, —, 无) is a template row the clerk crossed
    out, so it is read as data only when the table has no other data row. A 合计 row under data
    rows is the table's total. When every row is labelled 合计, those rows are the data rows.
    """
    rows: list[ReportRow] = []
    fillers: list[ReportRow] = []
    totals: list[ReportRow] = []

    end = layout.data_start
    while end < len(grid.rows) and not _ends_data(grid.rows[end]):
        kind, row = _data_row(grid, end, layout.columns)
        if kind is _RowKind.DATA:
            rows.append(row)
        elif kind is _RowKind.FILLER:
            fillers.append(row)
        elif kind is _RowKind.TOTAL:
            totals.append(row)
        end += 1

    total = None
    if rows and totals:
        # NOTE: with 小计 rows above a 合计 row, only the last one is checked.
        total = _as_total(totals[-1])
    elif totals:
        rows = totals
    elif not rows:
        rows = fillers[:1]

    rows = [_renumber(row, position) for position, row in enumerate(rows, start=1)]
    return _Span(layout=layout, rows=rows, total=total, end=end)


def _ends_data(row: list[Cell]) -> bool:
    first = next((cell.value for cell in row if not _is_blank(cell.value)), None)
    if _END_OF_DATA.match(compact(first)):
        return True

    if numbering_positions(row) is not None or is_header_row(row):
        return True
    return any(word in compact(first) for word in _TITLE_WORDS)


def _data_row(grid: Grid, index: int, columns: ColumnMap) -> tuple[_RowKind, ReportRow | None]:
    """Classify one row under the header and read it (None for an empty row).

    The row's ``index`` is its grid row number until the table's rows are numbered.
    """
    row = grid.rows[index]
    row_ref = f"{grid.name}第{index + 1}行"
    cells = {column: _cell_at(row, position, row_ref) for column, position in columns.positions.items()}
    remark = cell_text(_cell_at(row, columns.remark, row_ref).value).strip() if columns.remark is not None else ""
    report_row = ReportRow(index=index + 1, ref=row_ref, cells=cells, remark=remark)

    # A 合计 row left blank in the template is an empty row, not a total of zeros.
    values = [cell.value for cell in cells.values() if not _is_total_label(cell.value)]
    if all(_is_blank(value) for value in values):
        return _RowKind.EMPTY, None
    if _has_total_label(row, columns):
        return _RowKind.TOTAL, report_row
    if all(_is_blank(value) or is_zero_mark(value) for value in values):
        return _RowKind.FILLER, report_row
    return _RowKind.DATA, report_row


def _has_total_label(row: list[Cell], columns: ColumnMap) -> bool:
    return any(position != columns.remark and _is_total_label(cell.value) for position, cell in enumerate(row))


def _as_total(row: ReportRow) -> ReportRow:
    """Return the 合计 row without the cell of its label, numbered 0 as no data row is."""
    cells = {column: cell for column, cell in row.cells.items() if not _is_total_label(cell.value)}
    return ReportRow(index=0, ref=row.ref, cells=cells, remark=row.remark)


def _is_total_label(value: object) -> bool:
    return isinstance(value, str) and bool(_TOTAL_LABEL.fullmatch(compact(value)))


def _renumber(row: ReportRow, position: int) -> ReportRow:
    return ReportRow(index=position, ref=row.ref, cells=row.cells, remark=row.remark)


def _cell_at(row: list[Cell], position: int, row_ref: str) -> Cell:
    if position < len(row):
        return row[position]
    return Cell(value=None, ref=row_ref)


def _table(grid: Grid, span: _Span, previous_end: int, next_top: int | None) -> WeeklyTable:
    """Build the table with the 填报 line and the week read from the text around it."""
    top = span.layout.top
    above = [*grid.text_above, *_lines(grid.rows[:top])]
    own_above = [*(grid.text_above if previous_end == 0 else []), *_lines(grid.rows[previous_end:top])]
    below = _lines_below(grid, span.end, next_top)

    return WeeklyTable(
        source=grid.name,
        header=read_fill_line(above, below),
        rows=span.rows,
        total=span.total,
        week_hint=_week_hint(own_above, grid.name),
    )


def read_fill_line(above: list[str], below: list[str]) -> ReportHeader:
    """Read the 填报 line: the lines above the table, nearest first, then those below it."""
    fields: dict[str, str] = {}
    for line in [*reversed(above), *below]:
        for name, value in _labelled_values(line).items():
            fields.setdefault(name, value)

    date_text = fields.get("fill_date_text")
    return ReportHeader(
        unit_text=fields.get("unit_text"),
        reporter=fields.get("reporter"),
        phone=fields.get("phone"),
        fill_date=parse_fill_date(date_text) if date_text else None,
        fill_date_text=date_text,
    )


def _labelled_values(line: str) -> dict[str, str]:
    """Split one line at its labels, e.g. ``填报人：李明    联系电话：138...`` into its values."""
    matches = list(_LABEL.finditer(line))
    values: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following else len(line)
        value = line[match.end() : end].strip(_VALUE_EDGES)
        if not _PLACEHOLDER.fullmatch(value):
            values.setdefault(match.lastgroup, value)
    return values


def _lines_below(grid: Grid, end: int, next_top: int | None) -> list[str]:
    """Return the lines under the table, up to the title or header of the next table."""
    if next_top is None:
        return [*_lines(grid.rows[end:]), *grid.text_below]

    rows = grid.rows[end:next_top]
    title = next((number for number, row in enumerate(rows) if _has_title_word(row)), len(rows))
    return _lines(rows[:title])


def _has_title_word(row: list[Cell]) -> bool:
    return any(word in compact(cell.value) for cell in row for word in _TITLE_WORDS)


def _week_hint(lines_above: list[str], grid_name: str) -> int | None:
    """Return the week of the nearest 第N周 above the table, else the one in the sheet name."""
    for line in reversed(lines_above):
        week = week_from_text(line)
        if week is not None:
            return week
    return week_from_text(grid_name)


def _lines(rows: list[list[Cell]]) -> list[str]:
    lines = ("  ".join(cell_text(cell.value).strip() for cell in row if not _is_blank(cell.value)) for row in rows)
    return [line for line in lines if line]


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
