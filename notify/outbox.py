"""Deliver the queued replies: send each stored mail as it is and record the outcome.

Each mail is claimed, sent and marked in its own short transaction, so a slow SMTP server never
keeps the database locked for the whole batch. A temporary failure is retried later with the
back-off of :func:`store.repository.mark_retry`; a 5xx reply marks the mail failed.

Two limits keep 163.com from taking the service for a spammer (554 DT:SPM) and a fault from
flooding one township: mails per minute, and mails per recipient within 24 hours. Both are
counted from the outbox's ``sent_at`` at the service clock's ``now``, so they hold across runs and
processes. A mail over a limit stays pending for a later run and is never dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ingest.errors import DeliveryError, ZhoubaoError
from ingest.failpoints import failpoint
from notify.smtp import SmtpSender
from store.models import OutboxMail
from store.repository import (
    count_due,
    count_sent,
    defer_mail,
    due_outbox,
    lock_sending,
    mark_failed,
    mark_retry,
    mark_sent,
    sent_times,
)
from store.session import Database

logger = logging.getLogger(__name__)

RATE_WINDOW = dt.timedelta(minutes=1)
CAP_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class SendLimits:
    """How many mails may go out per minute, and to one recipient within any 24 hours."""

    per_minute: int = 20
    per_recipient_per_day: int = 10


@dataclass
class DeliveryReport:
    """Counts of one outbox run; ``deferred`` mails hit the per-recipient cap.

    ``rate_limited`` is True when the run stopped at the per-minute limit with mails still due.
    """

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    rate_limited: bool = False


class _Delivery:
    """One outbox run: the SMTP connection, opened at the first due mail, and the counts."""

    def __init__(self, sender_factory: Callable[[], SmtpSender], now: dt.datetime,
                 limits: SendLimits, mailbox: str | None = None):
        self.sender_factory = sender_factory
        self.now = now
        self.limits = limits
        self.mailbox = mailbox
        self.report = DeliveryReport()
        self.sender: SmtpSender | None = None
        # Set when the server cannot be reached, so the other due mails wait without a new try.
        self.unavailable: str | None = None

    def deliver(self, session: Session, mail: OutboxMail) -> None:
        """Send one claimed mail and mark it sent, to be retried, or failed."""
        if self.unavailable is not None:
            self._retry(session, mail, self.unavailable)
            return

        envelope_sender = _envelope_sender(mail.raw)
        if envelope_sender is None:
            self._fail(session, mail, "the stored mail has no From address")
            return

        failpoint("before-send")
        try:
            self._sender().send(mail.raw, envelope_sender, [mail.recipient])
        except DeliveryError as err:
            self._handle_error(session, mail, err)
            return
        except ZhoubaoError as err:
            # The sender could not be built, such as a ConfigError: no mail can go out this run.
            self.unavailable = str(err)
            self._retry(session, mail, str(err))
            return

        # A kill here, after the server accepted the mail but before the row is marked sent,
        # is the one case that sends a reply twice, with the same Message-ID.
        failpoint("after-send")
        mark_sent(session, mail, self.now)
        self.report.sent += 1
        logger.info(
            "outbox mail %d: sent %s to %s (Message-ID %s, attempt %d)",
            mail.id, mail.kind, mail.recipient, mail.mail_message_id, mail.attempts,
        )

    def rate_reached(self, session: Session) -> bool:
        """Tell whether the per-minute limit is used up; log it with the mails left waiting."""
        sent = count_sent(session, self.now - RATE_WINDOW, mailbox=self.mailbox)
        if sent < self.limits.per_minute:
            return False

        self.report.rate_limited = True
        logger.warning(
            "outbox: rate limit of %d mails a minute reached; %d due mails wait for a later run",
            self.limits.per_minute, count_due(session, self.now, self.mailbox),
        )
        return True

    def defer_over_cap(self, session: Session, mail: OutboxMail) -> bool:
        """Postpone ``mail`` when its recipient got the daily cap within 24 hours; True if so."""
        cap = self.limits.per_recipient_per_day
        times = sent_times(session, mail.recipient, self.now - CAP_WINDOW)
        if len(times) < cap:
            return False

        # One more mail fits once the oldest len(times) - cap + 1 of them have left the window,
        # which is 24 hours after the newest of those was sent.
        until = times[len(times) - cap] + CAP_WINDOW
        defer_mail(session, mail, until)
        self.report.deferred += 1
        logger.warning(
            "outbox mail %d: %s got %d mails within 24 hours (cap %d), deferred to %s",
            mail.id, mail.recipient, len(times), cap, until.isoformat(),
        )
        return True

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()

    def _handle_error(self, session: Session, mail: OutboxMail, err: DeliveryError) -> None:
        if self.sender is None or not self.sender.connected:
            # Connecting or logging in failed, or the server dropped the connection: the mail is
            # not at fault, even for a 5xx greeting, and the other due mails would fail alike.
            self.unavailable = str(err)
            self._retry(session, mail, str(err))
        elif err.permanent:
            self._fail(session, mail, str(err))
        else:
            self._retry(session, mail, str(err))

    def _retry(self, session: Session, mail: OutboxMail, error: str) -> None:
        mark_retry(session, mail, self.now, error)
        self.report.retried += 1
        logger.warning(
            "outbox mail %d: delivery to %s failed, retry at %s: %s",
            mail.id, mail.recipient, mail.next_attempt_at.isoformat(), error,
        )

    def _fail(self, session: Session, mail: OutboxMail, error: str) -> None:
        mark_failed(session, mail, self.now, error)
        self.report.failed += 1
        logger.error("outbox mail %d: delivery to %s failed permanently: %s", mail.id, mail.recipient, error)

    def _sender(self) -> SmtpSender:
        if self.sender is None:
            self.sender = self.sender_factory()
        return self.sender


def deliver_outbox(
    database: Database,
    sender_factory: Callable[[], SmtpSender],
    now: dt.datetime,
    limit: int = 50,
    limits: SendLimits = SendLimits(),
    mailbox: str | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` due outbox mails and mark each sent, to be retried, or failed.

    ``sender_factory`` returns an unconnected :class:`SmtpSender`; it is called only when a mail
    is due. Mails over ``limits`` stay pending: the run stops at the per-minute limit, and a mail
    whose recipient reached the daily cap waits until the cap frees up. No exception escapes: an
    unreachable SMTP server or database is logged and the mails stay queued. With ``mailbox``,
    only that mailbox's mails are sent, and its own mails count against the per-minute limit.
    """
    delivery = _Delivery(sender_factory, now, limits, mailbox)
    try:
        for _ in range(limit):
            if not _deliver_next(database, delivery):
                break
    except (SQLAlchemyError, ZhoubaoError):
        logger.exception("outbox: run stopped by a database error; the remaining mails stay queued")
    finally:
        delivery.close()

    report = delivery.report
    if report.sent or report.retried or report.failed or report.deferred:
        logger.info("outbox: %d sent, %d to retry, %d failed, %d deferred", report.sent,
                    report.retried, report.failed, report.deferred)
    return report


def _deliver_next(database: Database, delivery: _Delivery) -> bool:
    """Claim, send and mark the oldest due mail; return False when none is due.

    NOTE: if the commit after a successful send fails (such as SQLite refusing the write because
    another connection wrote meanwhile), the mail stays pending and is sent again next run.
    """
    with database.session() as session:
        lock_sending(session)
        due = due_outbox(session, delivery.now, limit=1, mailbox=delivery.mailbox)
        if not due or delivery.rate_reached(session):
            return False
        if not delivery.defer_over_cap(session, due[0]):
            delivery.deliver(session, due[0])
    return True


def _envelope_sender(raw: bytes) -> str | None:
    """Return the addr-spec of the mail's From header, used as the SMTP envelope sender."""
    header = BytesHeaderParser(policy=policy.default).parsebytes(raw)["From"]
    if header is None or not header.addresses:
        return None
    return header.addresses[0].addr_spec
