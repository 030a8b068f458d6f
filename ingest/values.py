"""Conversion of one table cell to a count (场次 or 人次), as the county reads the form.

A blank cell means 0, and so do the marks clerks put in a cell for "none": ``/``, ``—``, ``-`` and
``无``. A number typed as text (WPS and Word store every cell as text) is the same number, also
with full-width digits (１２), thousands separators (3,120) or a unit after it (12场, 3,120人次).
Anything else, such as ``12.5``, ``-3``, ``1/2``, ``三场`` or a date, is not a count.
"""

import math
import numbers
import re
import unicodedata

# Units clerks write after a count. NOTE: the unit is not checked against the column, so 12人 in a
# 场次 column reads as 12.
_UNIT = r"(?:场次|人次|场|次|人|个|名|村)"

# Excel shows large counts with thousands separators ("1,234"), and clerks copy that text into Word.
_COUNT = re.compile(rf"(?P<number>\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.0*)?\s*{_UNIT}?")

# A cell containing only dashes or slashes, or 无 ("none"), is a zero. After NFKC the full-width
# forms (－, ／) are ASCII; the em dash and its relatives stay, so they are listed.
_ZERO = re.compile(r"[-‐‑‒–—―−/\\]+|无|没有")


def parse_count(value: object) -> int | None:
    """Convert a cell value to a whole number >= 0, or return None when it is not one.

    ``None`` and blank text are 0. Text is normalised with NFKC first, so full-width digits
    (１２) and full-width spaces count like their ASCII forms.
    """
    if value is None:
        return 0

    if isinstance(value, str):
        return _parse_text(value)

    # bool is a subclass of int, but TRUE in a count column is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None

    if isinstance(value, float):
        return _whole_number(value)
    return _non_negative(int(value))


def is_zero_mark(value: object) -> bool:
    """Return whether the cell contains one of the marks that stand for 0 (``/``, ``—``, ``无``)."""
    return isinstance(value, str) and bool(_ZERO.fullmatch(_normalise(value)))


def _parse_text(text: str) -> int | None:
    cleaned = _normalise(text)
    if not cleaned or _ZERO.fullmatch(cleaned):
        return 0

    match = _COUNT.fullmatch(cleaned)
    if match is None:
        return None
    return int(match["number"].replace(",", ""))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _whole_number(number: float) -> int | None:
    if math.isnan(number) or math.isinf(number) or not number.is_integer():
        return None
    return _non_negative(int(number))


def _non_negative(number: int) -> int | None:
    return number if number >= 0 else None
