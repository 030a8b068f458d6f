"""One intake cycle: every new mail in the folder is archived, decided, answered and moved.

The order of the steps is what makes a crash harmless at any point:

1. the raw bytes are committed before anything parses them (a parser crash loses nothing);
2. the outcome, the submissions and the reply in the outbox are committed in one transaction;
3. only then is the message moved to the processed folder.

A message found again after a crash is recognised by (UIDVALIDITY, UID) or by Message-ID and
SHA-256 of its bytes, and resumes at the first step it had not finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ingest.failpoints import failpoint
from ingest.bounces import failed_recipients
from ingest.mailbox import FetchedMessage, Mailbox, MessageNotFound
from ingest.message import parse_message
from ingest.pipeline import Context, Decision, decide, failed_decision, oversized_decision
from service.config import Settings
from service.converter import container_limits, converter
from service.replies import queue_libreoffice_alert, queue_replies, queue_summary_links_alert
from store import outcomes, repository
from store.models import Message, MessageOutcome
from store.session import Database

logger = logging.getLogger(__name__)


@dataclass
class CycleReport:
    """Counts of one intake cycle, for the log and the health record."""

    seen: int = 0
    processed: int = 0
    moved: int = 0
    failed: int = 0


def open_mailbox(settings: Settings, readonly: bool = False) -> Mailbox:
    """Return the configured mailbox, not yet connected; ``readonly`` selects with EXAMINE."""
    box = settings.mailbox
    return Mailbox(
        host=box.host,
        port=box.port,
        security=box.security,
        username=box.username,
        password=box.password.reveal(),
        folder=box.folder,
        processed_folder=box.processed_folder,
        timeout=box.timeout,
        readonly=readonly,
    )


def mailbox_key(settings: Settings) -> str:
    """Name the mailbox folder in the database, so that several mailboxes can share it."""
    return settings.mailbox.key


def run_intake(settings: Settings, database: Database, now: Callable[[], dt.datetime],
               should_stop: Callable[[], bool] = lambda: False,
               report: CycleReport | None = None) -> CycleReport:
    """Process every message waiting in the mailbox folder, one at a time.

    The counts go into ``report`` when given, so a caller still has them when a failure raises.
    """
    report = report if report is not None else CycleReport()
    with open_mailbox(settings) as mailbox:
        uids = mailbox.list_uids()
        logger.info("mailbox %s: %d message(s) waiting", mailbox_key(settings), len(uids))
        for uid in uids:
            if should_stop():
                logger.info("mailbox %s: stopping before UID %d", mailbox_key(settings), uid)
                break
            report.seen += 1
            _process_uid(settings, database, mailbox, uid, now, report)
    return report


def _process_uid(settings: Settings, database: Database, mailbox: Mailbox, uid: int,
                 now: Callable[[], dt.datetime], report: CycleReport) -> None:
    key = mailbox_key(settings)
    with database.session() as session:
        known = repository.find_message_by_uid(session, key, mailbox.uid_validity, uid)
        known_id = known.id if known is not None and known.outcome != MessageOutcome.PENDING else None

    if known_id is None:
        fetched = _fetch(settings, mailbox, uid)
        if fetched is None:
            return
        failpoint("after-fetch")
        message_pk = archive(database, key, mailbox.uid_validity, fetched, now)
        failpoint("after-archive")
        if decide_and_record(settings, database, message_pk, now):
            report.processed += 1
        else:
            report.failed += 1
        known_id = message_pk

    failpoint("before-move")
    mailbox.move_to_processed(uid)
    failpoint("after-move")
    with database.session() as session:
        repository.mark_moved(session, session.get_one(Message, known_id), now())
    report.moved += 1
    logger.info("mailbox %s: UID %d (message #%d) moved to %s", key, uid, known_id, mailbox.processed_folder)


def _fetch(settings: Settings, mailbox: Mailbox, uid: int) -> FetchedMessage | None:
    """Fetch one message, or only its header when RFC822.SIZE is over the limit; None if gone."""
    key = mailbox_key(settings)
    try:
        size = mailbox.fetch_sizes([uid]).get(uid)
        if size is None:
            raise MessageNotFound(f"UID {uid} not in the folder")
        if size > settings.limits.max_message_bytes:
            logger.warning("mailbox %s: UID %d is %d bytes, over the limit of %d: fetching the header only",
                           key, uid, size, settings.limits.max_message_bytes)
            return mailbox.fetch_headers(uid)
        return mailbox.fetch(uid)
    except MessageNotFound:
        logger.info("mailbox %s: UID %d is gone, another client moved or deleted it", key, uid)
        return None


def archive(database: Database, mailbox: str, uid_validity: int, fetched: FetchedMessage,
            now: Callable[[], dt.datetime]) -> int:
    """Commit the raw bytes before any parsing; return the message's primary key.

    ``mailbox`` is the folder's key in the database (:func:`mailbox_key`).

    A copy already archived (same Message-ID and SHA-256, for example after a UIDVALIDITY reset)
    gets its new UID instead of a second record.
    """
    sha256 = hashlib.sha256(fetched.raw).hexdigest()
    headers = read_headers(fetched.raw)
    with database.session() as session:
        message = repository.find_message_by_content(session, headers["message_id"], sha256)
        if message is not None:
            logger.info("message %s: already archived as #%d, now UID %d",
                        headers["message_id"], message.id, fetched.uid)
            outcomes.update_location(session, message, mailbox, uid_validity, fetched.uid)
            return message.id
        message = repository.archive_message(
            session,
            mailbox=mailbox,
            uid_validity=uid_validity,
            uid=fetched.uid,
            raw=fetched.raw,
            internal_date=fetched.internal_date,
            received_at=now(),
            message_id_header=headers["message_id"],
            sender=headers["sender"],
            subject=headers["subject"],
        )
        # The server's RFC822.SIZE: larger than the bytes kept when only the header was fetched.
        message.size = max(fetched.size, len(fetched.raw))
        session.flush()
        logger.info("message #%d: archived UID %d (%d bytes)", message.id, fetched.uid,
                    len(fetched.raw))
        return message.id


def read_headers(raw: bytes) -> dict[str, str | None]:
    """Read Message-ID, sender and subject for the archive row; never raises."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        message_id = str(headers.get("Message-ID") or "").strip() or None
        sender = str(headers.get("From") or "")[:500] or None
        subject = str(headers.get("Subject") or "")[:500] or None
    except Exception:  # noqa: BLE001 - a header the email package cannot parse must not lose the mail
        logger.warning("message: unparseable headers, archiving the bytes only", exc_info=True)
        return {"message_id": None, "sender": None, "subject": None}
    return {"message_id": message_id, "sender": sender, "subject": subject}


def decide_and_record(settings: Settings, database: Database, message_pk: int,
                      now: Callable[[], dt.datetime], reply: bool = True) -> bool:
    """Decide one archived message and commit its outcome with its replies; False if it failed.

    With ``reply`` False the outcome is recorded but no reply is queued.

    A bug anywhere in deciding, recording or composing the reply marks the message failed, with
    the traceback, so that the next message is processed. Database errors still propagate.
    """
    try:
        with database.session() as session:
            decision = _decide_in(session, settings, message_pk, now, reply)
    except SQLAlchemyError:
        raise
    except Exception as err:  # noqa: BLE001 - one bad mail must not stop the others
        logger.exception("message #%d: recording the outcome failed", message_pk)
        with database.session() as session:
            message = session.get_one(Message, message_pk)
            repository.mark_processed(session, message, MessageOutcome.FAILED, now(), error=_describe(err))
        return False

    failpoint("after-commit")
    if decision is not None:
        _log_decision(message_pk, decision)
        return decision.outcome != MessageOutcome.FAILED
    return True


def _decide_in(session: Session, settings: Settings, message_pk: int,
               now: Callable[[], dt.datetime], reply: bool) -> Decision | None:
    """Decide a pending message and add its outcome and replies to the session; None if done."""
    message = session.get_one(Message, message_pk)
    if message.outcome != MessageOutcome.PENDING:
        return None

    mail = parse_message(message.raw, max_depth=settings.limits.mime_max_depth)
    limit = settings.limits.max_message_bytes
    try:
        if message.size > limit and len(message.raw) < message.size:
            decision = oversized_decision(mail, message.size, limit, settings.unit_directory())
        else:
            decision = decide(mail, _context(settings, session, message.internal_date))
        error = None
    except Exception as err:  # noqa: BLE001 - a reader bug must still answer the sender
        logger.exception("message #%d: deciding failed", message_pk)
        decision = failed_decision(mail, settings.unit_directory())
        error = _describe(err)

    records = outcomes.record_decision(session, message, decision, now(), error=error)
    if mail.bounce:
        _record_bounces(session, message, now())
    if reply:
        queue_replies(session, settings, message, mail, decision, records, now())
        if records.summary is not None:
            queue_summary_links_alert(session, settings, records.summary, now())
    if decision.needs_converter:
        queue_libreoffice_alert(session, settings, now())
    return decision


def _record_bounces(session: Session, message: Message, now: dt.datetime) -> None:
    """Mark the addresses a bounce reports as failed, once, when the bounce is first processed."""
    for recipient in failed_recipients(message.raw):
        reason = " ".join(part for part in (recipient.status, recipient.diagnostic) if part)
        repository.record_bounce(session, recipient.address, reason, now)
        logger.warning("message #%d: bounce for %s: %s", message.id, recipient.address, reason or "no status")


def _context(settings: Settings, session: Session, received_at: dt.datetime) -> Context:
    return Context(
        units=settings.unit_directory(),
        campaign=settings.campaign.calendar(),
        own_addresses=settings.county_addresses,
        received_at=received_at,
        limits=container_limits(settings),
        convert=converter(settings),
        received_weeks=outcomes.received_weeks(session),
        accepted_weeks=outcomes.accepted_weeks(session),
    )


def _describe(err: Exception) -> str:
    return "".join(traceback.format_exception(err))[-4000:]


def _log_decision(message_pk: int, decision: Decision) -> None:
    if not decision.reports:
        logger.info("message #%d: %s (%s)", message_pk, decision.outcome, decision.reason)
        return
    for plan in decision.reports:
        rules = ",".join(v.rule for v in plan.report.violations) or "-"
        logger.info("message #%d: unit %s week %d: %s, late=%s, rules violated: %s", message_pk,
                    plan.unit, plan.week, decision.outcome, plan.late, rules)
