"""Collection of a sheet's rows into a :class:`Grid`, with the bounds every reader shares.

Worksheets, CSV files and HTML tables are read row by row. A weekly table is a few dozen rows, but
a sheet's used range can run to row 1,048,576 after a clerk formats whole columns, and a stray
value in column XFD would make every row 16,384 cells wide. The collector stops and pads rows so
that neither costs more than the table itself.
"""

import logging
from collections.abc import Callable, Sequence

from ingest.table import Cell, Grid

logger = logging.getLogger(__name__)

# Reading stops at this row, or after this many consecutive empty rows.
# NOTE: both limits are judgement calls, and content past them is not read.
MAX_ROWS = 100_000
MAX_EMPTY_RUN = 10_000

# Rows are padded with blank cells up to this many columns, so that a blank in the table still
# has its own reference. The form is 20 columns wide, 22 with 序号 and 填报单位 columns added.
PAD_COLUMNS = 64

_EMPTY_ROW: list[object] = []


def is_blank(value: object) -> bool:
    """Return True for a missing value and for text that is only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


class RowCollector:
    """Rows of values of one sheet, numbered from 1, turned into a grid at the end.

    ``ref(row, column)`` names a cell for the clerk, both numbered from 1.
    """

    def __init__(self, name: str, ref: Callable[[int, int], str]):
        self.name = name
        self.rows: list[list[object]] = []
        self._ref = ref
        self._last_filled = 0

    def add(self, values: Sequence[object]) -> bool:
        """Append the next row; return False when reading should stop there."""
        width = len(values)
        while width and is_blank(values[width - 1]):
            width -= 1

        number = len(self.rows) + 1
        # Empty rows share one list, so a long run of them costs one pointer each.
        self.rows.append(list(values[:width]) if width else _EMPTY_ROW)
        if width:
            self._last_filled = number
            return number < MAX_ROWS

        if number - self._last_filled >= MAX_EMPTY_RUN:
            logger.info("readers: %s: stopped reading at row %d after %d empty rows", self.name, number, MAX_EMPTY_RUN)
            return False
        return number < MAX_ROWS

    def set(self, row: int, column: int, value: object) -> None:
        """Store a value computed after reading, such as a formula's result."""
        while len(self.rows) < row:
            self.rows.append(_EMPTY_ROW)
        values = self.rows[row - 1]
        if values is _EMPTY_ROW:
            values = self.rows[row - 1] = []
        values.extend([None] * (column - len(values)))
        values[column - 1] = value
        if not is_blank(value):
            self._last_filled = max(self._last_filled, row)

    def grid(self, text_above: list[str] | None = None, text_below: list[str] | None = None) -> Grid:
        """Return the grid without the empty rows after the last filled one.

        Kept rows are padded with blank cells to the width of the widest row, up to
        :data:`PAD_COLUMNS` columns; empty rows stay empty lists.
        """
        rows = self.rows[: self._last_filled]
        width = min(max((len(values) for values in rows), default=0), PAD_COLUMNS)

        cells = []
        for number, values in enumerate(rows, start=1):
            row_width = max(len(values), width) if values else 0
            cells.append([self._cell(number, column, values) for column in range(1, row_width + 1)])

        return Grid(name=self.name, rows=cells, text_above=text_above or [], text_below=text_below or [])

    def _cell(self, number: int, column: int, values: list[object]) -> Cell:
        value = values[column - 1] if column <= len(values) else None
        return Cell(value=value, ref=self._ref(number, column))
