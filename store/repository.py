"""Queries and writes on the zhoubao tables.

Every function takes an open :class:`~sqlalchemy.orm.Session` and flushes at most: the caller's
``Database.session()`` block decides when the transaction commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable

from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, contains_eager

from ingest.demand import DemandForm, DemandRow
from ingest.summary import SummaryPlan
from ingest.table import CheckedReport
from store.models import (
    BouncingAddress,
    DemandFormRecord,
    DemandFormStatus,
    DemandRowRecord,
    FindingExplanation,
    MailboxLease,
    Message,
    MessageOutcome,
    OutboxMail,
    OutboxStatus,
    ReportRowRecord,
    Submission,
    SubmissionStatus,
    SummaryMaterial,
    Unit,
    ViolationRecord,
)

logger = logging.getLogger(__name__)

# Outbox back-off: the first retry waits one minute, each further failure doubles the wait, and
# no wait exceeds one hour, so during a long SMTP outage each mail is tried once an hour.
RETRY_FIRST_DELAY = dt.timedelta(minutes=1)
RETRY_MAX_DELAY = dt.timedelta(hours=1)

# The content key column is VARCHAR(300); a longer Message-ID header (malformed mail) is hashed.
_MAX_KEY_LENGTH = 250


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- units -------------------------------------------------------------------------------------


def sync_units(session: Session, units: Iterable[tuple[str, Iterable[str]]]) -> dict[str, Unit]:
    """Insert the configured units that are new and update the aliases of the others.

    Units that left the configuration stay in the table, because old submissions refer to them.
    New units are inserted with ON CONFLICT DO NOTHING, so two processes starting at once do not
    collide. Returns the configured units by name.
    """
    units = [(name, list(aliases)) for name, aliases in units]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    existing = set(session.scalars(select(Unit.name)))
    for name, aliases in units:
        if name not in existing:
            inserted = session.execute(insert(Unit).values(name=name, aliases=aliases, created_at=_utcnow())
                                       .on_conflict_do_nothing(index_elements=["name"]))
            if inserted.rowcount:
                logger.info("unit %s: added", name)

    synced = {unit.name: unit for unit in session.scalars(select(Unit).where(Unit.name.in_([n for n, _ in units])))}
    for name, aliases in units:
        if synced[name].aliases != aliases:
            synced[name].aliases = aliases
    session.flush()
    return synced


# --- messages ----------------------------------------------------------------------------------


def message_key(message_id_header: str | None, sha256: str) -> str:
    """Return the content key of a mail: its Message-ID, or ``sha256:<hex>`` when it has none."""
    message_id = (message_id_header or "").strip()
    if not message_id:
        return f"sha256:{sha256}"
    if len(message_id) > _MAX_KEY_LENGTH:
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
        return f"message-id-sha256:{digest}"
    return message_id


def find_message_by_uid(
    session: Session, mailbox: str, uid_validity: int, uid: int
) -> Message | None:
    """Return the archived message with this IMAP UID, or None."""
    return session.scalars(
        select(Message).where(
            Message.mailbox == mailbox,
            Message.uid_validity == uid_validity,
            Message.uid == uid,
        )
    ).one_or_none()


def find_message_by_content(
    session: Session, message_id_header: str | None, sha256: str
) -> Message | None:
    """Return the archived message with this Message-ID and body hash, or None.

    This finds a mail again after a UIDVALIDITY reset or when a second copy arrives.
    """
    return session.scalars(
        select(Message).where(
            Message.message_key == message_key(message_id_header, sha256),
            Message.sha256 == sha256,
        )
    ).one_or_none()


def archive_message(
    session: Session,
    *,
    mailbox: str,
    uid_validity: int,
    uid: int,
    raw: bytes,
    internal_date: dt.datetime | None,
    received_at: dt.datetime,
    message_id_header: str | None,
    sender: str | None,
    subject: str | None,
) -> Message:
    """Store a fetched mail with its raw bytes; its outcome starts as pending.

    Call :func:`find_message_by_uid` and :func:`find_message_by_content` first: a second record
    of the same UID or the same content raises ``sqlalchemy.exc.IntegrityError`` at flush.
    """
    sha256 = hashlib.sha256(raw).hexdigest()
    message = Message(
        mailbox=mailbox,
        uid_validity=uid_validity,
        uid=uid,
        raw=raw,
        size=len(raw),
        sha256=sha256,
        message_id_header=message_id_header,
        message_key=message_key(message_id_header, sha256),
        internal_date=internal_date,
        received_at=received_at,
        sender=sender,
        subject=subject,
        outcome=MessageOutcome.PENDING,
    )
    session.add(message)
    session.flush()
    return message


def mark_processed(
    session: Session,
    message: Message,
    outcome: MessageOutcome,
    now: dt.datetime,
    error: str | None = None,
) -> None:
    """Record the outcome of processing a message and, for a failure, the error text."""
    stored = session.get_one(Message, message.id)
    stored.outcome = outcome
    stored.processed_at = now
    stored.error = error
    session.flush()


def mark_moved(session: Session, message: Message, now: dt.datetime) -> None:
    """Record that the mail was moved to the processed folder."""
    session.get_one(Message, message.id).moved_at = now
    session.flush()


def message_counts(session: Session) -> dict[MessageOutcome, int]:
    """Count archived messages per outcome; every outcome is present, with 0 when unused."""
    counts = {outcome: 0 for outcome in MessageOutcome}
    rows = session.execute(select(Message.outcome, func.count()).group_by(Message.outcome))
    for outcome, count in rows:
        counts[outcome] = count
    return counts


# --- submissions -------------------------------------------------------------------------------


def record_submission(
    session: Session,
    *,
    message: Message,
    unit: Unit,
    week: int,
    late: bool,
    file_name: str,
    file_sha256: str,
    report: CheckedReport,
    received_at: dt.datetime,
) -> tuple[Submission, bool]:
    """Store a checked weekly table as a submission of ``unit`` for ``week``.

    Returns ``(submission, duplicate)``. When the unit already sent the same file (same hash and
    table source) for that week, the earlier submission comes back with ``duplicate=True`` and
    nothing is written. An accepted table supersedes the unit's accepted one for the week, unless
    that one was received later; the older record stays, marked superseded.
    """
    # On PostgreSQL the row lock serialises concurrent writers for one unit until commit, so two
    # service processes cannot both leave an accepted submission for the same week.
    unit = _lock_unit(session, unit)
    # Callers may pass objects loaded by an earlier session; use this session's instances.
    message = session.get_one(Message, message.id)

    existing = _find_same_file(session, unit, week, file_sha256, report.table.source)
    if existing is not None and _reinstate(session, existing, received_at):
        logger.info("unit %s week %d: file %s sent again, submission %d is current again",
                    unit.name, week, file_name, existing.id)
        return existing, False
    if existing is not None:
        logger.info("unit %s week %d: file %s already recorded", unit.name, week, file_name)
        return existing, True

    # Looked up before the new submission exists, so autoflush cannot insert it too early.
    current = _find_accepted(session, unit, week)
    submission = _new_submission(
        message=message,
        unit=unit,
        week=week,
        late=late,
        file_name=file_name,
        file_sha256=file_sha256,
        report=report,
        received_at=received_at,
    )
    if submission.status is SubmissionStatus.ACCEPTED:
        _insert_superseding(session, submission, current, SubmissionStatus.SUPERSEDED)
    else:
        session.add(submission)
        session.flush()

    logger.info(
        "unit %s week %d: submission %d recorded as %s",
        unit.name,
        week,
        submission.id,
        submission.status,
    )
    return submission, False


def _reinstate(session: Session, existing: Submission, received_at: dt.datetime) -> bool:
    """Make a superseded submission current again when its file is sent after its successor.

    A clerk who resends an earlier file means that file to count, as the receipt's rule "the last
    report that passed counts" promises. Returns False when there is nothing to reinstate.
    """
    if existing.status is not SubmissionStatus.SUPERSEDED:
        return False
    current = _find_accepted(session, existing.unit, existing.week)
    if current is None or current.received_at > received_at:
        return False

    take_over(session, existing, current)
    return True


def _lock_unit(session: Session, unit: Unit) -> Unit:
    return session.scalars(select(Unit).where(Unit.id == unit.id).with_for_update()).one()


def _find_same_file(
    session: Session, unit: Unit, week: int, file_sha256: str, source: str
) -> Submission | None:
    return session.scalars(
        select(Submission).where(
            Submission.unit_id == unit.id,
            Submission.week == week,
            Submission.file_sha256 == file_sha256,
            Submission.source == source,
        )
    ).one_or_none()


def _new_submission(
    *,
    message: Message,
    unit: Unit,
    week: int,
    late: bool,
    file_name: str,
    file_sha256: str,
    report: CheckedReport,
    received_at: dt.datetime,
) -> Submission:
    header = report.table.header
    status = SubmissionStatus.ACCEPTED if report.accepted else SubmissionStatus.REJECTED
    submission = Submission(
        message=message,
        unit=unit,
        week=week,
        status=status,
        late=late,
        file_name=file_name,
        file_sha256=file_sha256,
        source=report.table.source,
        unit_text=header.unit_text,
        reporter=header.reporter,
        phone=header.phone,
        fill_date=header.fill_date,
        received_at=received_at,
        created_at=_utcnow(),
    )
    submission.rows = _row_records(report)
    submission.violations = [
        ViolationRecord(
            rule=str(violation.rule),
            row=violation.row,
            cell=violation.cell,
            columns=",".join(str(column) for column in violation.columns),
            found={str(column): value for column, value in violation.found.items()},
            expected=violation.expected,
        )
        for violation in report.violations
    ]
    return submission


def _row_records(report: CheckedReport) -> list[ReportRowRecord]:
    records = []
    for position, (row, values) in enumerate(zip(report.table.rows, report.values, strict=True)):
        columns = {f"c{column}": values.get(column) for column in range(2, 21)}
        records.append(
            ReportRowRecord(position=position, remark=row.remark, ref=row.ref, **columns)
        )
    return records


def _find_accepted(session: Session, unit: Unit, week: int) -> Submission | None:
    return find_accepted(session, unit.id, week)


def find_accepted(session: Session, unit_id: int, week: int) -> Submission | None:
    """Return the unit's accepted submission of ``week``, or None."""
    return session.scalars(
        select(Submission).where(
            Submission.unit_id == unit_id,
            Submission.week == week,
            Submission.status == SubmissionStatus.ACCEPTED,
        )
    ).one_or_none()


def take_over(
    session: Session,
    record: Submission | DemandFormRecord,
    current: Submission | DemandFormRecord | None,
) -> None:
    """Make ``record`` the accepted row in place of ``current``, the accepted one so far, if any.

    ``record`` may be new or stored. The partial unique index allows one accepted row per unit
    (and week), so ``current`` leaves 'accepted' in a flush before ``record`` enters it.
    """
    accepted, superseded = _STATES[type(record)]
    if current is not None:
        current.status = superseded
        session.flush()
    record.status = accepted
    record.superseded_by_id = None
    session.add(record)
    session.flush()
    if current is not None:
        current.superseded_by_id = record.id
        session.flush()


_STATES = {
    Submission: (SubmissionStatus.ACCEPTED, SubmissionStatus.SUPERSEDED),
    DemandFormRecord: (DemandFormStatus.ACCEPTED, DemandFormStatus.SUPERSEDED),
}


def _insert_superseding(
    session: Session,
    record: Submission | DemandFormRecord,
    current: Submission | DemandFormRecord | None,
    superseded: SubmissionStatus | DemandFormStatus,
) -> None:
    """Insert an accepted ``record`` that replaces ``current``, the accepted one so far, if any."""
    if current is not None and current.received_at > record.received_at:
        # Mail processed out of order: the file received later stays the valid one.
        record.status = superseded
        record.superseded_by_id = current.id
        session.add(record)
        session.flush()
        return
    take_over(session, record, current)


def list_submissions(session: Session) -> list[Submission]:
    """Return every submission with its unit, rows and violations, by unit name, week and id."""
    statement = (
        select(Submission)
        .join(Submission.unit)
        .options(contains_eager(Submission.unit))
        .order_by(Unit.name, Submission.week, Submission.id)
    )
    return list(session.scalars(statement))


# --- demand forms ------------------------------------------------------------------------------


def record_demand_form(
    session: Session,
    *,
    message: Message,
    unit: Unit,
    file_name: str,
    file_sha256: str,
    form: DemandForm,
    received_at: dt.datetime,
) -> tuple[DemandFormRecord, bool]:
    """Store a 附件1 demand form with its rows as the unit's current demand form.

    Returns ``(record, duplicate)``. When the unit already sent the same file (same hash and
    table source), the earlier record comes back with ``duplicate=True`` and nothing is written.
    A new form supersedes the unit's accepted one, unless that one was received later.
    """
    # As in record_submission: the row lock serialises concurrent writers for one unit.
    unit = _lock_unit(session, unit)
    message = session.get_one(Message, message.id)

    existing = _find_same_demand_file(session, unit, file_sha256, form.source)
    if existing is not None:
        logger.info("unit %s: demand form %s already recorded", unit.name, file_name)
        return existing, True

    current = _find_accepted_demand_form(session, unit)
    record = DemandFormRecord(
        message=message,
        unit=unit,
        status=DemandFormStatus.ACCEPTED,
        file_name=file_name,
        file_sha256=file_sha256,
        source=form.source,
        unit_text=form.unit_text,
        contact=form.contact,
        phone=form.phone,
        received_at=received_at,
        created_at=_utcnow(),
    )
    record.rows = [_demand_row_record(position, row) for position, row in enumerate(form.rows)]
    _insert_superseding(session, record, current, DemandFormStatus.SUPERSEDED)

    logger.info(
        "unit %s: demand form %d with %d rows recorded as %s",
        unit.name,
        record.id,
        len(record.rows),
        record.status,
    )
    return record, False


def _find_same_demand_file(
    session: Session, unit: Unit, file_sha256: str, source: str
) -> DemandFormRecord | None:
    return session.scalars(
        select(DemandFormRecord).where(
            DemandFormRecord.unit_id == unit.id,
            DemandFormRecord.file_sha256 == file_sha256,
            DemandFormRecord.source == source,
        )
    ).one_or_none()


def _find_accepted_demand_form(session: Session, unit: Unit) -> DemandFormRecord | None:
    return session.scalars(
        select(DemandFormRecord).where(
            DemandFormRecord.unit_id == unit.id,
            DemandFormRecord.status == DemandFormStatus.ACCEPTED,
        )
    ).one_or_none()


def _demand_row_record(position: int, row: DemandRow) -> DemandRowRecord:
    return DemandRowRecord(
        position=position,
        experts=row.experts,
        audience=row.audience,
        time=row.time,
        place_mode=row.place_mode,
        content=row.content,
        resources=row.resources,
        ref=row.ref,
    )


def replaced_demand_form(session: Session, record: DemandFormRecord) -> DemandFormRecord | None:
    """Return the unit's earlier accepted demand form that ``record`` superseded, or None."""
    # A form received earlier but recorded after ``record`` also points at it; it has a higher id.
    return session.scalars(
        select(DemandFormRecord).where(
            DemandFormRecord.superseded_by_id == record.id,
            DemandFormRecord.id < record.id,
        )
    ).one_or_none()


def list_demand_forms(session: Session) -> list[DemandFormRecord]:
    """Return every demand form with its unit and rows, by unit name and id."""
    statement = (
        select(DemandFormRecord)
        .join(DemandFormRecord.unit)
        .options(contains_eager(DemandFormRecord.unit))
        .order_by(Unit.name, DemandFormRecord.id)
    )
    return list(session.scalars(statement))


def explain_finding(session: Session, submission_id: int, code: str, note: str,
                    now: dt.datetime) -> FindingExplanation:
    """Mark the 核实性 finding ``code`` of a report explained; a second mark replaces the note."""
    record = session.scalars(select(FindingExplanation).where(
        FindingExplanation.submission_id == submission_id, FindingExplanation.code == code)).first()
    if record is None:
        record = FindingExplanation(submission_id=submission_id, code=code, note=note, explained_at=now)
        session.add(record)
    else:
        record.note, record.explained_at = note, now
    session.flush()
    return record


def explained_findings(session: Session) -> dict[tuple[int, str], str]:
    """Return the admin's note of every finding marked explained, by (submission id, check code)."""
    rows = session.execute(select(FindingExplanation.submission_id, FindingExplanation.code,
                                  FindingExplanation.note))
    return {(submission_id, code): note for submission_id, code, note in rows}


def record_summary(session: Session, *, message: Message, unit: Unit, plan: SummaryPlan,
                   received_at: dt.datetime) -> SummaryMaterial:
    """Record the summary material of one mail; the files stay in the archived mail's bytes.

    The same mail processed again (after a crash) returns the record made the first time.
    """
    existing = session.scalars(select(SummaryMaterial).where(
        SummaryMaterial.message_id == message.id, SummaryMaterial.unit_id == unit.id)).first()
    if existing is not None:
        return existing
    record = SummaryMaterial(
        message_id=message.id, unit_id=unit.id,
        files=[{"name": item.name, "size": item.size, "sha256": item.sha256} for item in plan.files],
        links=list(plan.links), received_at=received_at, created_at=_utcnow(),
    )
    session.add(record)
    session.flush()
    logger.info("unit %s: summary material recorded from message #%d: %d file(s), %d link(s)",
                unit.name, message.id, len(plan.files), len(plan.links))
    return record


def list_summaries(session: Session) -> list[SummaryMaterial]:
    """Return every recorded summary material, oldest first."""
    return list(session.scalars(select(SummaryMaterial).order_by(SummaryMaterial.received_at, SummaryMaterial.id)))


# --- outbox ------------------------------------------------------------------------------------


def enqueue_mail(
    session: Session,
    *,
    message: Message | None,
    kind: str,
    recipient: str,
    subject: str,
    mail_message_id: str,
    raw: bytes,
    now: dt.datetime | None = None,
    notice_key: str | None = None,
    mailbox: str | None = None,
) -> OutboxMail:
    """Queue a composed mail for delivery as soon as the outbox runs.

    ``raw`` is stored whole and sent unchanged, so every attempt carries ``mail_message_id``.
    A scheduled notice or an alert passes its ``notice_key``, which the database keeps unique.
    ``mailbox`` names the mailbox whose SMTP account sends it; a reply takes its message's mailbox.
    """
    created_at = now or _utcnow()
    mail = OutboxMail(
        message_id=message.id if message is not None else None,
        kind=str(kind),
        notice_key=notice_key,
        mailbox=mailbox if mailbox is not None or message is None else message.mailbox,
        recipient=recipient,
        subject=subject,
        mail_message_id=mail_message_id,
        raw=raw,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=created_at,
        created_at=created_at,
    )
    session.add(mail)
    session.flush()
    return mail


def due_outbox(session: Session, now: dt.datetime, limit: int = 50,
               mailbox: str | None = None) -> list[OutboxMail]:
    """Claim up to ``limit`` pending mails whose next attempt is due, oldest first.

    With ``mailbox``, only that mailbox's mails. On PostgreSQL the rows stay locked (FOR UPDATE
    SKIP LOCKED) until the session's transaction ends, so another process skips them: send and
    mark them in the same transaction. SQLite ignores the lock and relies on a single writer.
    """
    statement = (
        select(OutboxMail)
        .where(OutboxMail.status == OutboxStatus.PENDING, OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if mailbox is not None:
        statement = statement.where(OutboxMail.mailbox == mailbox)
    return list(session.scalars(statement))


def withdraw_pending(session: Session, mail_message_id: str) -> bool:
    """Delete the outbox mail with this Message-ID if it was never sent; True when one was."""
    mail = session.scalars(select(OutboxMail).where(OutboxMail.mail_message_id == mail_message_id,
                                                    OutboxMail.status == OutboxStatus.PENDING)).first()
    if mail is None:
        return False
    session.delete(mail)
    session.flush()
    return True


def adopt_outbox(session: Session, mailbox: str) -> int:
    """Give the outbox mails queued without a mailbox to ``mailbox``; return how many.

    Notices queued before outbox mail had a mailbox have none, and the service hands them to its
    first mailbox at start-up so that they are still sent.
    """
    rows = session.execute(update(OutboxMail).where(OutboxMail.mailbox.is_(None)).values(mailbox=mailbox))
    return rows.rowcount


def mark_sent(session: Session, mail: OutboxMail, now: dt.datetime) -> None:
    """Record a successful delivery."""
    mail.attempts += 1
    mail.status = OutboxStatus.SENT
    mail.sent_at = now
    mail.last_error = None
    session.flush()


def retry_delay(attempts: int) -> dt.timedelta:
    """Return the wait after ``attempts`` failed attempts: 1 min doubling, at most 1 h."""
    doublings = min(max(attempts - 1, 0), 16)
    return min(RETRY_FIRST_DELAY * 2**doublings, RETRY_MAX_DELAY)


def mark_retry(session: Session, mail: OutboxMail, now: dt.datetime, error: str) -> None:
    """Record a temporary delivery failure and schedule the next attempt with back-off."""
    mail.attempts += 1
    mail.last_error = error
    mail.next_attempt_at = now + retry_delay(mail.attempts)
    session.flush()


def mark_failed(session: Session, mail: OutboxMail, now: dt.datetime, error: str) -> None:
    """Record a permanent delivery failure; the mail is not tried again."""
    mail.attempts += 1
    mail.status = OutboxStatus.FAILED
    mail.last_error = error
    mail.next_attempt_at = now
    session.flush()


def list_outbox(session: Session) -> list[OutboxMail]:
    """Return every outbox mail in the order it was queued."""
    return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


# Key of the PostgreSQL advisory lock that serialises outbox delivery across service processes.
_SENDING_LOCK_KEY = 0x7A686F62


def lock_sending(session: Session) -> None:
    """Make other processes wait until this transaction ends before they count or send mail.

    On PostgreSQL this takes a transaction-scoped advisory lock, so the send limits counted from
    ``sent_at`` are exact across processes. On SQLite it does nothing, so there the limits assume
    one sending process at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SENDING_LOCK_KEY})


def count_sent(session: Session, since: dt.datetime, recipient: str | None = None,
               mailbox: str | None = None) -> int:
    """Count outbox mails sent after ``since``; to ``recipient`` (any case) and from ``mailbox``
    only when given."""
    statement = select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at > since)
    if mailbox is not None:
        statement = statement.where(OutboxMail.mailbox == mailbox)
    if recipient is not None:
        statement = statement.where(func.lower(OutboxMail.recipient) == recipient.lower())
    return session.scalar(statement)


def sent_times(session: Session, recipient: str, since: dt.datetime) -> list[dt.datetime]:
    """Return when mails to ``recipient`` (any case) were sent after ``since``, oldest first."""
    statement = (
        select(OutboxMail.sent_at)
        .where(OutboxMail.sent_at > since, func.lower(OutboxMail.recipient) == recipient.lower())
        .order_by(OutboxMail.sent_at)
    )
    return list(session.scalars(statement))


def count_due(session: Session, now: dt.datetime, mailbox: str | None = None) -> int:
    """Count pending outbox mails whose next attempt is due at ``now``, of ``mailbox`` when given."""
    statement = select(func.count()).select_from(OutboxMail).where(
        OutboxMail.status == OutboxStatus.PENDING, OutboxMail.next_attempt_at <= now
    )
    if mailbox is not None:
        statement = statement.where(OutboxMail.mailbox == mailbox)
    return session.scalar(statement)


def defer_mail(session: Session, mail: OutboxMail, until: dt.datetime) -> None:
    """Postpone a pending mail to ``until`` without counting an attempt: it was not tried."""
    mail.next_attempt_at = until
    session.flush()


def failed_outbox(session: Session, since: dt.datetime, mailbox: str | None = None) -> list[OutboxMail]:
    """Return the mails that failed permanently at or after ``since``, oldest first, for the admin.

    ``mark_failed`` sets ``next_attempt_at`` to the moment of failure, so it dates the failure.
    With ``mailbox``, only that mailbox's mails.
    """
    statement = (
        select(OutboxMail)
        .where(OutboxMail.status == OutboxStatus.FAILED, OutboxMail.next_attempt_at >= since)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
    )
    if mailbox is not None:
        statement = statement.where(OutboxMail.mailbox == mailbox)
    return list(session.scalars(statement))


# --- bounces -----------------------------------------------------------------------------------


def record_bounce(session: Session, address: str, reason: str, now: dt.datetime) -> BouncingAddress:
    """Record that mail to ``address`` bounced at ``now`` for ``reason``, and return the record.

    The address is stored lower-case. A known address gets one more to its count and the reason
    recorded last. ``first_seen_at`` and ``last_seen_at`` keep the earliest and latest bounce,
    whatever order the bounces are recorded in. The insert is one upsert (ON CONFLICT DO UPDATE),
    so two processes recording the same address at once do not collide.
    """
    address = address.strip().lower()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = BouncingAddress.__table__
    statement = insert(table).values(
        address=address, first_seen_at=now, last_seen_at=now, reason=reason, count=1
    )
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.address],
        set_={
            "first_seen_at": case(
                (new.first_seen_at < table.c.first_seen_at, new.first_seen_at),
                else_=table.c.first_seen_at,
            ),
            "last_seen_at": case(
                (new.last_seen_at > table.c.last_seen_at, new.last_seen_at),
                else_=table.c.last_seen_at,
            ),
            "reason": new.reason,
            "count": table.c.count + 1,
        },
    )
    session.execute(statement)
    logger.info("address %s: bounce recorded: %s", address, reason)

    return session.get_one(BouncingAddress, address, populate_existing=True)


def find_bouncing(session: Session, address: str) -> BouncingAddress | None:
    """Return the bounce record of ``address`` (any case), or None when mail to it never bounced."""
    return session.get(BouncingAddress, address.strip().lower())


def bouncing_now(session: Session) -> dict[str, BouncingAddress]:
    """Return the addresses that bounced since the last mail received from them, by address.

    A mail from an address after its bounce shows the mailbox works again (a full mailbox was
    emptied, say), so the address counts as bouncing no longer.
    """
    last_mail = (
        select(func.lower(Message.sender).label("sender"), func.max(Message.received_at).label("at"))
        .where(Message.sender.is_not(None)).group_by(func.lower(Message.sender)).subquery()
    )
    statement = (
        select(BouncingAddress).outerjoin(last_mail, last_mail.c.sender == BouncingAddress.address)
        .where((last_mail.c.at.is_(None)) | (last_mail.c.at < BouncingAddress.last_seen_at))
    )
    return {record.address: record for record in session.scalars(statement)}


def list_bouncing(session: Session) -> list[BouncingAddress]:
    """Return every address that mail bounced from, by address."""
    return list(session.scalars(select(BouncingAddress).order_by(BouncingAddress.address)))


# --- mailbox leases ----------------------------------------------------------------------------


def acquire_lease(session: Session, mailbox: str, holder: str, now: dt.datetime,
                  ttl: dt.timedelta, stale_holder: str | None = None) -> str | None:
    """Take or renew the intake lease of ``mailbox`` for ``holder`` until ``now + ttl``.

    Returns None when ``holder`` has the lease now, else the holder that keeps it. The lease is
    taken when it expired, or from ``stale_holder``, a process the caller knows to be dead. The
    update is one conditional statement, so of two processes that race for a lease one wins on
    PostgreSQL and SQLite alike. ``now`` must be real time, not a replay clock.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(MailboxLease).values(mailbox=mailbox, holder=holder, expires_at=now)
                    .on_conflict_do_nothing(index_elements=["mailbox"]))
    taken = session.execute(
        update(MailboxLease)
        .where(MailboxLease.mailbox == mailbox,
               (MailboxLease.holder == holder) | (MailboxLease.expires_at <= now)
               | (MailboxLease.holder == (stale_holder or holder)))
        .values(holder=holder, expires_at=now + ttl)
    )
    if taken.rowcount == 1:
        return None
    return session.scalar(select(MailboxLease.holder).where(MailboxLease.mailbox == mailbox))


def release_lease(session: Session, mailbox: str, holder: str, now: dt.datetime) -> None:
    """Let the lease of ``mailbox`` expire at ``now`` if ``holder`` has it."""
    session.execute(update(MailboxLease)
                    .where(MailboxLease.mailbox == mailbox, MailboxLease.holder == holder)
                    .values(expires_at=now))
