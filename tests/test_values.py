"""parse_count: how a cell of 附件二 becomes a count."""

import pytest

from ingest.values import parse_count


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
    ],
)
def test_count_accepted(value, expected):
    assert parse_count(value) == expected


@pytest.mark.parametrize(
    "value",
    [12.5, -1, "-1", "12.5", "12人", "1,23", True, float("nan"), float("inf"), "无"],
)
def test_count_rejected(value):
    assert parse_count(value) is None


def test_count_rejects_datetime():
    import datetime as dt

    assert parse_count(dt.datetime(2023, 12, 22)) is None
