"""parse_fill_date: the 填报时间 field as clerks write it."""

import datetime as dt

import pytest

from ingest.dates import parse_fill_date

DAY = dt.date(2023, 12, 22)


@pytest.mark.parametrize(
    "value",
    [
        "2023年12月22日",
        "2023年12月22号",
        "2023 年 12 月 22 日",
        "２０２３年１２月２２日",
        "2023.12.22",
        "2023-12-22",
        "2023/12/22",
        "20231222",
        "填报时间：2023年12月22日",
        dt.datetime(2023, 12, 22, 16, 30),
        DAY,
        45282,
        45282.0,
        45282.75,
        "45282",
    ],
)
def test_fill_date_read(value):
    assert parse_fill_date(value) == DAY


@pytest.mark.parametrize(
    "value",
    [None, "", "12月22日", "2023年13月1日", "2023年2月30日", 12, "下周五", float("nan"), True],
)
def test_fill_date_unreadable(value):
    assert parse_fill_date(value) is None
