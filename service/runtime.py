"""Start-up and the job loop: open the database, run intake and outbox delivery on a schedule."""

from __future__ import annotations

import datetime
import functools
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Sequence

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from apscheduler.schedulers.blocking import BlockingScheduler

from ingest.backoff import CycleResult
from ingest.errors import AuthenticationFailed, MailboxError, StoreError
from notify.outbox import SendLimits, deliver_outbox
from notify.smtp import SmtpSender
from service.alerts import queue_login_rejected, queue_login_restored
from service.clock import Clock
from service.config import Settings
from service.intake import mailbox_key, open_mailbox
from service.monitor import health_job, run_recorded_intake
from service.replies import queue_notices
from service.schedule import IntakeSchedule
from service.watch import IdleWatcher
from store import repository
from store.session import Database

logger = logging.getLogger(__name__)

# How often the outbox is retried, in seconds; each mail also waits for its own back-off.
OUTBOX_INTERVAL = 30
# How often the recorded intake runs are checked, in seconds, so that an intake that stopped
# finishing is noticed while the intake job itself hangs.
HEALTH_INTERVAL = 60

# Seconds that a stop waits for the IDLE watcher to end IDLE and log out.
WATCHER_STOP_TIMEOUT = 5

# The intake job delivers its replies at once and the outbox job retries the rest: this lock keeps
# the two from sending the same row, which SQLite cannot lock for them.
_outbox_lock = threading.Lock()


def open_database(settings: Settings, *others: Settings) -> Database:
    """Open the database, create or migrate it to the current revision, and record the units.

    ``others`` are the further mailboxes of the same config, which share the database. Outbox
    mail queued before mail had a mailbox goes to the first one.
    """
    database = Database(settings.database.url)
    database.upgrade()
    with database.session() as session:
        repository.sync_units(session, [(unit.name, unit.aliases)
                                        for deployment in (settings, *others) for unit in deployment.units])
        adopted = repository.adopt_outbox(session, settings.mailbox.key)
    if adopted:
        logger.info("outbox: %d mail(s) queued without a mailbox assigned to %s", adopted, settings.mailbox.key)
    return database


def sender_factory(settings: Settings):
    """Return a function that opens one SMTP connection with the configured account."""
    smtp = settings.smtp

    def open_sender() -> SmtpSender:
        if not smtp.login:
            return SmtpSender(host=smtp.host, port=smtp.port, security=smtp.security,
                              username=None, password=None, timeout=smtp.timeout)
        return SmtpSender(host=smtp.host, port=smtp.port, security=smtp.security,
                          username=smtp.username, password=smtp.password.reveal(),
                          timeout=smtp.timeout)

    return open_sender


def intake_cycle(settings: Settings, database: Database, clock: Clock,
                 stop: threading.Event | None = None) -> CycleResult:
    """Run one intake cycle, recorded in intake_runs; log and swallow mailbox and database failures.

    A rejected login queues one alert to the admin for as long as it lasts, and the first cycle
    that works again queues the notice that it recovered.
    """
    key = mailbox_key(settings)
    lease = Lease(database, key, lease_ttl(settings))
    try:
        holder = lease.take()
    except (StoreError, SQLAlchemyError) as err:
        logger.error("mailbox %s: intake failed: database unavailable: %s", key, _first_line(err))
        return CycleResult.FAILED
    if holder is not None:
        logger.info("mailbox %s: intake skipped, another process (%s) holds the lease", key, holder)
        return CycleResult.DONE
    stopped = stop.is_set if stop is not None else (lambda: False)
    try:
        report = run_recorded_intake(settings, database, clock.now, lambda: stopped() or not lease.renew())
    except AuthenticationFailed as err:
        logger.error("mailbox %s: login rejected: %s", key, err.reply or err)
        _queue_alert(database, lambda session: queue_login_rejected(session, settings, clock.now(), err.reply))
        return CycleResult.LOGIN_REJECTED
    except (MailboxError, StoreError, SQLAlchemyError, OSError) as err:
        logger.error("mailbox %s: intake failed: %s", key, _first_line(err))
        return CycleResult.FAILED
    finally:
        lease.release()
    logger.info("mailbox %s: intake done: %d seen, %d processed, %d moved, %d failed",
                key, report.seen, report.processed, report.moved, report.failed)
    _queue_alert(database, lambda session: queue_login_restored(session, settings, clock.now()))
    return CycleResult.DONE


def intake_job(settings: Settings, database: Database, clock: Clock,
               stop: threading.Event | None = None) -> bool:
    """Run one intake cycle as :func:`intake_cycle` does; True on success."""
    return intake_cycle(settings, database, clock, stop) is CycleResult.DONE


def _queue_alert(database: Database, queue: Callable[[Session], object]) -> None:
    try:
        with database.session() as session:
            queue(session)
    except (StoreError, SQLAlchemyError) as err:
        logger.error("alert: queuing failed: %s", err)


def outbox_job(settings: Settings, database: Database, clock: Clock) -> bool:
    """Send the mailbox's mails that are due; True when every one that was tried went out."""
    with _outbox_lock:
        limits = SendLimits(settings.smtp.rate_per_minute, settings.smtp.daily_cap_per_recipient)
        result = deliver_outbox(database, sender_factory(settings), clock.now(), limits=limits,
                                mailbox=settings.mailbox.key)
    return not (result.failed or result.retried)


def notices_job(settings: Settings, database: Database, clock: Clock) -> bool:
    """Queue the reminders, overdue notices and digests due now; True unless the database failed."""
    try:
        with database.session() as session:
            queued = queue_notices(session, settings, clock.now())
    except (StoreError, SQLAlchemyError) as err:
        logger.error("notices: planning failed: %s", err)
        return False
    if queued:
        logger.info("notices: %d mail(s) queued", queued)
    return True


def run_once(deployments: Settings | Sequence[Settings], database: Database, clock: Clock) -> bool:
    """Run every job of each mailbox once, in order: intake, health, notices, then the outbox.

    True when intake, notices and the outbox succeeded. A mailbox whose lease another process holds skips intake and still
    sends its share of the outbox.
    """
    ok = True
    for settings in _as_list(deployments):
        intake_ok = intake_job(settings, database, clock)
        health_job(settings, database, clock)
        notices_ok = notices_job(settings, database, clock)
        outbox_ok = outbox_job(settings, database, clock)
        ok = ok and intake_ok and notices_ok and outbox_ok
    return ok


def _as_list(deployments: Settings | Sequence[Settings]) -> list[Settings]:
    return [deployments] if isinstance(deployments, Settings) else list(deployments)


def _intake_then_outbox(settings: Settings, database: Database, clock: Clock,
                        stop: threading.Event) -> CycleResult:
    # Replies go out right after the mail they answer instead of waiting for the outbox job.
    result = intake_cycle(settings, database, clock, stop)
    if not stop.is_set():
        health_job(settings, database, clock)
        notices_job(settings, database, clock)
        outbox_job(settings, database, clock)
    return result


def run_forever(deployments: Settings | Sequence[Settings], database: Database, clock: Clock) -> None:
    """Run the jobs of each mailbox on their intervals until SIGTERM or SIGINT.

    The first signal lets the current message finish, then stops; jobs never overlap (one
    instance each) and missed runs are coalesced into one. After a failed cycle intake backs off
    (``[mailbox] reconnect_delay`` doubling up to ``reconnect_max_delay``, or
    ``login_retry_delay`` after a rejected login). Where the server offers IDLE, a watcher
    thread wakes intake as soon as new mail arrives.
    """
    deployments = _as_list(deployments)
    stop = threading.Event()
    shortest = min(settings.mailbox.poll_interval for settings in deployments)
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(2 * len(deployments))},
        job_defaults={"max_instances": 1, "coalesce": True,
                      "misfire_grace_time": max(30, shortest // 2)},
        timezone="UTC",
    )
    watchers = [watcher for settings in deployments
                if (watcher := _add_jobs(scheduler, settings, database, clock, stop)) is not None]

    def _stop(signum, _frame):
        logger.info("service: %s received, finishing the current message", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for watcher in watchers:
        # Started with the scheduler, because a wake-up before then would find no job to move.
        scheduler.add_listener(lambda _event, watcher=watcher: watcher.start(), EVENT_SCHEDULER_STARTED)
    scheduler.start()
    for watcher in watchers:
        # The watcher looks at the stop event between IDLE waits of STOP_CHECK seconds. A watcher
        # still connecting to a silent server is a daemon thread and ends with the process.
        watcher.join(timeout=WATCHER_STOP_TIMEOUT)
    logger.info("service: stopped")


def _add_jobs(scheduler: BlockingScheduler, settings: Settings, database: Database, clock: Clock,
              stop: threading.Event) -> IdleWatcher | None:
    """Schedule one mailbox's intake, outbox and health jobs; return its IDLE watcher, if any."""
    key = mailbox_key(settings)
    interval = settings.mailbox.poll_interval
    schedule = IntakeSchedule(scheduler, f"intake {key}", settings.mailbox.retry_policy())
    cycle = functools.partial(_intake_then_outbox, settings, database, clock, stop)
    # The triggers run on real time even when --now fixes the service clock: a fixed moment in the
    # past would count as a misfire and the first run would be skipped.
    now = datetime.datetime.now(datetime.timezone.utc)
    scheduler.add_job(schedule.run, "interval", seconds=interval, next_run_time=now,
                      args=(cycle,), id=f"intake {key}")
    scheduler.add_job(outbox_job, "interval", seconds=OUTBOX_INTERVAL, next_run_time=now,
                      args=(settings, database, clock), id=f"outbox {key}")
    scheduler.add_job(health_job, "interval", seconds=HEALTH_INTERVAL,
                      args=(settings, database, clock), id=f"health {key}")
    logger.info("service: started, polling %s every %d s", key, interval)
    return _idle_watcher(settings, schedule, stop)


def _idle_watcher(settings: Settings, schedule: IntakeSchedule, stop: threading.Event) -> IdleWatcher | None:
    box = settings.mailbox
    if not box.idle:
        logger.info("service: IDLE turned off in [mailbox], polling only")
        return None
    policy = box.retry_policy()
    return IdleWatcher(functools.partial(open_mailbox, settings, readonly=True), schedule.wake, stop,
                       renew_after=box.idle_renew, backoff=policy.reconnect, login_retry=policy.login_retry)


# --- several processes ---------------------------------------------------------------------------

# Names this process in the leases it holds: host, process id and a random part for a reused pid.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_ttl(settings: Settings) -> datetime.timedelta:
    """Return how long an intake lease lasts unless renewed: long enough for one slow message."""
    return datetime.timedelta(seconds=max(600, 2 * settings.mailbox.poll_interval))


class Lease:
    """The intake lease of one mailbox, taken before a cycle and renewed before each message.

    Times are the real clock's, because a replay's fixed service clock would never let a lease
    expire. A database failure while renewing counts as a lost lease, so the cycle stops.
    """

    def __init__(self, database: Database, mailbox: str, ttl: datetime.timedelta):
        self.database = database
        self.mailbox = mailbox
        self.ttl = ttl

    def take(self) -> str | None:
        """Take the lease; return None on success, else the process that holds it.

        A holder on this host whose process is gone (killed, or this container's earlier run
        with the same pid) loses the lease at once instead of when it expires.
        """
        with self.database.session() as session:
            holder = repository.acquire_lease(session, self.mailbox, PROCESS_ID, _real_now(), self.ttl)
            if holder is None or not _is_dead_local(holder):
                return holder
            logger.warning("mailbox %s: lease of %s, which no longer runs, taken over", self.mailbox, holder)
            return repository.acquire_lease(session, self.mailbox, PROCESS_ID, _real_now(), self.ttl,
                                            stale_holder=holder)

    def renew(self) -> bool:
        """Extend the lease; False when another process took it or the database failed."""
        try:
            holder = self.take()
        except (StoreError, SQLAlchemyError) as err:
            logger.error("mailbox %s: lease renewal failed: %s", self.mailbox, err)
            return False
        if holder is not None:
            logger.error("mailbox %s: lease lost to %s, stopping the cycle", self.mailbox, holder)
        return holder is None

    def release(self) -> None:
        """Let the lease expire now, so another process need not wait for it."""
        try:
            with self.database.session() as session:
                repository.release_lease(session, self.mailbox, PROCESS_ID, _real_now())
        except (StoreError, SQLAlchemyError) as err:
            logger.warning("mailbox %s: lease release failed, it expires by itself: %s", self.mailbox, err)


def _is_dead_local(holder: str) -> bool:
    """Tell whether ``holder`` (as PROCESS_ID writes it) names a process of this host that is gone."""
    parts = holder.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _first_line(err: Exception) -> str:
    """Return the first line of an error, without SQLAlchemy's background link and SQL."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _real_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
