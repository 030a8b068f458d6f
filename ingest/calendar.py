"""The campaign's weekly calendar: which week a report belongs to and when it is due.

Week ``n`` is due at the n-th weekly deadline, ``first_deadline + 7 * (n - 1)`` days in the
campaign's local time. Skipped weeks (a holiday break) keep their numbers, so week 6 is due on the
same day whether or not week 5 is skipped. Nothing is due in a skipped week.

The notices of a week (reminder, overdue, second overdue, digest) are planned relative to the
week's deadline date, so a campaign with Thursday deadlines gets its reminders on Thursdays.

Everything here is pure: callers pass the moment or date, nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple
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

    def week_closed_before(self, moment: dt.datetime) -> int | None:
        """Return the latest reporting week whose deadline is strictly before ``moment``, else None."""
        closed = [week for week in self.weeks() if self.deadline(week) < moment]
        return closed[-1] if closed else None

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


def assign_week(campaign: Campaign, received_at: dt.datetime, explicit_week: int | None,
                unit_weeks_with_accepted_report: Collection[int],
                unit_reports_in: Callable[[int], bool] = lambda week: True) -> int | None:
    """Return the week a report counts for, by the rule for reports that arrive late.

    An ``explicit_week`` (a 第N周 in the subject or file name) wins when it is a reporting week;
    one outside the campaign or skipped is disregarded. Otherwise a report received after a
    deadline counts for the week just closed, the unit's latest reporting week whose deadline
    passed, when the unit has no accepted report for it. In every other case it counts for the
    next week due, and after the last deadline that is None. So an unlabelled report sent on time
    for week 3 by a unit that never sent week 2 fills week 2.

    ``unit_reports_in`` tells whether the unit reports a week (see ``UnitSettings.reports_in``),
    so that the first report of a unit that joins in week 5 is not filed under week 4.
    """
    if explicit_week is not None and campaign.is_reporting_week(explicit_week):
        return explicit_week

    closed = [week for week in campaign.weeks()
              if campaign.deadline(week) < received_at and unit_reports_in(week)]
    if closed and closed[-1] not in unit_weeks_with_accepted_report:
        return closed[-1]
    return campaign.week_due_after(received_at)


# --- notices planned around each deadline ------------------------------------------------------


class ScheduledNotice(StrEnum):
    """Notices sent on a schedule around each deadline; the value is the X-Zhoubao-Notice kind."""

    REMINDER = "reminder"  # before the deadline, to units without an accepted report
    OVERDUE = "overdue"  # after the deadline, to units still without one
    OVERDUE_2 = "overdue-2"  # a second overdue notice some days later
    DIGEST = "digest"  # the admin's summary of the week


_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class NoticeTime:
    """A local time of day ``days`` after the deadline's date; negative ``days`` are before it."""

    days: int
    time: dt.time

    def offset_from(self, deadline_time: dt.time) -> dt.timedelta:
        """Return how long after a deadline at ``deadline_time`` this moment falls (negative: before)."""
        deadline = dt.datetime.combine(dt.date.min + _WEEK, deadline_time)
        moment = dt.datetime.combine(deadline.date() + self.days * _DAY, self.time)
        return moment - deadline

    def describe(self) -> str:
        """Return the moment as the config writes it, such as ``截止后3天 10:00``."""
        if self.days == 0:
            day = "截止当天"
        elif self.days < 0:
            day = f"截止前{-self.days}天"
        else:
            day = f"截止后{self.days}天"
        return f"{day} {self.time:%H:%M}"


@dataclass(frozen=True)
class NoticeSchedule:
    """When each scheduled notice of a week goes out; None turns that notice off.

    The defaults are those of a Friday 18:00 deadline: reminder Friday 12:00, overdue Friday
    18:30, second overdue the next Monday 10:00, digest Friday 19:00.
    """

    reminder: NoticeTime | None = NoticeTime(0, dt.time(12, 0))
    overdue: NoticeTime | None = NoticeTime(0, dt.time(18, 30))
    overdue_2: NoticeTime | None = NoticeTime(3, dt.time(10, 0))
    digest: NoticeTime | None = NoticeTime(0, dt.time(19, 0))

    def times(self) -> dict[ScheduledNotice, NoticeTime]:
        """Return the time of each notice that is on, in the order of :class:`ScheduledNotice`."""
        times = {
            ScheduledNotice.REMINDER: self.reminder,
            ScheduledNotice.OVERDUE: self.overdue,
            ScheduledNotice.OVERDUE_2: self.overdue_2,
            ScheduledNotice.DIGEST: self.digest,
        }
        return {kind: time for kind, time in times.items() if time is not None}


class PlannedNotice(NamedTuple):
    """One scheduled notice of one week and the moment it becomes due."""

    kind: ScheduledNotice
    week: int
    moment: dt.datetime


_KIND_ORDER = {kind: position for position, kind in enumerate(ScheduledNotice)}


def notice_moments(campaign: Campaign, schedule: NoticeSchedule) -> list[PlannedNotice]:
    """Return every scheduled notice of the campaign, ordered by moment.

    Skipped weeks have no notices. Notices at the same moment keep the order of
    :class:`ScheduledNotice`.
    """
    planned = [
        PlannedNotice(kind, week, _notice_moment(campaign, week, time))
        for week in campaign.weeks()
        for kind, time in schedule.times().items()
    ]
    return sorted(planned, key=lambda notice: (notice.moment, _KIND_ORDER[notice.kind], notice.week))


def notice_expiry(campaign: Campaign, schedule: NoticeSchedule, notice: PlannedNotice) -> dt.datetime:
    """Return the moment from which ``notice`` is stale and no longer sent.

    A reminder is stale at the deadline. An overdue notice is stale once the second overdue
    notice is due, so that a service that was down sends only the later one. The second overdue
    notice and the digest stay useful for seven days after the deadline.
    """
    deadline = campaign.deadline(notice.week)
    if notice.kind is ScheduledNotice.REMINDER:
        return deadline
    if notice.kind is ScheduledNotice.OVERDUE and schedule.overdue_2 is not None:
        return _notice_moment(campaign, notice.week, schedule.overdue_2)
    local = deadline.replace(tzinfo=None) + _WEEK
    return local.replace(tzinfo=campaign.timezone)


def due_notices(campaign: Campaign, schedule: NoticeSchedule, now: dt.datetime,
                last_run: dt.datetime | None = None) -> list[PlannedNotice]:
    """Return the notices due at ``now`` and still useful, ordered by moment.

    A notice is due when its moment is at or before ``now``, and useful until
    :func:`notice_expiry`. With ``last_run``, only notices that fell due after it are returned.
    Pass None at start-up to catch up on all that are still useful. Whether one was already sent,
    or whether a unit has reported by now, is for the caller to check in the database.
    """
    return [
        notice for notice in notice_moments(campaign, schedule)
        if notice.moment <= now < notice_expiry(campaign, schedule, notice)
        and (last_run is None or notice.moment > last_run)
    ]


def _notice_moment(campaign: Campaign, week: int, time: NoticeTime) -> dt.datetime:
    """Return the aware moment of ``time`` relative to the local date of ``week``'s deadline."""
    day = campaign.deadline(week).date() + time.days * _DAY
    return dt.datetime.combine(day, time.time, tzinfo=campaign.timezone)


# --- one-off deadlines -------------------------------------------------------------------------


class OneOffNotice(NamedTuple):
    """A reminder or overdue notice of a one-off ``document`` (``demand-form``, ``summary``)."""

    kind: ScheduledNotice
    document: str
    deadline: dt.datetime
    moment: dt.datetime


def one_off_moments(campaign: Campaign, schedule: NoticeSchedule,
                    deadlines: Mapping[str, dt.datetime]) -> list[OneOffNotice]:
    """Return the reminders and overdue notices of each one-off deadline, ordered by moment.

    The schedule is written for the weekly deadline, so each notice keeps its distance from it:
    with weekly deadlines at 18:00 and reminders at 12:00, a one-off deadline at 18:00 on
    2024年3月20日 gets its reminder at 12:00 that day. The digest after a one-off deadline lists
    who sent the document; the weekly digests list it too while its deadline is near.
    """
    weekly_time = campaign.first_deadline.astimezone(campaign.timezone).time()
    planned = [
        OneOffNotice(kind, document, deadline, deadline + time.offset_from(weekly_time))
        for document, deadline in deadlines.items()
        for kind, time in schedule.times().items()
    ]
    return sorted(planned, key=lambda notice: (notice.moment, _KIND_ORDER[notice.kind], notice.document))


def due_one_off_notices(campaign: Campaign, schedule: NoticeSchedule,
                        deadlines: Mapping[str, dt.datetime], now: dt.datetime) -> list[OneOffNotice]:
    """Return the one-off notices due at ``now`` and still useful, by the rules of :func:`notice_expiry`."""
    weekly_time = campaign.first_deadline.astimezone(campaign.timezone).time()
    due = []
    for notice in one_off_moments(campaign, schedule, deadlines):
        if notice.kind is ScheduledNotice.REMINDER:
            expiry = notice.deadline
        elif notice.kind is ScheduledNotice.OVERDUE and schedule.overdue_2 is not None:
            expiry = notice.deadline + schedule.overdue_2.offset_from(weekly_time)
        else:
            expiry = notice.deadline + _WEEK
        if notice.moment <= now < expiry:
            due.append(notice)
    return due
