"""The campaign's weekly calendar: which week a report belongs to and when it is due.

Week ``n`` is due at the n-th weekly deadline, ``first_deadline + 7 * (n - 1)`` days in the
campaign's local time. Skipped weeks (a holiday break) keep their numbers, so week 6 is due on the
same day whether or not week 5 is skipped. Nothing is due in a skipped week.

Everything here is pure: callers pass the moment or date, nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Campaign:
    """The deadlines of one campaign.

    ``first_deadline`` and ``last_deadline`` are aware datetimes. ``last_deadline`` must fall a
    whole number of weeks after ``first_deadline``, at the same local time of day.
    """

    first_deadline: dt.datetime
    last_deadline: dt.datetime
    timezone: ZoneInfo
    skipped_weeks: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        # Config validation reports these in Chinese first; this guards direct construction.
        if self.first_deadline.tzinfo is None or self.last_deadline.tzinfo is None:
            raise ValueError("campaign deadlines must be timezone-aware")
        span = self._local(self.last_deadline) - self._local(self.first_deadline)
        if span < dt.timedelta(0) or span % _WEEK:
            raise ValueError("last deadline must fall whole weeks after the first deadline")
        object.__setattr__(self, "skipped_weeks", frozenset(self.skipped_weeks))

    @property
    def last_week(self) -> int:
        """Number of the week due at ``last_deadline``."""
        span = self._local(self.last_deadline) - self._local(self.first_deadline)
        return span // _WEEK + 1

    def deadline(self, week: int) -> dt.datetime:
        """Return the deadline of ``week`` (1-based) in the campaign's timezone.

        Skipped weeks have a deadline too, so that their numbers stay on the calendar.
        """
        if not 1 <= week <= self.last_week:
            raise ValueError(f"week {week} is outside 1..{self.last_week}")

        # Add days to the local wall time, so a deadline stays at 18:00 across a DST change.
        local = self._local(self.first_deadline) + _WEEK * (week - 1)
        return local.replace(tzinfo=self.timezone)

    def weeks(self) -> list[int]:
        """Return the numbers of the weeks a report is due, in order, without skipped weeks."""
        return [week for week in range(1, self.last_week + 1) if week not in self.skipped_weeks]

    def is_reporting_week(self, week: int) -> bool:
        """Tell whether a report is due for ``week``: inside the campaign and not skipped."""
        return 1 <= week <= self.last_week and week not in self.skipped_weeks

    def week_due_after(self, moment: dt.datetime) -> int | None:
        """Return the first reporting week whose deadline is at or after ``moment``.

        Returns None after the last deadline. A moment before the campaign gives its first week.
        """
        for week in self.weeks():
            if self.deadline(week) >= moment:
                return week
        return None

    def week_for_fill_date(self, date: dt.date) -> int | None:
        """Return the reporting week whose period contains the 填报时间 ``date``.

        Week n covers the local dates after deadline n-1 up to and including deadline n, and
        week 1 covers the seven days up to the first deadline. A date in a skipped week's period
        belongs to the next reporting week. Returns None for a date before week 1 or after the last
        deadline, which is more likely a typo in the year or month than a report.
        """
        start = self.deadline(1).date() - _WEEK
        if date <= start:
            return None
        for week in self.weeks():
            if date <= self.deadline(week).date():
                return week
        return None

    def is_late(self, week: int, received_at: dt.datetime) -> bool:
        """Tell whether a report received at ``received_at`` missed the deadline of ``week``.

        A report received exactly at the deadline is on time.
        """
        return received_at > self.deadline(week)

    def _local(self, moment: dt.datetime) -> dt.datetime:
        """Return ``moment`` as naive local wall time in the campaign's timezone."""
        return moment.astimezone(self.timezone).replace(tzinfo=None)


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
           "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# 第 + a number + 周. Digits may be full-width (第３周, typed with a Chinese IME). The characters
# excluded after 周 turn it into another word: 周期 (period), 周年 (anniversary), 周岁 (age),
# 周末 (weekend).
_WEEK_PATTERN = re.compile(r"第\s*([0-9０-９]{1,2}|[零〇一二两三四五六七八九十]{1,3})\s*周(?![期年岁末])")


def week_from_text(text: str | None) -> int | None:
    """Return the week number a subject or file name states, like 第3周, 第 3 周 or 第十二周.

    Returns None when the text states no week, states 第0周, or states several different weeks
    (第3周和第4周), because guessing between them would file the report under the wrong week.
    """
    if not text:
        return None

    found = {_week_number(match.group(1)) for match in _WEEK_PATTERN.finditer(text)}
    found.discard(None)
    if len(found) != 1:
        return None
    return found.pop()


def _week_number(token: str) -> int | None:
    """Return the positive number written as Arabic digits or Chinese numerals, else None."""
    if token.isdigit():
        number = int(token)
    else:
        number = _chinese_number(token)
    if not number:
        return None
    return number


def _chinese_number(token: str) -> int | None:
    """Return the value of a Chinese numeral below 100 (三, 十二, 二十, 二十五), else None."""
    if "十" not in token:
        return _DIGITS[token] if len(token) == 1 else None

    tens_text, _, ones_text = token.partition("十")
    if len(tens_text) > 1 or len(ones_text) > 1 or "十" in ones_text:
        return None
    tens = _DIGITS[tens_text] if tens_text else 1
    ones = _DIGITS[ones_text] if ones_text else 0
    if tens == 0 or ones == 0 and ones_text:
        return None
    return tens * 10 + ones
