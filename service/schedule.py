"""When the intake job runs next: after the poll interval, after a back-off, or at a wake-up.

The job itself runs on APScheduler with ``max_instances=1``. :class:`IntakeSchedule` wraps each
run and afterwards sets the job's next run time from :func:`ingest.backoff.next_cycle`. Its
:meth:`IntakeSchedule.wake`, called by the IDLE watcher's thread, moves that time to now, or to
the end of the cycle that is running, so intake never runs twice at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from ingest.backoff import CycleResult, RetryPolicy, next_cycle

logger = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class IntakeSchedule:
    """The next run time of the intake job ``job_id`` on ``scheduler``.

    ``random_fraction`` and ``now`` are the sources of jitter and of the scheduler's real time.
    """

    def __init__(self, scheduler: BaseScheduler, job_id: str, policy: RetryPolicy, *,
                 random_fraction: Callable[[], float] = random.random,
                 now: Callable[[], dt.datetime] = _utcnow):
        self._scheduler = scheduler
        self._job_id = job_id
        self._policy = policy
        self._random_fraction = random_fraction
        self._now = now
        self._lock = threading.Lock()
        self._running = False
        self._wake_pending = False
        self._failures = 0
        self._last_result = CycleResult.DONE

    def run(self, cycle: Callable[[], CycleResult]) -> CycleResult:
        """Run one cycle, then set the job's next run time from how it ended.

        An exception out of ``cycle`` counts as a failed cycle and propagates.
        """
        with self._lock:
            self._running = True
            self._wake_pending = False
        result = CycleResult.FAILED
        try:
            result = cycle()
        finally:
            self._schedule_after(result)
        return result

    def wake(self, force: bool = False) -> None:
        """Run intake now, or right after the running cycle.

        A wake-up waits out the back-off of a failed cycle unless ``force`` is set. The watcher
        sets it after logging in again, because the server is then evidently back.
        """
        with self._lock:
            if self._running:
                self._wake_pending = True
                return
            if self._last_result is not CycleResult.DONE and not force:
                logger.debug("intake: wake-up ignored during the back-off after a %s cycle", self._last_result)
                return
            self._set_next_run(self._now())

    def _schedule_after(self, result: CycleResult) -> None:
        with self._lock:
            self._running = False
            self._last_result = result
            self._failures, wait = next_cycle(result, self._failures, self._policy, self._random_fraction())
            if self._wake_pending and result is CycleResult.DONE:
                # New mail arrived during the cycle, after it had listed the folder.
                wait = 0
            self._set_next_run(self._now() + dt.timedelta(seconds=wait))
        if result is CycleResult.FAILED:
            logger.warning("intake: cycle failed (%d in a row), next attempt in %.0f s", self._failures, wait)
        elif result is CycleResult.LOGIN_REJECTED:
            logger.warning("intake: login rejected, next attempt in %.0f s", wait)

    def _set_next_run(self, moment: dt.datetime) -> None:
        try:
            self._scheduler.modify_job(self._job_id, next_run_time=moment)
        except JobLookupError:
            # A stopped scheduler finds no job: SIGTERM arrived while this cycle ran.
            logger.debug("intake: scheduler stopped, next run not set")
