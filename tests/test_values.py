"""parse_count: how a cell of 附件二 becomes a count."""

import datetime as dt

import pytest

from ingest.values import is_zero_mark, parse_count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0),
        ("", 0),
        ("   ", 0),
        ("\u3000", 0),
        (12, 12),
        (0, 0),
        (12.0, 12),
        ("12", 12),
        (" 12 ", 12),
        ("12.0", 12),
        ("１２", 12),
        ("1,234", 1234),
        ("３，１２０", 3120),
        ("12场", 12),
        ("12 场", 12),
        ("3,120人次", 3120),
        ("１２场次", 12),
        ("26人", 26),
        ("12个", 12),
    ],
)
def test_count_accepted(value, expected):
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", ["/", "／", "—", "——", "-", "－", "无", " 无 ", "\\"])
def test_count_zero_marks(value):
    assert parse_count(value) == 0


@pytest.mark.parametrize(
    "value",
    [12.5, -1, "-1", "－3", "12.5", "1/2", "½", "三场", "12人左右", "1,23", "1 2", "约12", True,
     float("nan"), float("inf"), "若干", "场12"],
)
def test_count_rejected(value):
    assert parse_count(value) is None


def test_count_rejects_datetime():
    assert parse_count(dt.datetime(2023, 12, 22)) is None


def test_zero_mark_dash():
    assert is_zero_mark("——")


def test_zero_mark_not_number():
    assert not is_zero_mark("0")


def test_zero_mark_not_blank():
    assert not is_zero_mark("")
