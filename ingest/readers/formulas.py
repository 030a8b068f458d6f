"""Computation of formulas that a workbook stores without their results.

Excel and WPS save each formula's last result beside it, and the readers use that value. Files
written by other programs (scripts, some phone apps, online form tools) can hold the formula
alone. Such a formula is computed here when it is plain arithmetic on numbers and cells of its own
sheet: ``+``, ``-``, ``*``, ``/``, parentheses and ``SUM`` over cells and ranges. Any other formula
raises UnreadableFile asking the clerk to open and save the file once, which stores the results.
"""

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping, Sequence

from openpyxl.formula import Tokenizer
from openpyxl.formula.tokenizer import Token, TokenizerError
from openpyxl.utils.cell import range_boundaries
from openpyxl.utils.datetime import to_excel

from ingest.errors import UnreadableFile

logger = logging.getLogger(__name__)

FORMULA_REASON = "表格中的公式没有保存计算结果，请用 Excel 或 WPS 打开该文件、保存一次后重新发送。"

# A cell position as (row, column), both numbered from 1.
Position = tuple[int, int]

# Excel's error values, which a formula passes on when an operand is one.
ERROR_VALUES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})

# A chain of formulas that each wait for the next one is cut off at this depth, and the cells
# that SUM ranges visit are counted, so that a hostile file cannot make computing unbounded.
_MAX_DEPTH = 64
_MAX_VISITS = 1_000_000

_SUM = "SUM("

# A1-style references: a cell, a cell range, whole columns or whole rows. Anything else that the
# tokenizer calls a range is a defined name, which range_boundaries would misread as a column.
_REFERENCE = re.compile(
    r"\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?|\$?[A-Z]{1,3}:\$?[A-Z]{1,3}|\$?\d+:\$?\d+",
    re.IGNORECASE,
)
_MAX_COLUMN = 16_384
_MAX_ROW = 1_048_576


class _Unsupported(Exception):
    """The formula uses something this module does not compute."""


class _ExcelError(Exception):
    """The formula's result is an Excel error value such as ``#DIV/0!``."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def compute_formulas(
    formulas: Mapping[Position, str], rows: Sequence[Sequence[object]], sheet: str
) -> dict[Position, object]:
    """Return the result of each formula of one sheet.

    ``formulas`` maps positions to formula text (with or without the leading ``=``); ``rows``
    contains the sheet's other values, ``rows[0][0]`` being A1. A formula may use the result of
    another one. A result is an ``int`` when whole, else a ``float`` rounded to Excel's 15
    significant digits, or an Excel error value such as ``"#DIV/0!"``.

    Raises UnreadableFile with :data:`FORMULA_REASON` for a formula that cannot be computed here.
    """
    evaluator = _Evaluator(formulas, rows, sheet)
    # Top to bottom, so that a running total down a column (A3 = A2 + B3) has each result it
    # needs already computed and stays within the depth limit.
    return {position: evaluator.result(position) for position in sorted(formulas)}


class _Evaluator:
    def __init__(self, formulas: Mapping[Position, str], rows: Sequence[Sequence[object]], sheet: str):
        self._formulas = formulas
        self._rows = rows
        self._sheet = sheet
        self._results: dict[Position, object] = {}
        self._pending: list[Position] = []
        self._visits = 0

        self._last_row = max([len(rows), *(row for row, _ in formulas)])
        self._formula_width: dict[int, int] = {}
        for row, column in formulas:
            self._formula_width[row] = max(column, self._formula_width.get(row, 0))

    def result(self, position: Position) -> object:
        if position in self._results:
            return self._results[position]

        formula = self._formulas[position]
        if position in self._pending or len(self._pending) >= _MAX_DEPTH:
            raise self._unreadable(position, formula, "circular or too deeply nested references")

        self._pending.append(position)
        try:
            value = _Parser(_tokens(formula), self).expression_result()
        except _ExcelError as err:
            value = err.code
        except _Unsupported as err:
            raise self._unreadable(position, formula, str(err)) from err
        finally:
            self._pending.pop()

        self._results[position] = value
        logger.debug("formulas: %s!R%dC%d: computed %r as %r", self._sheet, *position, formula, value)
        return value

    def _unreadable(self, position: Position, formula: str, detail: str) -> UnreadableFile:
        row, column = position
        return UnreadableFile(
            f"formulas: {self._sheet} row {row} column {column}: cannot compute {formula!r}: {detail}",
            FORMULA_REASON,
        )

    def value(self, row: int, column: int) -> object:
        if (row, column) in self._formulas:
            return self.result((row, column))
        if row <= len(self._rows) and column <= len(self._rows[row - 1]):
            return self._rows[row - 1][column - 1]
        return None

    def reference(self, text: str) -> list[object]:
        """Return the values of the cells a reference such as ``$B$8``, ``B8:S12`` or ``B:B`` names."""
        min_column, min_row, max_column, max_row = self._bounds(text)
        max_row = min(max_row or self._last_row, self._last_row)

        values = []
        for row in range(min_row or 1, max_row + 1):
            last_column = self._width(row) if max_column is None else min(max_column, self._width(row))
            for column in range(min_column or 1, last_column + 1):
                self._visits += 1
                if self._visits > _MAX_VISITS:
                    raise _Unsupported("ranges too large")
                values.append(self.value(row, column))
        return values

    def cell(self, text: str) -> object:
        min_column, min_row, max_column, max_row = self._bounds(text)
        if None in (min_column, min_row) or (min_column, min_row) != (max_column, max_row):
            raise _Unsupported(f"range {text!r} used as a single value")
        return self.value(min_row, min_column)

    def _width(self, row: int) -> int:
        stored = len(self._rows[row - 1]) if row <= len(self._rows) else 0
        return max(stored, self._formula_width.get(row, 0))

    def _bounds(self, text: str) -> tuple[int | None, int | None, int | None, int | None]:
        sheet, _, address = text.rpartition("!")
        if sheet and _sheet_name(sheet).casefold() != self._sheet.casefold():
            raise _Unsupported(f"reference to another sheet {text!r}")
        if not _REFERENCE.fullmatch(address):
            raise _Unsupported(f"reference {text!r}")

        min_column, min_row, max_column, max_row = range_boundaries(address)
        # Excel reads B8:A1 as A1:B8.
        if None not in (min_column, max_column) and min_column > max_column:
            min_column, max_column = max_column, min_column
        if None not in (min_row, max_row) and min_row > max_row:
            min_row, max_row = max_row, min_row

        bounds = (min_column, min_row, max_column, max_row)
        columns = [value for value in bounds[0::2] if value is not None]
        rows = [value for value in bounds[1::2] if value is not None]
        if any(value > _MAX_COLUMN for value in columns) or any(value > _MAX_ROW for value in rows):
            raise _Unsupported(f"reference {text!r} outside the sheet")
        return bounds


def _sheet_name(prefix: str) -> str:
    if prefix.startswith("'") and prefix.endswith("'"):
        return prefix[1:-1].replace("''", "'")
    return prefix


def _tokens(formula: str) -> list[Token]:
    text = formula if formula.startswith("=") else "=" + formula
    try:
        items = Tokenizer(text).items
    except TokenizerError as err:
        raise _Unsupported(f"malformed formula: {err}") from err
    # Whitespace between two references is Excel's intersection operator. Dropping it leaves two
    # operands side by side, which the parser rejects.
    return [token for token in items if token.type != Token.WSPACE]


class _Parser:
    """Recursive descent over the tokens: expression, term, unary, primary."""

    def __init__(self, tokens: list[Token], evaluator: _Evaluator):
        self._tokens = tokens
        self._position = 0
        self._evaluator = evaluator

    def expression_result(self) -> int | float:
        value = self._expression()
        if self._peek() is not None:
            raise _Unsupported(f"unexpected {self._peek().value!r}")
        return _normalise(value)

    def _peek(self) -> Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> Token:
        token = self._peek()
        if token is None:
            raise _Unsupported("formula ends early")
        self._position += 1
        return token

    def _at(self, kind: str, values: tuple[str, ...]) -> bool:
        token = self._peek()
        return token is not None and token.type == kind and token.value in values

    def _expression(self) -> float:
        value = self._term()
        while self._at(Token.OP_IN, ("+", "-")):
            operator = self._take().value
            right = self._term()
            value = value + right if operator == "+" else value - right
        return value

    def _term(self) -> float:
        value = self._unary()
        while self._at(Token.OP_IN, ("*", "/")):
            operator = self._take().value
            right = self._unary()
            if operator == "*":
                value = value * right
            elif right == 0:
                raise _ExcelError("#DIV/0!")
            else:
                value = value / right
        return value

    def _unary(self) -> float:
        if self._at(Token.OP_PRE, ("+", "-")):
            sign = -1 if self._take().value == "-" else 1
            return sign * self._unary()
        return self._primary()

    def _primary(self) -> float:
        token = self._take()
        if token.type == Token.OPERAND and token.subtype == Token.NUMBER:
            return float(token.value)
        if token.type == Token.OPERAND and token.subtype == Token.RANGE:
            return _number(self._evaluator.cell(token.value))
        if token.type == Token.PAREN and token.subtype == Token.OPEN:
            value = self._expression()
            self._close(Token.PAREN)
            return value
        if token.type == Token.FUNC and token.subtype == Token.OPEN and token.value.upper() == _SUM:
            return self._sum()
        raise _Unsupported(f"unsupported {token.value!r}")

    def _close(self, kind: str) -> None:
        token = self._take()
        if token.type != kind or token.subtype != Token.CLOSE:
            raise _Unsupported(f"expected a closing parenthesis, found {token.value!r}")

    def _sum(self) -> float:
        total = 0.0
        while True:
            total += self._sum_argument()
            token = self._take()
            if token.type == Token.FUNC and token.subtype == Token.CLOSE:
                return total
            if token.type != Token.SEP or token.value != ",":
                raise _Unsupported(f"unexpected {token.value!r} in SUM")

    def _sum_argument(self) -> float:
        token = self._peek()
        following = self._tokens[self._position + 1] if self._position + 1 < len(self._tokens) else None
        ends_argument = following is not None and following.type in (Token.SEP, Token.FUNC)

        # SUM counts the numbers of a referenced range and skips its text, blanks and TRUE/FALSE,
        # but a value computed inside the argument is converted like any operand.
        if token is not None and token.subtype == Token.RANGE and ends_argument:
            self._take()
            return sum(_range_number(value) for value in self._evaluator.reference(token.value))
        return self._expression()


def _number(value: object) -> float:
    """Convert an operand as Excel's arithmetic does: blank is 0, numeric text is its number."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return float(to_excel(value))
    if isinstance(value, str):
        return _text_number(value)
    raise _Unsupported(f"operand of type {type(value).__name__}")


def _text_number(text: str) -> float:
    if text in ERROR_VALUES:
        raise _ExcelError(text)
    try:
        return float(text.strip())
    except ValueError:
        raise _ExcelError("#VALUE!") from None


def _range_number(value: object) -> float:
    if isinstance(value, str) and value in ERROR_VALUES:
        raise _ExcelError(value)
    if isinstance(value, bool) or not isinstance(value, int | float | dt.datetime | dt.date):
        return 0.0
    return _number(value)


def _normalise(value: float) -> int | float:
    if not math.isfinite(value):
        raise _ExcelError("#NUM!")
    # Excel keeps 15 significant digits, so 0.1*30 shows as 3 and not 3.0000000000000004.
    rounded = float(f"{value:.15g}")
    return int(rounded) if rounded.is_integer() else rounded
