"""Checks across weeks (核实性): running totals against last week, villages against the config."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest.calendar import Campaign
from ingest.consistency import CheckId, WeekTotals, check_consistency, previous_accepted

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = Campaign(dt.datetime(2023, 12, 8, 18, tzinfo=SHANGHAI),
                    dt.datetime(2024, 3, 15, 18, tzinfo=SHANGHAI), SHANGHAI, frozenset({10, 11}))

# 水定镇 week 3 as in the sample table: 46 场次 and 2385 人次 so far, 15 and 892 this week.
WEEK_3 = WeekTotals(3, {3: 12, 4: 46, 5: 2385, 6: 15, 7: 892})


def week_4(**columns: int) -> WeekTotals:
    totals = {3: 12, 4: 46 + 10, 5: 2385 + 500, 6: 10, 7: 500}
    totals.update({int(name[1:]): value for name, value in columns.items()})
    return WeekTotals(4, totals)


def findings(current: WeekTotals, previous: WeekTotals | None = WEEK_3, villages: int | None = None):
    return check_consistency(current, previous, CAMPAIGN, villages)


def test_consistent_week_no_findings():
    assert findings(week_4(), villages=12) == []


def test_running_sessions_off():
    assert [finding.check for finding in findings(week_4(c4=57))] == [CheckId.C1]


def test_running_people_off():
    assert [finding.check for finding in findings(week_4(c5=2800))] == [CheckId.C2]


def test_c1_values():
    finding = findings(week_4(c4=57))[0]
    assert finding.values == {"4": 57, "4′": 46, "6": 10}


def test_c1_columns():
    assert findings(week_4(c4=57))[0].columns == (4, 6)


def test_c1_expected():
    assert findings(week_4(c4=57))[0].expected == 56


def test_c1_previous_week():
    assert findings(week_4(c4=57))[0].previous_week == 3


def test_c1_message_numbers():
    message = findings(week_4(c4=57))[0].message
    assert "4栏（累计场次）为 57" in message
    assert "第3周报送的4栏（累计场次） 46" in message
    assert "应为 56，相差 1" in message


def test_c1_message_asks_confirm():
    assert "更正后重新报送" in findings(week_4(c4=57))[0].message


def test_this_week_as_running_total():
    # A clerk who copies this week's numbers into 累计 gets both findings.
    checks = [finding.check for finding in findings(week_4(c4=10, c5=500))]
    assert checks == [CheckId.C1, CheckId.C2]


def test_no_previous_no_running_findings():
    assert findings(week_4(c4=10), previous=None) == []


def test_gap_allows_growth():
    week_5 = WeekTotals(5, {4: 46 + 10 + 8, 5: 2385 + 500 + 300, 6: 8, 7: 300})
    assert findings(week_5) == []


def test_gap_shrinking_total_found():
    week_5 = WeekTotals(5, {4: 50, 5: 2385 + 300, 6: 8, 7: 300})
    assert [finding.check for finding in findings(week_5)] == [CheckId.C1]


def test_gap_message_names_missed_week():
    week_5 = WeekTotals(5, {4: 50, 5: 2385 + 300, 6: 8, 7: 300})
    assert "第4周未报送" in findings(week_5)[0].message


def test_skipped_weeks_not_a_gap():
    week_9 = WeekTotals(9, {4: 100, 5: 5000, 6: 5, 7: 200})
    week_12 = WeekTotals(12, {4: 104, 5: 5200, 6: 5, 7: 200})
    assert [finding.check for finding in findings(week_12, week_9)] == [CheckId.C1]


def test_missing_columns_count_zero():
    assert findings(WeekTotals(4, {4: 46, 5: 2385}), villages=12) == []


def test_villages_over_config():
    assert [finding.check for finding in findings(week_4(c3=13), villages=12)] == [CheckId.C3]


def test_villages_equal_config():
    assert findings(week_4(c3=12), villages=12) == []


def test_villages_unknown_not_checked():
    assert findings(week_4(c3=99)) == []


def test_villages_checked_without_previous():
    assert len(findings(week_4(c3=13), previous=None, villages=12)) == 1


def test_c3_values():
    assert findings(week_4(c3=13), villages=12)[0].values == {"3": 13, "villages": 12}


def test_c3_message():
    assert "3栏（村（个））为 13，超过本单位的行政村数 12" in findings(week_4(c3=13), villages=12)[0].message


@pytest.mark.parametrize("week, expected", [(4, 3), (3, 1), (1, None), (20, 9)])
def test_previous_accepted(week, expected):
    reports = [WeekTotals(9, {}), WeekTotals(1, {}), WeekTotals(3, {})]
    found = previous_accepted(reports, week)
    assert (found.week if found else None) == expected
