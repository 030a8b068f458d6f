"""Reading of the 填报时间 field in the ways clerks write it.

Seen in filled forms: ``2023年12月22日``, ``2023年12月22号``, ``2023.12.22``, ``2023-12-22``,
``2023/12/22``, ``20231222``, and in workbooks a date cell (a datetime) or a bare Excel serial
number such as 45282.
"""

import datetime as dt
import math
import numbers
import re
import unicodedata

from openpyxl.utils.datetime import from_excel

_WRITTEN = re.compile(
    r"(?P<year>\d{4})\s*[年./\-]\s*(?P<month>\d{1,2})\s*[月./\-]\s*(?P<day>\d{1,2})(?!\d)"
)
_COMPACT = re.compile(r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?!\d)")

# Excel serial numbers for 1982-02-16 .. 2173-10-14: wide enough for any fill date, narrow
# enough that a count such as 12 typed in the date cell is not taken for a date in 1900.
_SERIAL_RANGE = range(30000, 100000)


def parse_fill_date(value: object) -> dt.date | None:
    """Return the date a cell or text holds, or None when it holds no recognisable date."""
    if isinstance(value, dt.datetime):
        return value.date()

    if isinstance(value, dt.date):
        return value

    if isinstance(value, str):
        return _parse_text(value)

    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _from_serial(float(value))

    return None


def _parse_text(text: str) -> dt.date | None:
    cleaned = unicodedata.normalize("NFKC", text).strip()

    for pattern in (_WRITTEN, _COMPACT):
        match = pattern.search(cleaned)
        if match:
            return _make_date(match)

    if cleaned.isdigit():
        return _from_serial(float(cleaned))

    return None


def _make_date(match: re.Match[str]) -> dt.date | None:
    try:
        return dt.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return None


def _from_serial(serial: float) -> dt.date | None:
    # A fraction is the time of day, which the fill date ignores.
    if not math.isfinite(serial) or int(serial) not in _SERIAL_RANGE:
        return None
    return from_excel(serial).date()
