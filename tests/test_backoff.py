"""ingest.backoff: the waits between intake cycles, computed without a clock or random source."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.backoff import Backoff, CycleResult, RetryPolicy, next_cycle

BACKOFF = Backoff(initial=5, maximum=300, jitter=0.2)
POLICY = RetryPolicy(poll_interval=600, reconnect=BACKOFF, login_retry=1800)


@pytest.mark.parametrize(("failures", "expected"), [
    (1, 5), (2, 10), (3, 20), (4, 40), (5, 80), (6, 160), (7, 300), (8, 300), (1000, 300),
])
def test_delay_doubles_to_cap(failures, expected):
    assert BACKOFF.delay(failures, 0.0) == expected


def test_delay_zero_before_failure():
    assert BACKOFF.delay(0, 0.5) == 0.0


def test_delay_jitter_takes_off_fraction():
    assert BACKOFF.delay(2, 0.5) == pytest.approx(10 * (1 - 0.2 * 0.5))


def test_delay_without_jitter_ignores_random():
    assert Backoff(initial=5, maximum=300, jitter=0).delay(3, 0.99) == 20


@given(failures=st.integers(min_value=1, max_value=10_000),
       fraction=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_delay_within_jitter_band(failures, fraction):
    capped = min(300, 5 * 2 ** min(failures - 1, 62))
    delay = BACKOFF.delay(failures, fraction)
    assert delay <= capped
    assert delay >= capped * 0.8


@given(failures=st.integers(min_value=1, max_value=200))
def test_delay_never_shrinks(failures):
    assert BACKOFF.delay(failures + 1, 0.0) >= BACKOFF.delay(failures, 0.0)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2.0])
def test_delay_rejects_fraction_outside_unit(fraction):
    with pytest.raises(ValueError):
        BACKOFF.delay(1, fraction)


@pytest.mark.parametrize("fields", [
    {"initial": 0, "maximum": 300},
    {"initial": 10, "maximum": 5},
    {"initial": 5, "maximum": 300, "jitter": 1.0},
])
def test_backoff_rejects_invalid(fields):
    with pytest.raises(ValueError):
        Backoff(**fields)


def test_next_cycle_done_resets_and_polls():
    assert next_cycle(CycleResult.DONE, 4, POLICY, 0.0) == (0, 600)


def test_next_cycle_failed_counts_and_backs_off():
    assert next_cycle(CycleResult.FAILED, 0, POLICY, 0.0) == (1, 5)
    assert next_cycle(CycleResult.FAILED, 3, POLICY, 0.0) == (4, 40)


def test_next_cycle_failed_may_exceed_poll_interval():
    fast_poll = RetryPolicy(poll_interval=30, reconnect=BACKOFF, login_retry=1800)
    assert next_cycle(CycleResult.FAILED, 9, fast_poll, 0.0) == (10, 300)


def test_next_cycle_login_rejected_waits_long():
    assert next_cycle(CycleResult.LOGIN_REJECTED, 2, POLICY, 0.0) == (0, 1800)
