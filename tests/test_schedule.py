"""service.schedule: the intake job's next run time on a real, not started, APScheduler."""

from __future__ import annotations

import datetime as dt

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from ingest.backoff import Backoff, CycleResult, RetryPolicy
from service.schedule import IntakeSchedule

NOW = dt.datetime(2023, 12, 22, 10, 0, tzinfo=dt.timezone.utc)
POLICY = RetryPolicy(poll_interval=600, reconnect=Backoff(initial=5, maximum=300), login_retry=1800)


@pytest.fixture
def scheduler():
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(print, "interval", seconds=600, next_run_time=NOW + dt.timedelta(days=1), id="intake")
    return scheduler


@pytest.fixture
def schedule(scheduler) -> IntakeSchedule:
    return IntakeSchedule(scheduler, "intake", POLICY, random_fraction=lambda: 0.0, now=lambda: NOW)


def next_run(scheduler) -> dt.timedelta:
    return scheduler.get_job("intake").next_run_time - NOW


def test_done_waits_poll_interval(scheduler, schedule):
    schedule.run(lambda: CycleResult.DONE)
    assert next_run(scheduler) == dt.timedelta(seconds=600)


def test_failures_back_off(scheduler, schedule):
    waits = []
    for _ in range(4):
        schedule.run(lambda: CycleResult.FAILED)
        waits.append(next_run(scheduler).total_seconds())
    assert waits == [5, 10, 20, 40]


def test_done_resets_back_off(scheduler, schedule):
    schedule.run(lambda: CycleResult.FAILED)
    schedule.run(lambda: CycleResult.FAILED)
    schedule.run(lambda: CycleResult.DONE)
    schedule.run(lambda: CycleResult.FAILED)
    assert next_run(scheduler) == dt.timedelta(seconds=5)


def test_login_rejected_waits_long(scheduler, schedule):
    schedule.run(lambda: CycleResult.LOGIN_REJECTED)
    assert next_run(scheduler) == dt.timedelta(seconds=1800)


def test_exception_counts_as_failure(scheduler, schedule):
    def broken() -> CycleResult:
        raise RuntimeError("bug in the cycle")

    with pytest.raises(RuntimeError):
        schedule.run(broken)
    assert next_run(scheduler) == dt.timedelta(seconds=5)


def test_wake_when_idle_runs_now(scheduler, schedule):
    schedule.run(lambda: CycleResult.DONE)
    schedule.wake()
    assert next_run(scheduler) == dt.timedelta(0)


def test_wake_during_cycle_runs_after_it(scheduler, schedule):
    def cycle() -> CycleResult:
        schedule.wake()
        return CycleResult.DONE

    schedule.run(cycle)
    assert next_run(scheduler) == dt.timedelta(0)


def test_wake_during_failed_cycle_keeps_back_off(scheduler, schedule):
    def cycle() -> CycleResult:
        schedule.wake()
        return CycleResult.FAILED

    schedule.run(cycle)
    assert next_run(scheduler) == dt.timedelta(seconds=5)


def test_wake_ignored_during_back_off(scheduler, schedule):
    schedule.run(lambda: CycleResult.LOGIN_REJECTED)
    schedule.wake()
    assert next_run(scheduler) == dt.timedelta(seconds=1800)


def test_forced_wake_ends_back_off(scheduler, schedule):
    schedule.run(lambda: CycleResult.FAILED)
    schedule.wake(force=True)
    assert next_run(scheduler) == dt.timedelta(0)


def test_missing_job_ignored():
    """A scheduler stopped by SIGTERM during the cycle no longer finds the job."""
    empty = BackgroundScheduler(timezone="UTC")
    schedule = IntakeSchedule(empty, "intake", POLICY, random_fraction=lambda: 0.0, now=lambda: NOW)
    assert schedule.run(lambda: CycleResult.DONE) is CycleResult.DONE
