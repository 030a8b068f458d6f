"""Write the outcome of one processed mail: its state, its submissions, where it now lies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.pipeline import Decision, ReportPlan
from store import repository
from store.models import Message, Submission, Unit


@dataclass(frozen=True)
class RecordedReport:
    """A report of the decision as stored: ``duplicate`` when the same file was already stored."""

    plan: ReportPlan
    submission: Submission
    duplicate: bool


def record_decision(session: Session, message: Message, decision: Decision, now: dt.datetime,
                    error: str | None = None) -> list[RecordedReport]:
    """Store the decision's outcome and submissions on the archived message; no commit."""
    repository.mark_processed(session, message, decision.outcome, now,
                              error=error or decision.held_reason)

    recorded = []
    for plan in decision.reports:
        unit = session.scalars(select(Unit).where(Unit.name == plan.unit)).one()
        submission, duplicate = repository.record_submission(
            session,
            message=message,
            unit=unit,
            week=plan.week,
            late=plan.late,
            file_name=plan.file_name,
            file_sha256=plan.file_sha256,
            report=plan.report,
            received_at=message.internal_date or message.received_at,
        )
        recorded.append(RecordedReport(plan, submission, duplicate))
    return recorded


def update_location(session: Session, message: Message, mailbox: str, uid_validity: int,
                    uid: int) -> None:
    """Point an archived message at the UID it has now (after a UIDVALIDITY reset or a copy)."""
    if (message.mailbox, message.uid_validity, message.uid) == (mailbox, uid_validity, uid):
        return
    message.mailbox = mailbox
    message.uid_validity = uid_validity
    message.uid = uid
