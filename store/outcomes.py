"""Write the outcome of one processed mail: its state, its submissions, where it now lies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.pipeline import Decision, DemandPlan, ReportPlan
from store import repository
from store.models import (
    DemandFormRecord,
    Message,
    OutboxMail,
    Submission,
    SubmissionStatus,
    SummaryMaterial,
    Unit,
)


@dataclass(frozen=True)
class RecordedDemandForm:
    """A demand form of the decision as stored, and whether it replaced an earlier one."""

    plan: DemandPlan
    record: DemandFormRecord
    duplicate: bool
    replaced: bool


@dataclass
class Recorded:
    """Everything :func:`record_decision` stored for one mail."""

    reports: list[RecordedReport]
    demand_forms: list[RecordedDemandForm]
    summary: SummaryMaterial | None = None


@dataclass(frozen=True)
class RecordedReport:
    """A report of the decision as stored: ``duplicate`` when the same file was already stored."""

    plan: ReportPlan
    submission: Submission
    duplicate: bool


def record_decision(session: Session, message: Message, decision: Decision, now: dt.datetime,
                    error: str | None = None) -> Recorded:
    """Store the decision's outcome, submissions and demand forms on the archived message; no commit."""
    problems = "；".join(f"{problem.file_name}：{problem.reason}" if problem.file_name else problem.reason
                        for problem in decision.problems)
    repository.mark_processed(session, message, decision.outcome, now,
                              error=error or decision.held_reason or problems or None)
    received_at = message.internal_date or message.received_at

    reports = []
    for plan in decision.reports:
        submission, duplicate = repository.record_submission(
            session,
            message=message,
            unit=_unit(session, plan.unit),
            week=plan.week,
            late=plan.late,
            file_name=plan.file_name,
            file_sha256=plan.file_sha256,
            report=plan.report,
            received_at=received_at,
        )
        reports.append(RecordedReport(plan, submission, duplicate))

    forms = []
    for plan in decision.demand_forms:
        record, duplicate = repository.record_demand_form(
            session,
            message=message,
            unit=_unit(session, plan.unit),
            file_name=plan.file_name,
            file_sha256=plan.file_sha256,
            form=plan.form,
            received_at=received_at,
        )
        replaced = repository.replaced_demand_form(session, record) is not None
        forms.append(RecordedDemandForm(plan, record, duplicate, replaced))

    summary = None
    if decision.summary is not None:
        summary = repository.record_summary(session, message=message,
                                            unit=_unit(session, decision.summary.unit),
                                            plan=decision.summary, received_at=received_at)
    return Recorded(reports, forms, summary)


def _unit(session: Session, name: str) -> Unit:
    return session.scalars(select(Unit).where(Unit.name == name)).one()


def update_location(session: Session, message: Message, mailbox: str, uid_validity: int,
                    uid: int) -> None:
    """Point an archived message at the UID it has now (after a UIDVALIDITY reset or a copy)."""
    if (message.mailbox, message.uid_validity, message.uid) == (mailbox, uid_validity, uid):
        return
    message.mailbox = mailbox
    message.uid_validity = uid_validity
    message.uid = uid


def received_weeks(session: Session) -> dict[str, frozenset[int]]:
    """Map each unit's name to the weeks it has any submission for."""
    return _weeks_by_unit(session, select(Unit.name, Submission.week).join(Submission.unit))


def accepted_weeks(session: Session) -> dict[str, frozenset[int]]:
    """Map each unit's name to the weeks it has an accepted submission for."""
    return _weeks_by_unit(session, select(Unit.name, Submission.week).join(Submission.unit)
                          .where(Submission.status == SubmissionStatus.ACCEPTED))


def _weeks_by_unit(session: Session, statement) -> dict[str, frozenset[int]]:
    weeks: dict[str, set[int]] = {}
    for name, week in session.execute(statement.distinct()):
        weeks.setdefault(name, set()).add(week)
    return {name: frozenset(values) for name, values in weeks.items()}


def one_off_senders(session: Session, document: str, now: dt.datetime) -> dict[str, dt.datetime]:
    """Return the units that sent the one-off ``document`` by ``now``, each with its first arrival.

    ``document`` is ``demand-form`` (an accepted or superseded 附件1) or ``summary`` (总结材料).
    """
    record = {"demand-form": DemandFormRecord, "summary": SummaryMaterial}[document]
    statement = (
        select(Unit.name, record.received_at).join(record.unit)
        .where(record.received_at <= now).order_by(record.received_at)
    )
    senders: dict[str, dt.datetime] = {}
    for name, received_at in session.execute(statement):
        senders.setdefault(name, received_at)
    return senders


def accepted_submissions(session: Session, unit: str) -> list[Submission]:
    """Return the unit's accepted submissions, one per week, with their rows."""
    return list(session.scalars(select(Submission).join(Submission.unit)
                                .where(Unit.name == unit, Submission.status == SubmissionStatus.ACCEPTED)))


def find_notice(session: Session, notice_key: str) -> OutboxMail | None:
    """Return the outbox row of a scheduled notice or alert by its notice key, or None."""
    return session.scalars(select(OutboxMail).where(OutboxMail.notice_key == notice_key)).first()


def find_outbox_mail(session: Session, mail_message_id: str) -> OutboxMail | None:
    """Return the outbox row with this Message-ID header, if one was ever queued."""
    return session.scalars(select(OutboxMail).where(OutboxMail.mail_message_id == mail_message_id)).first()


def outbox_message_ids(session: Session, kind: str, prefix: str) -> list[str]:
    """Return the Message-ID headers of ``kind`` outbox rows that start with ``prefix``, oldest first."""
    statement = (select(OutboxMail.mail_message_id)
                 .where(OutboxMail.kind == kind,
                        OutboxMail.mail_message_id.startswith(prefix, autoescape=True))
                 .order_by(OutboxMail.id))
    return list(session.scalars(statement))


class AssignError(ValueError):
    """A submission cannot be moved: unknown id, or a week the campaign does not have."""


def assign_week(session: Session, submission_id: int, week: int, late: bool) -> tuple[Submission, int]:
    """Move a submission to ``week``, as the admin decides; return it and its old week; no commit.

    ``late`` tells whether it missed the deadline of ``week``. An accepted submission competes
    with the target week's accepted one: the one received later stays accepted. In the old week,
    the report it had superseded becomes current again.
    """
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise AssignError(f"submission {submission_id} not found")
    old_week = submission.week
    submission.late = late
    if old_week == week:
        return submission, old_week

    predecessor = _superseded_by(session, submission) if submission.status == SubmissionStatus.ACCEPTED else None
    accepted = submission.status == SubmissionStatus.ACCEPTED
    if accepted:
        submission.status = SubmissionStatus.SUPERSEDED
        session.flush()
    submission.week = week
    session.flush()

    if predecessor is not None:
        predecessor.status = SubmissionStatus.ACCEPTED
        predecessor.superseded_by_id = None
        session.flush()
    if accepted:
        _compete(session, submission)
    return submission, old_week


def _superseded_by(session: Session, submission: Submission) -> Submission | None:
    """Return the latest report that ``submission`` superseded in its week, if any."""
    return session.scalars(
        select(Submission).where(Submission.superseded_by_id == submission.id,
                                 Submission.week == submission.week)
        .order_by(Submission.received_at.desc(), Submission.id.desc())
    ).first()


def _compete(session: Session, submission: Submission) -> None:
    """Make ``submission`` (not yet accepted) the accepted one of its week unless a later one is."""
    current = repository.find_accepted(session, submission.unit_id, submission.week)
    if current is not None and current.received_at > submission.received_at:
        submission.superseded_by_id = current.id
        session.flush()
        return
    repository.take_over(session, submission, current)
