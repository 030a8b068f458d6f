"""Mapping of the numbered columns (2..20) of 附件二 and of 备注 to the grid columns of a table.

The county's form numbers its columns in a row under the header: 2, 3, ... 20. Clerks keep that
row, number it 1..20 after adding a column in front, or delete it. Without it, the columns are
found by the header words, read from the bottom of the header upwards: 场次 under 累计 is column 4,
人次 under 开展政策宣讲 is column 10, 乡镇（个） is column 2. Extra columns such as 序号 or 填报单位
match neither and are ignored.
"""

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from ingest.form import COLUMNS
from ingest.table import Cell

# The form has 4 header rows above its numbering row; retyped headers sometimes have a few more.
HEADER_DEPTH = 6

# A numbering cell as clerks type it: 2, "2", "(2)", "2栏".
_NUMBER_LABEL = re.compile(r"\(?(\d{1,2})\)?栏?")

# Labels that name one column by themselves, tried on the lowest header text of a column.
_REMARK = 0
_SINGLE_LABELS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile("备注"), _REMARK),
    (re.compile("科技人员|科技工作者"), 8),
    (re.compile(r"乡镇(?:\(个\)|个数|数)"), 2),
    (re.compile(r"村(?:\(个\)|个数|数)"), 3),
)

# Groups of a 场次 column and the 人次 column right of it, by the number of the 场次 column. The
# six categories are tried before 累计 and 合计, because the header above them says 本周.
_GROUPS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile("宣讲"), 9),
    (re.compile("培训"), 11),
    (re.compile("防灾|减灾"), 13),
    (re.compile("食品"), 15),
    (re.compile("卫生|健康"), 17),
    (re.compile("其他|其它"), 19),
    (re.compile("累计"), 4),
    (re.compile("合计|本周"), 6),
)

# Words of the form's header rows, also of its extra columns.
_HEADER_WORDS = ("场次", "人次", "累计", "合计", "备注", "活动", "乡镇", "村", "序号", "单位", "科技人员")

# A label of the 填报 line with its colon, after NFKC: "填报乡镇(单位):", "联系电话:".
_FILL_LABEL = re.compile(r"(?:填报|填表|联系|电话|日期|时间).{0,8}:")

_SESSIONS = "场次"
_ATTENDANCE = "人次"

# How far left a 人次 column looks for the 场次 column whose group header covers both.
_PAIR_DISTANCE = 3


@dataclass(frozen=True)
class ColumnMap:
    """Grid positions (0-based) of the form's columns 2..20 and of 备注 (None when absent)."""

    positions: dict[int, int]
    remark: int | None


def compact(value: object) -> str:
    """Return the cell as NFKC text without any whitespace, so "食品安全科\\n普宣传" matches."""
    return "".join(unicodedata.normalize("NFKC", cell_text(value)).split())


def cell_text(value: object) -> str:
    """Return the cell value as a clerk reads it: a date as 2023-12-22, 12.0 as 12."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def numbering_positions(row: list[Cell]) -> dict[int, int] | None:
    """Return the positions of 2..20 when the row is a numbering row, else None.

    The numbers must appear left to right as 2, 3, ... 20 among the row's numbered cells. Blank or
    text cells may sit between them (an unnumbered extra column, a number merged over two Word
    grid columns), and a 1 may precede them.
    """
    numbered = [(position, number) for position, cell in enumerate(row) if (number := _numbering(cell.value)) is not None]
    numbers = [number for _, number in numbered]

    for start in range(len(numbers) - len(COLUMNS) + 1):
        if numbers[start : start + len(COLUMNS)] == list(COLUMNS):
            return {column: numbered[start + offset][0] for offset, column in enumerate(COLUMNS)}
    return None


def _numbering(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)

    match = _NUMBER_LABEL.fullmatch(compact(value))
    return int(match[1]) if match else None


def has_header_words(rows: list[list[Cell]]) -> bool:
    """Return whether the rows contain the words of the form's header (场次, 人次, 累计 or 合计)."""
    text = "".join(compact(cell.value) for row in rows for cell in row)
    return _SESSIONS in text and _ATTENDANCE in text and ("累计" in text or "合计" in text)


def is_header_row(row: list[Cell]) -> bool:
    """Return whether the row is a row of header labels: two or more 场次/人次 cells, no digits.

    A data row written with units ("12场次", "892人次") has digits, so it is not a header row.
    """
    texts = [compact(cell.value) for cell in row]
    leaves = sum(1 for text in texts if _SESSIONS in text or _ATTENDANCE in text)
    return leaves >= 2 and not any(character.isdigit() for text in texts for character in text)


def header_top(rows: list[list[Cell]], bottom: int) -> int:
    """Return the index of the first header row of the table whose header ends at ``rows[bottom]``.

    A header row has two or more cells, one of them with a header word, and no label of the 填报
    line ("填报人：", "联系电话："), so neither the 填报 line nor the title is part of the header.
    """
    top = bottom
    while top > max(0, bottom - HEADER_DEPTH + 1) and _is_header_text_row(rows[top - 1]):
        top -= 1
    return top


def _is_header_text_row(row: list[Cell]) -> bool:
    texts = [text for cell in row if (text := compact(cell.value))]
    if len(texts) < 2 or any(_FILL_LABEL.search(text) for text in texts):
        return False
    return any(word in text for text in texts for word in _HEADER_WORDS)


def header_columns(rows: list[list[Cell]], bottom: int) -> ColumnMap | None:
    """Map the columns by the header words of ``rows[bottom]`` and the rows above it.

    Returns None unless every column 2..20 is found exactly once.
    """
    top = max(0, bottom - HEADER_DEPTH + 1)
    width = max((len(row) for row in rows[top : bottom + 1]), default=0)
    found = [_classify(rows, top, bottom, position) for position in range(width)]
    _pair_attendance(found)

    positions: dict[int, int] = {}
    remark = None
    for position, (column, _, _) in enumerate(found):
        if column == _REMARK:
            remark = position if remark is None else remark
        elif column is not None:
            if column in positions:
                return None
            positions[column] = position

    if set(positions) != set(COLUMNS):
        return None
    return ColumnMap(positions=positions, remark=remark)


# (column or None, 场次/人次 kind or None, group's 场次 column or None) of one grid position.
_Found = tuple[int | None, str | None, int | None]


def _classify(rows: list[list[Cell]], top: int, bottom: int, position: int) -> _Found:
    """Read one grid position's header texts upwards until they name a column."""
    kind = None
    for index in range(bottom, top - 1, -1):
        row = rows[index]
        text = compact(row[position].value) if position < len(row) else ""
        if not text:
            continue

        if kind is None:
            single = _first_match(_SINGLE_LABELS, text)
            if single is not None:
                return single, None, None
            kind = _kind(text)
            if kind is None:
                return None, None, None

        group = _first_match(_GROUPS, text)
        if group is not None:
            return group + (0 if kind == _SESSIONS else 1), kind, group
        if _kind(text) is None:
            # The nearest text above a leaf is its group; an unrelated one ends the search.
            break
    return None, kind, None


def _kind(text: str) -> str | None:
    """Return 场次 or 人次, whichever the text names last ("累计场次" is 场次), or None."""
    sessions, attendance = text.rfind(_SESSIONS), text.rfind(_ATTENDANCE)
    if sessions < 0 and attendance < 0:
        return None
    return _SESSIONS if sessions > attendance else _ATTENDANCE


def _first_match(labels: tuple[tuple[re.Pattern[str], int], ...], text: str) -> int | None:
    return next((column for pattern, column in labels if pattern.search(text)), None)


def _pair_attendance(found: list[_Found]) -> None:
    """Give a 人次 column without a group of its own the group of the 场次 column left of it.

    A group header such as 累计 is merged over its 场次 and 人次 columns, and a merged cell keeps
    its text only at its left-most position, so the 人次 position reads no group.
    """
    for position, (column, kind, _) in enumerate(found):
        if column is not None or kind != _ATTENDANCE:
            continue

        for left in range(position - 1, max(-1, position - 1 - _PAIR_DISTANCE), -1):
            _, left_kind, group = found[left]
            if left_kind == _SESSIONS and group is not None:
                found[position] = (group + 1, _ATTENDANCE, group)
                break
