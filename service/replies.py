"""Turn a decision into replies in the outbox, in the same transaction as the outcome."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from ingest.message import IncomingMail
from ingest.pipeline import FAILED_REASON, Decision
from notify.compose import compose_mail
from notify.notices import HeldNotice, Notice, ReceiptNotice, RejectionNotice, UnreadableNotice
from notify.render import render_notice
from service.config import Settings
from store import repository
from store.models import Message, MessageOutcome
from store.outcomes import RecordedReport

logger = logging.getLogger(__name__)


def queue_replies(session: Session, settings: Settings, message: Message, mail: IncomingMail,
                  decision: Decision, records: list[RecordedReport], now: dt.datetime) -> None:
    """Compose each reply the decision calls for and put it in the outbox; no commit."""
    if not decision.reply or not mail.sender:
        return
    for notice in _notices(settings, message, mail, decision, records):
        rendered = render_notice(notice, signature=settings.smtp.from_name)
        composed = compose_mail(
            from_address=settings.smtp.from_address,
            from_name=settings.smtp.from_name,
            to=mail.sender,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            kind=str(notice.kind),
            now=now,
            in_reply_to=mail.message_id,
            references=mail.references,
        )
        repository.enqueue_mail(
            session,
            message=message,
            kind=str(notice.kind),
            recipient=mail.sender,
            subject=rendered.subject,
            mail_message_id=composed["Message-ID"],
            raw=bytes(composed),
            now=now,
        )
        logger.info("message #%d: %s reply to %s queued as %s", message.id, notice.kind,
                    mail.sender, composed["Message-ID"])


def _notices(settings: Settings, message: Message, mail: IncomingMail, decision: Decision,
             records: list[RecordedReport]) -> list[Notice]:
    campaign = settings.campaign
    received_at = message.internal_date or message.received_at
    if decision.outcome in (MessageOutcome.ACCEPTED, MessageOutcome.REJECTED):
        return [_report_notice(record, settings, received_at) for record in records]

    if decision.outcome == MessageOutcome.UNREADABLE:
        return [UnreadableNotice(
            received_subject=mail.subject,
            received_at=received_at,
            attachments=[(problem.file_name, problem.reason) for problem in decision.problems],
            unit=decision.unit,
            tz=campaign.timezone,
        )]

    reason = FAILED_REASON if decision.outcome == MessageOutcome.FAILED else decision.held_reason
    return [HeldNotice(
        reason=reason or "",
        unit_text=decision.unit_text,
        sender=mail.sender or "",
        received_subject=mail.subject,
        received_at=received_at,
        file_names=[attachment.filename for attachment in mail.attachments],
        tz=campaign.timezone,
    )]


def _report_notice(record: RecordedReport, settings: Settings, received_at: dt.datetime) -> Notice:
    plan = record.plan
    report = plan.report
    calendar = settings.campaign.calendar()
    common = dict(
        unit=plan.unit,
        week=plan.week,
        deadline=calendar.deadline(plan.week),
        late=plan.late,
        received_at=received_at,
        file_name=plan.file_name,
        source=report.table.source,
        reporter=report.table.header.reporter,
        campaign_name=settings.campaign.name,
        duplicate=record.duplicate,
        tz=settings.campaign.timezone,
    )
    if report.accepted:
        rows = [{column: value or 0 for column, value in row.items()} for row in report.values]
        return ReceiptNotice(rows=rows, totals=report.totals(), **common)
    return RejectionNotice(violations=report.violations, **common)
