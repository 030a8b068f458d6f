"""Campaign calendar: deadlines, weeks, lateness and week numbers written in subjects."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.calendar import Campaign, week_from_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST = dt.datetime(2023, 12, 8, 18, 0, tzinfo=SHANGHAI)
LAST = dt.datetime(2024, 3, 15, 18, 0, tzinfo=SHANGHAI)


def at(month: int, day: int, hour: int = 18, minute: int = 0, second: int = 0) -> dt.datetime:
    year = 2023 if month == 12 else 2024
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


@pytest.fixture
def campaign() -> Campaign:
    return Campaign(FIRST, LAST, SHANGHAI)


@pytest.fixture
def with_break() -> Campaign:
    # Weeks 10 and 11 fall on the Spring Festival 2024 (deadlines 2024-02-09 and 2024-02-16).
    return Campaign(FIRST, LAST, SHANGHAI, frozenset({10, 11}))


def test_deadline_week_one(campaign):
    assert campaign.deadline(1) == FIRST


def test_deadline_week_three(campaign):
    assert campaign.deadline(3) == at(12, 22)


def test_deadline_in_campaign_timezone(campaign):
    assert campaign.deadline(5).utcoffset() == dt.timedelta(hours=8)


def test_last_week_number(campaign):
    assert campaign.last_week == 15


def test_deadline_last_week(campaign):
    assert campaign.deadline(15) == LAST


def test_deadline_week_zero_rejected(campaign):
    with pytest.raises(ValueError):
        campaign.deadline(0)


def test_deadline_after_last_rejected(campaign):
    with pytest.raises(ValueError):
        campaign.deadline(16)


def test_weeks_all(campaign):
    assert campaign.weeks() == list(range(1, 16))


def test_weeks_without_skipped(with_break):
    assert with_break.weeks() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15]


def test_skipped_week_keeps_number(with_break):
    assert with_break.deadline(12) == at(2, 23)


def test_skipped_week_not_reporting(with_break):
    assert not with_break.is_reporting_week(10)


def test_reporting_week_inside(with_break):
    assert with_break.is_reporting_week(12)


def test_reporting_week_outside(campaign):
    assert not campaign.is_reporting_week(16)


def test_due_after_exactly_at_deadline(campaign):
    assert campaign.week_due_after(at(12, 22)) == 3


def test_due_after_second_past_deadline(campaign):
    assert campaign.week_due_after(at(12, 22, 18, 0, 1)) == 4


def test_due_after_before_campaign(campaign):
    assert campaign.week_due_after(at(12, 1, 9)) == 1


def test_due_after_last_deadline(campaign):
    assert campaign.week_due_after(at(3, 15, 18, 1)) is None


def test_due_after_in_break(with_break):
    assert with_break.week_due_after(at(2, 5, 10)) == 12


def test_due_after_other_timezone(campaign):
    # 10:30 UTC is 18:30 in Shanghai, past the week 3 deadline.
    moment = dt.datetime(2023, 12, 22, 10, 30, tzinfo=dt.timezone.utc)
    assert campaign.week_due_after(moment) == 4


@pytest.mark.parametrize(
    ("fill_date", "week"),
    [
        (dt.date(2023, 12, 22), 3),  # on the deadline day
        (dt.date(2023, 12, 20), 3),  # earlier in the week
        (dt.date(2023, 12, 23), 4),  # the day after a deadline starts the next week
        (dt.date(2023, 12, 2), 1),  # first day of week 1
        (dt.date(2024, 3, 15), 15),  # last deadline day
    ],
)
def test_week_for_fill_date(campaign, fill_date, week):
    assert campaign.week_for_fill_date(fill_date) == week


def test_fill_date_before_campaign(campaign):
    assert campaign.week_for_fill_date(dt.date(2023, 12, 1)) is None


def test_fill_date_after_campaign(campaign):
    assert campaign.week_for_fill_date(dt.date(2024, 3, 16)) is None


def test_fill_date_wrong_year(campaign):
    assert campaign.week_for_fill_date(dt.date(2022, 12, 22)) is None


def test_fill_date_in_break(with_break):
    assert with_break.week_for_fill_date(dt.date(2024, 2, 14)) == 12


def test_on_time_at_deadline(campaign):
    assert not campaign.is_late(3, at(12, 22))


def test_late_after_deadline(campaign):
    # Sent 18:47, as the 三道河乡 phone mail of week 3 was.
    assert campaign.is_late(3, at(12, 22, 18, 47))


def test_early_report_not_late(campaign):
    assert not campaign.is_late(4, at(12, 22, 18, 47))


def test_dst_deadline_keeps_local_time():
    # Europe/Berlin moves to summer time on 2024-03-31, between these two deadlines.
    berlin = ZoneInfo("Europe/Berlin")
    first = dt.datetime(2024, 3, 29, 18, 0, tzinfo=berlin)
    campaign = Campaign(first, dt.datetime(2024, 4, 12, 18, 0, tzinfo=berlin), berlin)
    assert campaign.deadline(2).hour == 18


def test_dst_deadline_offset_changes():
    berlin = ZoneInfo("Europe/Berlin")
    first = dt.datetime(2024, 3, 29, 18, 0, tzinfo=berlin)
    campaign = Campaign(first, dt.datetime(2024, 4, 12, 18, 0, tzinfo=berlin), berlin)
    assert campaign.deadline(2).utcoffset() == dt.timedelta(hours=2)


def test_naive_deadline_rejected():
    with pytest.raises(ValueError):
        Campaign(FIRST.replace(tzinfo=None), LAST, SHANGHAI)


def test_partial_week_rejected():
    with pytest.raises(ValueError):
        Campaign(FIRST, LAST - dt.timedelta(days=1), SHANGHAI)


def test_last_before_first_rejected():
    with pytest.raises(ValueError):
        Campaign(LAST, FIRST, SHANGHAI)


@given(st.datetimes(min_value=dt.datetime(2023, 11, 1), max_value=dt.datetime(2024, 4, 1),
                    timezones=st.just(SHANGHAI)))
def test_due_week_is_first_not_passed(moment):
    campaign = Campaign(FIRST, LAST, SHANGHAI, frozenset({10, 11}))
    week = campaign.week_due_after(moment)
    earlier = [w for w in campaign.weeks() if week is None or w < week]
    assert all(campaign.deadline(w) < moment for w in earlier)


@given(st.datetimes(min_value=dt.datetime(2023, 11, 1), max_value=dt.datetime(2024, 3, 15, 17),
                    timezones=st.just(SHANGHAI)))
def test_due_week_deadline_not_passed(moment):
    campaign = Campaign(FIRST, LAST, SHANGHAI, frozenset({10, 11}))
    assert campaign.deadline(campaign.week_due_after(moment)) >= moment


@pytest.mark.parametrize(
    ("text", "week"),
    [
        ("第3周", 3),
        ("第 3 周", 3),
        ("第三周", 3),
        ("第十周", 10),
        ("第十二周", 12),
        ("第十五周", 15),
        ("第二十周", 20),
        ("第二十五周", 25),
        ("（第3周）", 3),
        ("清水河镇“科技之冬”活动开展周统计表（第3周）", 3),
        ("水定镇第3周科技之冬周统计表", 3),
        ("惠远镇第三周科技之冬统计表", 3),
        ("第03周", 3),
        ("第３周", 3),  # full-width digit typed with a Chinese input method
        ("第12周", 12),
        ("第三周周报", 3),
        ("第3周、第3周重发", 3),  # the same week twice is still one week
    ],
)
def test_week_from_text(text, week):
    assert week_from_text(text) == week


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "芦草沟镇科技之冬周报表（12月22日）",
        "2023-12-22",
        "第3周期",  # 周期 means period
        "第3周年",  # 周年 means anniversary
        "第3周末",  # 周末 means weekend
        "第0周",
        "第零周",
        "第一百周",
        "第123周",
        "第3.5周",
        "3周",
        "第3周和第4周",  # two different weeks: ambiguous
        "第十十周",
        "第三三周",
    ],
)
def test_week_from_text_rejects(text):
    assert week_from_text(text) is None


_NUMERALS = "零一二三四五六七八九"


def chinese_numeral(number: int) -> str:
    tens, ones = divmod(number, 10)
    if tens == 0:
        return _NUMERALS[ones]
    prefix = "" if tens == 1 else _NUMERALS[tens]
    return prefix + "十" + (_NUMERALS[ones] if ones else "")


@given(st.integers(min_value=1, max_value=99))
def test_week_from_chinese_numerals(number):
    assert week_from_text(f"第{chinese_numeral(number)}周") == number


@given(st.integers(min_value=1, max_value=99))
def test_week_from_digits(number):
    assert week_from_text(f"第{number}周") == number
