"""Start-up and the job loop: open the database, run intake and outbox delivery on a schedule."""

from __future__ import annotations

import datetime
import logging
import signal
import threading

from apscheduler.executors.pool import ThreadPoolExecutor
from sqlalchemy.exc import SQLAlchemyError
from apscheduler.schedulers.blocking import BlockingScheduler

from ingest.errors import MailboxError, StoreError
from notify.outbox import SendLimits, deliver_outbox
from notify.smtp import SmtpSender
from service.clock import Clock
from service.config import Settings
from service.intake import mailbox_key, run_intake
from service.replies import queue_notices
from store import repository
from store.session import Database

logger = logging.getLogger(__name__)

# How often the outbox is retried, in seconds; each mail also waits for its own back-off.
OUTBOX_INTERVAL = 30

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


def intake_job(settings: Settings, database: Database, clock: Clock,
               stop: threading.Event | None = None) -> bool:
    """Run one intake cycle; log and swallow mailbox and database failures. True on success."""
    should_stop = stop.is_set if stop is not None else (lambda: False)
    try:
        report = run_intake(settings, database, clock.now, should_stop)
    except (MailboxError, StoreError, OSError) as err:
        logger.error("mailbox %s: intake failed: %s", mailbox_key(settings), err)
        return False
    logger.info("mailbox %s: intake done: %d seen, %d processed, %d moved, %d failed",
                mailbox_key(settings), report.seen, report.processed, report.moved, report.failed)
    return True


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
                        stop: threading.Event) -> None:
    # Replies go out right after the mail they answer instead of waiting for the outbox job.
    intake_job(settings, database, clock, stop)
    if not stop.is_set():
        notices_job(settings, database, clock)
        outbox_job(settings, database, clock)


def run_forever(settings: Settings, database: Database, clock: Clock) -> None:
    """Run the jobs on their intervals until SIGTERM or SIGINT.

    The first signal lets the current message finish, then stops; jobs never overlap (one
    instance each) and missed runs are coalesced into one.
    """
    stop = threading.Event()
    interval = settings.mailbox.poll_interval
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={"max_instances": 1, "coalesce": True,
                      "misfire_grace_time": max(30, interval // 2)},
        timezone="UTC",
    )
    # The triggers run on real time even when --now fixes the service clock: a fixed moment in the
    # past would count as a misfire and the first run would be skipped.
    now = datetime.datetime.now(datetime.timezone.utc)
    scheduler.add_job(_intake_then_outbox, "interval", seconds=interval, next_run_time=now,
                      args=(settings, database, clock, stop), id="intake")
    scheduler.add_job(outbox_job, "interval", seconds=OUTBOX_INTERVAL, next_run_time=now,
                      args=(settings, database, clock), id="outbox")

    def _stop(signum, _frame):
        logger.info("service: %s received, finishing the current message", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logger.info("service: started, polling %s every %d s", mailbox_key(settings), interval)
    scheduler.start()
    logger.info("service: stopped")
