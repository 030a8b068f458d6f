"""Notice moments around each deadline, and the week a late report counts for."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.calendar import (
    Campaign, NoticeSchedule, NoticeTime, PlannedNotice, ScheduledNotice, assign_week,
    due_notices, notice_expiry, notice_moments,
)
from ingest.units import UnitDirectory, UnitSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST = dt.datetime(2023, 12, 8, 18, 0, tzinfo=SHANGHAI)
LAST = dt.datetime(2024, 3, 15, 18, 0, tzinfo=SHANGHAI)
DEFAULT = NoticeSchedule()
REMINDER = ScheduledNotice.REMINDER
OVERDUE = ScheduledNotice.OVERDUE
OVERDUE_2 = ScheduledNotice.OVERDUE_2
DIGEST = ScheduledNotice.DIGEST


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    year = 2023 if month == 12 else 2024
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def campaign() -> Campaign:
    return Campaign(FIRST, LAST, SHANGHAI)


@pytest.fixture
def with_break() -> Campaign:
    # Weeks 10 and 11 fall on the Spring Festival 2024 (deadlines 2024-02-09 and 2024-02-16).
    return Campaign(FIRST, LAST, SHANGHAI, frozenset({10, 11}))


def moments_of(campaign: Campaign, week: int, schedule: NoticeSchedule = DEFAULT) -> dict:
    return {notice.kind: notice.moment
            for notice in notice_moments(campaign, schedule) if notice.week == week}


# --- notice moments ----------------------------------------------------------------------------


def test_default_reminder_friday_noon(campaign):
    assert moments_of(campaign, 3)[REMINDER] == at(12, 22, 12)


def test_default_overdue_friday_evening(campaign):
    assert moments_of(campaign, 3)[OVERDUE] == at(12, 22, 18, 30)


def test_default_second_overdue_monday(campaign):
    assert moments_of(campaign, 3)[OVERDUE_2] == at(12, 25, 10)


def test_default_digest_friday_night(campaign):
    assert moments_of(campaign, 3)[DIGEST] == at(12, 22, 19)


def test_moments_in_campaign_timezone(campaign):
    assert moments_of(campaign, 3)[REMINDER].utcoffset() == dt.timedelta(hours=8)


def test_moments_follow_thursday_deadline():
    thursday = Campaign(at(12, 7, 17), at(3, 14, 17), SHANGHAI)
    assert moments_of(thursday, 1)[OVERDUE_2] == at(12, 10, 10)


def test_reminder_day_before_deadline(campaign):
    schedule = NoticeSchedule(reminder=NoticeTime(-1, dt.time(16, 0)))
    assert moments_of(campaign, 1, schedule)[REMINDER] == at(12, 7, 16)


def test_every_kind_every_week(campaign):
    assert len(notice_moments(campaign, DEFAULT)) == 4 * 15


def test_skipped_week_has_no_notices(with_break):
    assert moments_of(with_break, 10) == {}


def test_week_after_break_has_notices(with_break):
    assert len(moments_of(with_break, 12)) == 4


def test_notice_turned_off(campaign):
    schedule = NoticeSchedule(overdue_2=None)
    assert OVERDUE_2 not in moments_of(campaign, 1, schedule)


def test_moments_in_order(campaign):
    moments = [notice.moment for notice in notice_moments(campaign, DEFAULT)]
    assert moments == sorted(moments)


def test_week_one_order(campaign):
    kinds = [notice.kind for notice in notice_moments(campaign, DEFAULT)[:4]]
    assert kinds == [REMINDER, OVERDUE, DIGEST, OVERDUE_2]


def test_same_moment_kind_order(campaign):
    schedule = NoticeSchedule(digest=NoticeTime(0, dt.time(18, 30)))
    kinds = [notice.kind for notice in notice_moments(campaign, schedule)[:3]]
    assert kinds == [REMINDER, OVERDUE, DIGEST]


def test_planned_notice_is_tuple(campaign):
    kind, week, moment = notice_moments(campaign, DEFAULT)[0]
    assert (kind, week, moment) == (REMINDER, 1, at(12, 8, 12))


def test_kind_is_header_value():
    assert OVERDUE_2 == "overdue-2"


# --- NoticeTime ---------------------------------------------------------------------------------


def test_offset_before_deadline():
    assert NoticeTime(0, dt.time(12)).offset_from(dt.time(18)) == dt.timedelta(hours=-6)


def test_offset_days_after():
    assert NoticeTime(3, dt.time(10)).offset_from(dt.time(18)) == dt.timedelta(days=2, hours=16)


@pytest.mark.parametrize("time, text", [
    (NoticeTime(0, dt.time(12)), "截止当天 12:00"),
    (NoticeTime(-1, dt.time(16, 30)), "截止前1天 16:30"),
    (NoticeTime(3, dt.time(10)), "截止后3天 10:00"),
])
def test_describe(time, text):
    assert time.describe() == text


# --- expiry and due notices ---------------------------------------------------------------------


def test_reminder_expires_at_deadline(campaign):
    notice = PlannedNotice(REMINDER, 3, at(12, 22, 12))
    assert notice_expiry(campaign, DEFAULT, notice) == at(12, 22, 18)


def test_overdue_expires_at_second(campaign):
    notice = PlannedNotice(OVERDUE, 3, at(12, 22, 18, 30))
    assert notice_expiry(campaign, DEFAULT, notice) == at(12, 25, 10)


def test_overdue_alone_lasts_a_week(campaign):
    notice = PlannedNotice(OVERDUE, 3, at(12, 22, 18, 30))
    assert notice_expiry(campaign, NoticeSchedule(overdue_2=None), notice) == at(12, 29, 18)


def test_digest_lasts_a_week(campaign):
    notice = PlannedNotice(DIGEST, 3, at(12, 22, 19))
    assert notice_expiry(campaign, DEFAULT, notice) == at(12, 29, 18)


def test_nothing_due_before_campaign(campaign):
    assert due_notices(campaign, DEFAULT, at(12, 1, 9)) == []


def test_reminder_due_at_its_moment(campaign):
    assert due_notices(campaign, DEFAULT, at(12, 8, 12)) == [PlannedNotice(REMINDER, 1, at(12, 8, 12))]


def test_reminder_dropped_after_deadline(campaign):
    kinds = {notice.kind for notice in due_notices(campaign, DEFAULT, at(12, 8, 18, 45))}
    assert kinds == {OVERDUE}


def test_down_over_weekend_sends_second_only(campaign):
    due = due_notices(campaign, DEFAULT, at(12, 11, 11))
    assert [notice.kind for notice in due] == [DIGEST, OVERDUE_2]


def test_last_run_limits_to_new(campaign):
    due = due_notices(campaign, DEFAULT, at(12, 8, 19, 5), last_run=at(12, 8, 18, 45))
    assert due == [PlannedNotice(DIGEST, 1, at(12, 8, 19))]


def test_notice_at_last_run_not_repeated(campaign):
    assert due_notices(campaign, DEFAULT, at(12, 8, 12, 5), last_run=at(12, 8, 12)) == []


def test_nothing_due_in_break(with_break):
    due = due_notices(with_break, DEFAULT, at(2, 9, 19, 30))
    assert [notice.week for notice in due] == []


def test_last_week_after_campaign(campaign):
    due = due_notices(campaign, DEFAULT, at(3, 18, 9))
    assert [(notice.kind, notice.week) for notice in due] == [(OVERDUE, 15), (DIGEST, 15)]


def test_nothing_due_long_after(campaign):
    assert due_notices(campaign, DEFAULT, at(4, 1, 9)) == []


# --- assign_week --------------------------------------------------------------------------------


def test_explicit_week_wins(campaign):
    assert assign_week(campaign, at(12, 23, 9), 5, {3}) == 5


def test_explicit_week_wins_over_missing(campaign):
    assert assign_week(campaign, at(12, 23, 9), 4, set()) == 4


def test_explicit_skipped_week_disregarded(with_break):
    assert assign_week(with_break, at(2, 5, 9), 10, set()) == 9


def test_on_time_counts_this_week(campaign):
    assert assign_week(campaign, at(12, 22, 17), None, {1, 2}) == 3


def test_at_deadline_counts_this_week(campaign):
    assert assign_week(campaign, at(12, 22, 18), None, {1, 2}) == 3


def test_unlabelled_fills_missing_week(campaign):
    assert assign_week(campaign, at(12, 22, 17), None, {1}) == 2


def test_late_counts_week_closed(campaign):
    assert assign_week(campaign, at(12, 22, 18, 1), None, {1, 2}) == 3


def test_late_days_after_counts_closed(campaign):
    assert assign_week(campaign, at(12, 27, 9), None, {1, 2}) == 3


def test_after_accepted_counts_next(campaign):
    assert assign_week(campaign, at(12, 22, 19), None, {3}) == 4


def test_only_latest_closed_week(campaign):
    assert assign_week(campaign, at(12, 22, 19), None, {3, 1}) == 4


def test_before_campaign_week_one(campaign):
    assert assign_week(campaign, at(12, 1, 9), None, set()) == 1


def test_break_counts_week_before(with_break):
    assert assign_week(with_break, at(2, 14, 9), None, set()) == 9


def test_after_break_accepted_next(with_break):
    assert assign_week(with_break, at(2, 14, 9), None, {9}) == 12


def test_after_campaign_missing_last(campaign):
    assert assign_week(campaign, at(3, 16, 9), None, set()) == 15


def test_after_campaign_nothing_left(campaign):
    assert assign_week(campaign, at(3, 16, 9), None, {15}) is None


def test_joining_unit_not_filled_before(campaign):
    joining = UnitSettings("果子沟牧场", from_week=3)
    assert assign_week(campaign, at(12, 22, 17), None, set(), joining.reports_in) == 3


def test_leaving_unit_fills_its_last_week(campaign):
    leaving = UnitSettings("三宫回族乡", until_week=2)
    assert assign_week(campaign, at(12, 27, 9), None, set(), leaving.reports_in) == 2


# --- units that join late or leave ------------------------------------------------------------


def test_unit_reports_from_first_week():
    assert UnitSettings("水定镇").reports_in(1)


def test_unit_not_before_joining():
    assert not UnitSettings("水定镇", from_week=4).reports_in(3)


def test_unit_reports_when_joining():
    assert UnitSettings("水定镇", from_week=4).reports_in(4)


def test_unit_reports_last_week():
    assert UnitSettings("水定镇", until_week=9).reports_in(9)


def test_unit_not_after_leaving():
    assert not UnitSettings("水定镇", until_week=9).reports_in(10)


def test_units_due_in_range(campaign):
    units = UnitDirectory([UnitSettings("水定镇"), UnitSettings("惠远镇", from_week=4)])
    assert [unit.name for unit in units.due_in(campaign, 3)] == ["水定镇"]


def test_no_unit_due_in_skipped_week(with_break):
    units = UnitDirectory([UnitSettings("水定镇")])
    assert units.due_in(with_break, 10) == []


def test_no_unit_due_after_campaign(campaign):
    units = UnitDirectory([UnitSettings("水定镇")])
    assert units.due_in(campaign, 16) == []


# --- properties -------------------------------------------------------------------------------

MOMENTS = st.datetimes(min_value=dt.datetime(2023, 11, 1), max_value=dt.datetime(2024, 4, 30),
                       timezones=st.just(SHANGHAI))
BREAK = Campaign(FIRST, LAST, SHANGHAI, frozenset({10, 11}))


@given(MOMENTS, st.frozensets(st.integers(1, 15)))
def test_assigned_week_is_reporting(moment, accepted):
    week = assign_week(BREAK, moment, None, accepted)
    assert week is None or BREAK.is_reporting_week(week)


@given(MOMENTS)
def test_all_accepted_gives_next_due(moment):
    assert assign_week(BREAK, moment, None, set(range(1, 16))) == BREAK.week_due_after(moment)


@given(MOMENTS)
def test_no_reminder_after_deadline(moment):
    for notice in due_notices(BREAK, DEFAULT, moment):
        if notice.kind is REMINDER:
            assert moment < BREAK.deadline(notice.week)


@given(MOMENTS)
def test_one_overdue_per_week(moment):
    weeks = [notice.week for notice in due_notices(BREAK, DEFAULT, moment)
             if notice.kind in (OVERDUE, OVERDUE_2)]
    assert len(weeks) == len(set(weeks))
