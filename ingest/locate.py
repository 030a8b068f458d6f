"""Finding the 附件二 table in grids of cells and reading its header fields and data rows.

The table is recognised by its numbering row, the cells 2, 3, ... 20 side by side, under header
rows that carry the form's words (场次, 人次, 累计 or 合计). Clerks move the table around, add
rows above it and retype the header, but they keep the numbering row, and every column is named
by its number there.
"""

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterator

from ingest.dates import parse_fill_date
from ingest.errors import TableNotFound
from ingest.form import COLUMNS, REMARK
from ingest.table import Cell, Grid, ReportHeader, ReportRow, WeeklyTable
from ingest.values import parse_count

logger = logging.getLogger(__name__)

# How far above the numbering row the header words are looked for: the form has 4 header rows.
_HEADER_DEPTH = 6

_LABEL = re.compile(
    r"(?P<unit_text>填报(?:乡镇|单位)\s*(?:[（(]\s*(?:单位|乡镇)\s*[)）])?)"
    r"|(?P<reporter>填报人|填表人)"
    r"|(?P<phone>联系电话|手机号码|电话)"
    r"|(?P<fill_date_text>填报(?:时间|日期)|日期)"
)
_VALUE_EDGES = "：:_ \t\u3000"

# A row whose first text starts the 填表说明 or a signature line ends the data rows.
_END_OF_DATA = re.compile(r"^(?:填表说明|说明|注[：:]|填报|填表人|联系电话|(?:单位)?负责人|审核人|制表人)")

# The placeholder a blank template leaves after a label: "填报时间：    年   月   日".
_PLACEHOLDER = re.compile(r"[年月日\s_]*")

NOT_FOUND_REASON = (
    "附件中没有找到附件二周统计表（表头下应有一行2至20的栏目序号）。"
    "请使用县科协下发的附件二表格填写，保留表头和栏目序号行，另存后重新发送。"
)


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
    rows = grid.rows
    index = 0
    while index < len(rows):
        start = _numbering_start(rows[index])
        if start is None or not _has_header_words(rows[max(0, index - _HEADER_DEPTH) : index]):
            index += 1
            continue

        logger.debug("locate: %s: numbering row %d, column 2 at grid column %d", grid.name, index + 1, start + 1)
        table, end = _read_table(grid, index, start)
        yield table
        index = end


def _numbering_start(row: list[Cell]) -> int | None:
    """Return the grid column holding the 2 of a 2..20 numbering row, or None."""
    for start in range(len(row) - len(COLUMNS) + 1):
        if all(_number(row[start + offset].value) == column for offset, column in enumerate(COLUMNS)):
            return start
    return None


def _number(value: object) -> int | None:
    if _is_blank(value):
        return None
    return parse_count(value)


def _has_header_words(rows: list[list[Cell]]) -> bool:
    text = "".join(_compact(cell.value) for row in rows for cell in row)
    return "场次" in text and "人次" in text and ("累计" in text or "合计" in text)


def _read_table(grid: Grid, numbering: int, start: int) -> tuple[WeeklyTable, int]:
    remark_column = _remark_column(grid.rows[max(0, numbering - _HEADER_DEPTH) : numbering], start)

    data: list[ReportRow] = []
    end = numbering + 1
    while end < len(grid.rows) and not _ends_data(grid.rows[end]):
        row = _data_row(grid, end, start, remark_column, len(data) + 1)
        if row is not None:
            data.append(row)
        end += 1

    above = [*grid.text_above, *(_line(row) for row in grid.rows[:numbering])]
    below = [*(_line(row) for row in grid.rows[end:]), *grid.text_below]
    header = _read_header(above, below)

    return WeeklyTable(source=grid.name, header=header, rows=data), end


def _remark_column(header_rows: list[list[Cell]], start: int) -> int:
    for row in header_rows:
        for position, cell in enumerate(row):
            if _compact(cell.value) == REMARK:
                return position
    return start + len(COLUMNS)


def _ends_data(row: list[Cell]) -> bool:
    first = next((cell.value for cell in row if not _is_blank(cell.value)), None)
    return bool(_END_OF_DATA.match(_compact(first)))


def _data_row(grid: Grid, index: int, start: int, remark_column: int, position: int) -> ReportRow | None:
    """Return the row's cells for columns 2..20, or None for an empty template row."""
    row = grid.rows[index]
    row_ref = f"{grid.name}第{index + 1}行"
    cells = {column: _cell_at(row, start + offset, row_ref) for offset, column in enumerate(COLUMNS)}

    if all(_is_blank(cell.value) for cell in cells.values()):
        return None

    remark = _text(_cell_at(row, remark_column, row_ref).value).strip()
    return ReportRow(index=position, ref=row_ref, cells=cells, remark=remark)


def _cell_at(row: list[Cell], position: int, row_ref: str) -> Cell:
    if position < len(row):
        return row[position]
    return Cell(value=None, ref=row_ref)


def _read_header(above: list[str], below: list[str]) -> ReportHeader:
    """Read the 填报 line: the lines above the table first, then those below for what is missing."""
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


def _line(row: list[Cell]) -> str:
    return "  ".join(_text(cell.value).strip() for cell in row if not _is_blank(cell.value))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _compact(value: object) -> str:
    """Return the text without any whitespace, so "食品安全科\\n普宣传" matches the form's name."""
    return "".join(unicodedata.normalize("NFKC", _text(value)).split())


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
