"""Plain data passed along the pipeline: cells read from a file, the located weekly table, findings.

Readers produce :class:`Grid` objects, the locator turns a grid into a :class:`WeeklyTable`, and the
rules turn a table into :class:`Violation` findings. None of these types does I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Cell:
    """One cell as the file stores it.

    ``value`` is what the file holds: ``str``, ``int``, ``float``, ``datetime`` or ``None`` for a
    blank. ``ref`` locates it for a clerk: ``Sheet1!F8`` in a workbook, ``表格1第6行第5列`` in Word.
    """

    value: object
    ref: str


@dataclass
class Grid:
    """A rectangle of cells from one worksheet or one Word table.

    A merged cell appears once, at its top-left position; the other positions it covers hold a
    blank cell. ``text_above`` and ``text_below`` are the paragraphs around a Word table (the title,
    the 填报 line, the 填表说明); a worksheet keeps those lines inside ``rows``.
    """

    name: str
    rows: list[list[Cell]]
    text_above: list[str] = field(default_factory=list)
    text_below: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportHeader:
    """The 填报 line of the form, as written by the clerk."""

    unit_text: str | None = None
    reporter: str | None = None
    phone: str | None = None
    fill_date: dt.date | None = None
    fill_date_text: str | None = None


@dataclass(frozen=True)
class ReportRow:
    """One data row under the numbering row, not yet converted to numbers.

    ``cells`` maps each column number 2..20 to the cell read there.
    """

    index: int
    ref: str
    cells: dict[int, Cell]
    remark: str = ""


@dataclass
class WeeklyTable:
    """The 附件二 table located in a grid, with its header fields and data rows.

    ``total`` is a 合计 row below (or above) the data rows and never one of them. Rule T1 checks
    it against the column sums. Its ``index`` is 0, and its ``cells`` lack a column whose cell
    contains the 合计 label itself. ``week_hint`` is the week that a 第N周 in the title above the
    table or in the sheet name states, for a file that contains several weeks.
    """

    source: str
    header: ReportHeader
    rows: list[ReportRow]
    total: ReportRow | None = None
    week_hint: int | None = None


class RuleId(StrEnum):
    """Rule ids in the order the 填表说明 prints them, then the value checks."""

    R1 = "R1"  # 6栏=9+11+13+15+17+19
    R2 = "R2"  # 7栏=10+12+14+16+18+20
    R3 = "R3"  # 6栏<4栏
    R4 = "R4"  # 7栏<5栏
    R5 = "R5"  # 8栏<7栏
    V1 = "V1"  # every value is a whole number >= 0
    V2 = "V2"  # at least one data row
    T1 = "T1"  # a 合计 row equals the column sums of the data rows


@dataclass(frozen=True)
class Violation:
    """One broken rule in one row.

    ``found`` maps each column number involved to the value read (an ``int``, or the text as
    written when it is not a number). ``expected`` is a Chinese phrase for what the value must be,
    such as ``应等于9，即9+11+13+15+17+19之和``.
    """

    rule: RuleId
    row: int
    cell: str
    columns: tuple[int, ...]
    found: dict[int, int | str]
    expected: str


@dataclass
class CheckedReport:
    """A weekly table with its values converted to integers and its violations.

    ``values`` holds one mapping per data row, column number to integer; a cell that is not a
    whole number ≥ 0 maps to ``None`` and has a V1 violation.
    """

    table: WeeklyTable
    values: list[dict[int, int | None]]
    violations: list[Violation]

    @property
    def accepted(self) -> bool:
        return not self.violations

    def totals(self) -> dict[int, int]:
        """Sum each column over the data rows, counting unreadable cells as 0."""
        return {
            column: sum(row.get(column) or 0 for row in self.values)
            for column in range(2, 21)
        }


@dataclass(frozen=True)
class FileProblem:
    """A file that held no readable table, with the Chinese reason for the sender."""

    file_name: str
    reason: str
