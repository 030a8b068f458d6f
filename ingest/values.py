"""Conversion of one table cell to a count (场次 or 人次), as the county reads the form.

A blank cell means 0. A number typed as text (WPS and Word store every cell as text) is the same
number. Anything else, such as ``12.5``, ``-3``, ``12人`` or a date, is not a count.
"""

import math
import numbers
import re
import unicodedata

# Excel shows large counts with thousands separators ("1,234"), and clerks copy that text into Word.
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+")
_DECIMAL = re.compile(r"\d+(?:\.0*)?")


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


def _parse_text(text: str) -> int | None:
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        return 0

    if _GROUPED.fullmatch(cleaned):
        return int(cleaned.replace(",", ""))

    if _DECIMAL.fullmatch(cleaned):
        return int(cleaned.split(".")[0])

    return None


def _whole_number(number: float) -> int | None:
    if math.isnan(number) or math.isinf(number) or not number.is_integer():
        return None
    return _non_negative(int(number))


def _non_negative(number: int) -> int | None:
    return number if number >= 0 else None
