"""Start-up and the job loop: open the database, run intake and outbox delivery on a schedule."""

from __future__ import annotations

import datetime
import functools
import logging
import signal
import threading
from collections.abc import Callable

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
from service.intake import mailbox_key, open_mailbox, run_intake
from service.replies import queue_notices
from service.schedule import IntakeSchedule
from service.watch import IdleWatcher
from store import repository
from store.session import Database

logger = logging.getLogger(__name__)

# How often the outbox is retried, in seconds; each mail also waits for its own back-off.
OUTBOX_INTERVAL = 30

# Seconds that a stop waits for the IDLE watcher to end IDLE and log out.
WATCHER_STOP_TIMEOUT = 5

# The intake job delivers its replies at once and the outbox job retries the rest: this lock keeps
# the two from sending the same row, which SQLite cannot lock for them.
_outbox_lock = threading.Lock()


def open_database(settings: Settings) -> Database:
    """Open the database, create or migrate it to the current revision, and record the units."""
    database = Database(settings.database.url)
    database.upgrade()
    with database.session() as session:
        repository.sync_units(session, [(unit.name, unit.aliases) for unit in settings.units])
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
    """Run one intake cycle; log and swallow mailbox and database failures.

    A rejected login queues one alert to the admin for as long as it lasts, and the first cycle
    that works again queues the notice that it recovered.
    """
    key = mailbox_key(settings)
    should_stop = stop.is_set if stop is not None else (lambda: False)
    try:
        report = run_intake(settings, database, clock.now, should_stop)
    except AuthenticationFailed as err:
        logger.error("mailbox %s: login rejected: %s", key, err.reply or err)
        _queue_alert(database, lambda session: queue_login_rejected(session, settings, clock.now(), err.reply))
        return CycleResult.LOGIN_REJECTED
    except (MailboxError, StoreError, SQLAlchemyError, OSError) as err:
        logger.error("mailbox %s: intake failed: %s", key, err)
        return CycleResult.FAILED
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
    """Send the replies that are due; True when every one that was tried went out."""
    with _outbox_lock:
        limits = SendLimits(settings.smtp.rate_per_minute, settings.smtp.daily_cap_per_recipient)
        result = deliver_outbox(database, sender_factory(settings), clock.now(), limits=limits)
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


def run_once(settings: Settings, database: Database, clock: Clock) -> bool:
    """Run every job once, in order: intake, notices, then the outbox. True when all succeeded."""
    intake_ok = intake_job(settings, database, clock)
    notices_ok = notices_job(settings, database, clock)
    outbox_ok = outbox_job(settings, database, clock)
    return intake_ok and notices_ok and outbox_ok


def _intake_then_outbox(settings: Settings, database: Database, clock: Clock,
                        stop: threading.Event) -> CycleResult:
    # Replies go out right after the mail they answer instead of waiting for the outbox job.
    result = intake_cycle(settings, database, clock, stop)
    if not stop.is_set():
        notices_job(settings, database, clock)
        outbox_job(settings, database, clock)
    return result


def run_forever(settings: Settings, database: Database, clock: Clock) -> None:
    """Run the jobs on their intervals until SIGTERM or SIGINT.

    The first signal lets the current message finish, then stops; jobs never overlap (one
    instance each) and missed runs are coalesced into one. After a failed cycle intake backs off
    (``[mailbox] reconnect_delay`` doubling up to ``reconnect_max_delay``, or
    ``login_retry_delay`` after a rejected login). Where the server offers IDLE, a watcher
    thread wakes intake as soon as new mail arrives.
    """
    stop = threading.Event()
    interval = settings.mailbox.poll_interval
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={"max_instances": 1, "coalesce": True,
                      "misfire_grace_time": max(30, interval // 2)},
        timezone="UTC",
    )
    schedule = IntakeSchedule(scheduler, "intake", settings.mailbox.retry_policy())
    cycle = functools.partial(_intake_then_outbox, settings, database, clock, stop)
    # The triggers run on real time even when --now fixes the service clock: a fixed moment in the
    # past would count as a misfire and the first run would be skipped.
    now = datetime.datetime.now(datetime.timezone.utc)
    scheduler.add_job(schedule.run, "interval", seconds=interval, next_run_time=now,
                      args=(cycle,), id="intake")
    scheduler.add_job(outbox_job, "interval", seconds=OUTBOX_INTERVAL, next_run_time=now,
                      args=(settings, database, clock), id="outbox")
    watcher = _idle_watcher(settings, schedule, stop)

    def _stop(signum, _frame):
        logger.info("service: %s received, finishing the current message", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logger.info("service: started, polling %s every %d s", mailbox_key(settings), interval)
    if watcher is not None:
        # Started with the scheduler, because a wake-up before then would find no job to move.
        scheduler.add_listener(lambda _event: watcher.start(), EVENT_SCHEDULER_STARTED)
    scheduler.start()
    if watcher is not None:
        # The watcher looks at the stop event between IDLE waits of STOP_CHECK seconds. A watcher
        # still connecting to a silent server is a daemon thread and ends with the process.
        watcher.join(timeout=WATCHER_STOP_TIMEOUT)
    logger.info("service: stopped")


def _idle_watcher(settings: Settings, schedule: IntakeSchedule, stop: threading.Event) -> IdleWatcher | None:
    box = settings.mailbox
    if not box.idle:
        logger.info("service: IDLE turned off in [mailbox], polling only")
        return None
    policy = box.retry_policy()
    return IdleWatcher(functools.partial(open_mailbox, settings, readonly=True), schedule.wake, stop,
                       renew_after=box.idle_renew, backoff=policy.reconnect, login_retry=policy.login_retry)
