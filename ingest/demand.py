"""Finding the 附件1 demand form (活动需求征集表) in grids of cells.

Besides the weekly table 附件二, the county's notice requests 附件1 once from each township. This
activity demand form has a 填表单位/联系人/联系电话 line above a seven-column table (序号,
活动所需专家, 活动针对人群, 活动时间, 活动地点及方式, 活动内容, 所需科普资源) with numbered rows.
The form is recognised by the words of its header row, so a clerk may move, add or retype columns.
It has no numbering row 2..20, so the weekly locator never takes it for 附件二.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from ingest.table import Cell, Grid

logger = logging.getLogger(__name__)

# Field of each header cell, tried in this order on the cell's text without its hint in brackets.
# "所需科普资源" and "活动所需专家" share "所需", so the keys are the words that differ.
_HEADER_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("experts", re.compile("专家")),
    ("audience", re.compile("人群|对象")),
    ("time", re.compile("时间")),
    ("place_mode", re.compile("地点|方式")),
    ("content", re.compile("内容")),
    ("resources", re.compile("资源|资料")),
)
FIELDS: tuple[str, ...] = tuple(name for name, _ in _HEADER_WORDS)

# A header row names at least this many of the six fields; the weekly table's header names none.
_MIN_HEADER_FIELDS = 4

_HINT = re.compile(r"[（(][^）)]*[）)]")

# Maximum length of a header cell's text without its hint. A longer cell is a clerk's sentence.
_MAX_HEADER_LENGTH = 12

_LABEL = re.compile(
    r"(?P<unit_text>填表单位|填报单位|填报乡镇\s*[（(]\s*单位\s*[)）]|填报乡镇)"
    r"|(?P<phone>联系电话|联系方式|手机号码|电话)"
    r"|(?P<contact>联系人|填表人|填报人)"
)
_VALUE_EDGES = "：:_ \t\u3000"

# A line starting with one of these words is a note, such as the form's own
# "说明：填表单位为各乡镇（中心）。", which names the label but is no value for it.
_NOTE = re.compile(r"^(?:说明|填表说明|注[：:]|备注[：:])")
# A row starting with a note or a signature line ends the table's rows.
_END_OF_ROWS = re.compile(rf"{_NOTE.pattern}|^(?:填表单位|填报单位|联系人|联系电话|审核人|负责人)")


@dataclass(frozen=True)
class DemandRow:
    """One activity the unit requests, with each cell's text as written (blank cells are "").

    ``index`` counts the filled rows from 1; ``ref`` locates the row, such as ``表格1第2行``.
    """

    index: int
    experts: str
    audience: str
    time: str
    place_mode: str
    content: str
    resources: str
    ref: str = ""


@dataclass(frozen=True)
class DemandForm:
    """The 附件1 demand form found in one grid: the 填表单位 line and the filled rows.

    ``source`` is the worksheet or Word table it was read from. ``rows`` is empty when the clerk
    sent the blank form.
    """

    source: str
    unit_text: str | None
    contact: str | None
    phone: str | None
    rows: list[DemandRow] = field(default_factory=list)


def locate_demand_forms(grids: list[Grid]) -> list[DemandForm]:
    """Return every demand form found in the grids, in file order; an empty list when none."""
    forms = [form for grid in grids for form in _forms_in(grid)]
    for form in forms:
        logger.debug("demand: %s: form of %r with %d rows", form.source, form.unit_text, len(form.rows))
    return forms


def _forms_in(grid: Grid) -> Iterator[DemandForm]:
    index = 0
    while index < len(grid.rows):
        columns = _header_columns(grid.rows[index])
        if columns is None:
            index += 1
            continue

        form, end = _read_form(grid, index, columns)
        yield form
        index = end


def _header_columns(row: list[Cell]) -> dict[str, int] | None:
    """Return the grid column of each field the row names, or None if it is no header row."""
    columns: dict[str, int] = {}
    for position, cell in enumerate(row):
        name = _field_named(cell.value)
        if name is not None:
            columns.setdefault(name, position)

    if len(columns) < _MIN_HEADER_FIELDS:
        return None
    return columns


def _field_named(value: object) -> str | None:
    text = _HINT.sub("", _compact(value))
    if not text or len(text) > _MAX_HEADER_LENGTH:
        return None
    for name, pattern in _HEADER_WORDS:
        if pattern.search(text):
            return name
    return None


def _read_form(grid: Grid, header: int, columns: dict[str, int]) -> tuple[DemandForm, int]:
    rows: list[DemandRow] = []
    end = header + 1
    while end < len(grid.rows) and not _ends_rows(grid.rows[end]):
        row = _demand_row(grid, end, columns, len(rows) + 1)
        if row is not None:
            rows.append(row)
        end += 1

    above = [*grid.text_above, *(_line(row) for row in grid.rows[:header])]
    below = [*(_line(row) for row in grid.rows[end:]), *grid.text_below]
    labels = _read_labels([*reversed(above), *below])

    form = DemandForm(
        source=grid.name,
        unit_text=labels.get("unit_text"),
        contact=labels.get("contact"),
        phone=labels.get("phone"),
        rows=rows,
    )
    return form, end


def _ends_rows(row: list[Cell]) -> bool:
    if _header_columns(row) is not None:
        # A second header row starts another form (last season's table pasted below, say).
        return True
    first = next((cell.value for cell in row if _text(cell.value)), None)
    return bool(_END_OF_ROWS.match(_compact(first)))


def _demand_row(grid: Grid, index: int, columns: dict[str, int], number: int) -> DemandRow | None:
    """Return the row's texts, or None for a template row left empty (only its 序号 or "……")."""
    row = grid.rows[index]
    texts = {name: _text(_value_at(row, columns.get(name))) for name in FIELDS}
    if not any(texts.values()):
        return None
    return DemandRow(index=number, ref=f"{grid.name}第{index + 1}行", **texts)


def _value_at(row: list[Cell], position: int | None) -> object:
    if position is None or position >= len(row):
        return None
    return row[position].value


def _read_labels(lines: list[str]) -> dict[str, str]:
    """Read 填表单位, 联系人 and 联系电话 from the first lines that fill them in."""
    values: dict[str, str] = {}
    for line in lines:
        if _NOTE.match(line):
            continue
        matches = list(_LABEL.finditer(line))
        for match, following in zip(matches, [*matches[1:], None]):
            end = following.start() if following else len(line)
            value = line[match.end() : end].strip(_VALUE_EDGES)
            if value:
                values.setdefault(match.lastgroup, value)
    return values


def _line(row: list[Cell]) -> str:
    return "  ".join(text for cell in row if (text := _text(cell.value)))


def _text(value: object) -> str:
    """Return a cell's text as a clerk reads it: a date cell as 2023年12月25日, 3.0 as 3."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return f"{value.year}年{value.month}月{value.day}日"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _compact(value: object) -> str:
    """Return the text in NFKC form without whitespace, so a header split by line breaks matches."""
    return "".join(unicodedata.normalize("NFKC", _text(value)).split())
