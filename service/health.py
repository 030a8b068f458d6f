"""The service's health, worked out from the recorded intake runs, the clock and the settings.

Pure logic: the callers read the runs from the database (:mod:`store.health`) and act on the
result. The service is unhealthy when the last ``alert_after_failures`` runs failed over at
least one poll interval, or when no run finished for ``stale_after``. Intake retries a failed
cycle within seconds (``[mailbox] reconnect_delay``), so the failures alone would also count a
network outage of half a minute. A run without ``finished_at`` is still running while it is
younger than one poll interval, and counts as failed after that, because the process that ran it
most likely died. A run that legitimately takes longer than one interval also counts as failed
until it finishes.

A failure episode is the time after the latest successful run. Its number (``Health.episode``)
is that run's id, or 0 before the first success, so an alert keyed on it goes out once per
episode whichever process or restart sends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class RunState(StrEnum):
    """The state of one recorded intake run at a given moment."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RUNNING = "running"
    # Unfinished and older than one poll interval: the process most likely died during it.
    ABANDONED = "abandoned"


# The prefix of a run's error when the mail server rejected the login: the class name of
# ingest.errors.AuthenticationFailed, as the run records store errors.
LOGIN_ERROR = "AuthenticationFailed"


class Problem(StrEnum):
    """A reason the service counts as unhealthy."""

    NEVER_RUN = "never-run"
    FAILING = "failing"
    STALE = "stale"
    # The server refused the login at the latest run: nothing is read until the code is renewed.
    LOGIN_REJECTED = "login-rejected"


@dataclass(frozen=True)
class RunRecord:
    """One recorded intake run, as :class:`store.models.IntakeRun` stores it."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    ok: bool
    error: str | None = None
    seen: int = 0
    processed: int = 0
    moved: int = 0
    failed: int = 0


@dataclass(frozen=True)
class HealthPolicy:
    """The thresholds: failed runs in a row and how long they must span, the age of an abandoned
    run, the time without a finished run."""

    alert_after_failures: int
    failing_for: dt.timedelta
    abandoned_after: dt.timedelta
    stale_after: dt.timedelta

    @classmethod
    def from_interval(cls, poll_interval: int, alert_after_failures: int,
                      alert_after_intervals: int) -> HealthPolicy:
        """Return the policy for a poll interval in seconds and the two alert thresholds."""
        interval = dt.timedelta(seconds=poll_interval)
        return cls(alert_after_failures, interval, interval, interval * alert_after_intervals)


@dataclass(frozen=True)
class Health:
    """The service's state at ``checked_at``, with the facts the report and the alert print.

    ``failures`` are the failed and abandoned runs after the latest success, oldest first.
    ``last_activity`` is when the latest run finished, or when the first run started if none
    finished; None without runs.
    """

    checked_at: dt.datetime
    problems: tuple[Problem, ...]
    episode: int
    last_run: RunRecord | None
    last_run_state: RunState | None
    last_success: RunRecord | None
    failures: tuple[RunRecord, ...]
    last_activity: dt.datetime | None

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def consecutive_failures(self) -> int:
        return len(self.failures)

    @property
    def failing_since(self) -> dt.datetime | None:
        """When the first failed run after the latest success started."""
        return self.failures[0].started_at if self.failures else None

    @property
    def last_failure(self) -> RunRecord | None:
        return self.failures[-1] if self.failures else None


def run_state(run: RunRecord, now: dt.datetime, policy: HealthPolicy) -> RunState:
    """Return the state of ``run`` at ``now``."""
    if run.finished_at is not None:
        return RunState.SUCCEEDED if run.ok else RunState.FAILED
    if now - run.started_at > policy.abandoned_after:
        return RunState.ABANDONED
    return RunState.RUNNING


def evaluate(runs: Sequence[RunRecord], now: dt.datetime, policy: HealthPolicy) -> Health:
    """Return the health at ``now`` given one mailbox's runs since its latest success.

    Runs before the latest successful one do not change the result, so callers may pass them
    or leave them out.
    """
    ordered = sorted(runs, key=lambda run: run.id)
    states = [run_state(run, now, policy) for run in ordered]
    successes = [index for index, state in enumerate(states) if state is RunState.SUCCEEDED]
    start = successes[-1] if successes else -1

    last_success = ordered[start] if successes else None
    failures = tuple(failed_runs(ordered[start + 1:], now, policy))
    last_state = states[-1] if states else None
    activity = _last_activity(ordered)

    problems = []
    if not ordered:
        problems.append(Problem.NEVER_RUN)
    if len(failures) >= policy.alert_after_failures and now - failures[0].started_at >= policy.failing_for:
        problems.append(Problem.FAILING)
    if activity is not None and last_state is not RunState.RUNNING and now - activity > policy.stale_after:
        problems.append(Problem.STALE)
    if last_state is RunState.FAILED and (ordered[-1].error or "").startswith(f"{LOGIN_ERROR}:"):
        problems.append(Problem.LOGIN_REJECTED)

    return Health(
        checked_at=now,
        problems=tuple(problems),
        episode=last_success.id if last_success else 0,
        last_run=ordered[-1] if ordered else None,
        last_run_state=last_state,
        last_success=last_success,
        failures=failures,
        last_activity=activity,
    )


def failed_runs(runs: Sequence[RunRecord], now: dt.datetime, policy: HealthPolicy) -> list[RunRecord]:
    """Return the runs that failed or were abandoned, in the order given."""
    return [run for run in runs
            if run_state(run, now, policy) in (RunState.FAILED, RunState.ABANDONED)]


def _last_activity(runs: Sequence[RunRecord]) -> dt.datetime | None:
    finished = [run.finished_at for run in runs if run.finished_at is not None]
    if finished:
        return max(finished)
    return min((run.started_at for run in runs), default=None)
