"""Turn a decision into replies in the outbox, in the same transaction as the outcome."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest.consistency import WeekTotals, check_consistency, previous_accepted
from ingest.message import IncomingMail
from ingest.pipeline import FAILED_REASON, Decision
from notify.compose import compose_mail
from notify.notices import (
    AlertNotice,
    DemandReceiptNotice,
    HeldNotice,
    Notice,
    ReceiptNotice,
    RejectionNotice,
    SummaryReceiptNotice,
    UnreadableNotice,
)
from notify.render import Rendered, format_datetime, render_notice
from service.config import Settings
from store import outcomes, repository
from store.models import Message, MessageOutcome, OutboxMail, SummaryMaterial
from store.outcomes import Recorded, RecordedDemandForm, RecordedReport

logger = logging.getLogger(__name__)


def queue_replies(session: Session, settings: Settings, message: Message, mail: IncomingMail,
                  decision: Decision, records: Recorded, now: dt.datetime) -> None:
    """Compose each reply the decision calls for and put it in the outbox; no commit."""
    if not decision.reply or not mail.sender:
        return
    for notice in _notices(session, settings, message, mail, decision, records):
        rendered = render_notice(notice, settings.template_dir, signature=settings.smtp.from_name)
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
        queued = repository.enqueue_mail(
            session,
            message=message,
            kind=str(notice.kind),
            recipient=mail.sender,
            subject=rendered.subject,
            mail_message_id=composed["Message-ID"],
            raw=bytes(composed),
            now=now,
        )
        logger.info("message #%d: %s reply to %s queued as outbox mail %d (%s)", message.id,
                    notice.kind, queued.recipient, queued.id, composed["Message-ID"])


def _notices(session: Session, settings: Settings, message: Message, mail: IncomingMail,
             decision: Decision, records: Recorded) -> list[Notice]:
    campaign = settings.campaign
    received_at = message.internal_date or message.received_at
    if decision.outcome in (MessageOutcome.ACCEPTED, MessageOutcome.REJECTED, MessageOutcome.SUMMARY):
        notices: list[Notice] = [_report_notice(session, record, settings, received_at, decision.ignored_files)
                                 for record in records.reports]
        notices.extend(_demand_notice(record, settings, received_at) for record in records.demand_forms)
        if records.summary is not None:
            notices.append(_summary_notice(records.summary, settings, received_at))
        return notices

    if decision.outcome == MessageOutcome.UNREADABLE:
        # A problem without a file name (a mail over the size limit) is about the whole mail.
        whole_mail = [problem.reason for problem in decision.problems if not problem.file_name]
        return [UnreadableNotice(
            received_subject=mail.subject,
            received_at=received_at,
            attachments=[(problem.file_name, problem.reason) for problem in decision.problems
                         if problem.file_name],
            reason="".join(whole_mail) or None,
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


def _demand_notice(record: RecordedDemandForm, settings: Settings, received_at: dt.datetime) -> Notice:
    form = record.plan.form
    return DemandReceiptNotice(
        unit=record.plan.unit,
        received_at=received_at,
        file_name=record.plan.file_name,
        source=form.source,
        contact=form.contact,
        phone=form.phone,
        rows=form.rows,
        replaced=record.replaced,
        superseded=str(record.record.status) == "superseded",
        duplicate=record.duplicate,
        campaign_name=settings.campaign.name,
        tz=settings.campaign.timezone,
    )


def _summary_notice(record: SummaryMaterial, settings: Settings, received_at: dt.datetime) -> Notice:
    return SummaryReceiptNotice(
        unit=record.unit.name,
        received_at=received_at,
        files=[(str(item["name"]), int(item["size"])) for item in record.files],
        links=list(record.links),
        deadline=settings.campaign.one_off.get("summary"),
        campaign_name=settings.campaign.name,
        tz=settings.campaign.timezone,
    )


def queue_summary_links_alert(session: Session, settings: Settings, record: SummaryMaterial,
                              now: dt.datetime) -> None:
    """Tell the admin about the download links of a summary, which expire; once per mail."""
    if not record.links:
        return
    tz = settings.campaign.timezone
    lines = [f"{record.unit.name}于{format_datetime(record.received_at, tz)}发来的总结材料中有"
             f"{len(record.links)}个超大附件下载链接。这类链接有保存期限，过期后无法下载，"
             "请尽快逐个打开下载并妥善保存：",
             *(f"{number}. {link}" for number, link in enumerate(record.links, start=1)),
             "如链接已失效，请联系该单位重新发送。"]
    alert = AlertNotice(title=f"{record.unit.name}总结材料中有超大附件，请及时下载", lines=lines,
                        as_of=now, tz=tz)
    queue_alert(session, settings, alert, f"alert; summary-links; message={record.message_id}", now)


def queue_alert(session: Session, settings: Settings, alert: AlertNotice, key: str,
                now: dt.datetime) -> int:
    """Queue ``alert`` to each admin address once per ``key``; return the number of mails queued."""
    rendered = render_notice(alert, settings.template_dir, signature=settings.smtp.from_name)
    queued = 0
    for recipient in settings.admin_recipients:
        notice_key = settings.scoped(f"{key}; to={recipient.lower()}")
        if outcomes.find_notice(session, notice_key) is not None:
            continue
        try:
            with session.begin_nested():
                mail = enqueue_unsolicited(session, settings, recipient, rendered, str(alert.kind), now,
                                           notice_key=notice_key)
        except IntegrityError:
            logger.info("alert %s: already queued for %s by another process", key, recipient)
            continue
        queued += 1
        logger.warning("alert %s: queued for %s as outbox mail %d", key, recipient, mail.id)
    return queued


def _findings(session: Session, settings: Settings, record: RecordedReport,
              totals: dict[int, int]) -> list[str]:
    """Return the 核实性 findings of an accepted report against the unit's earlier accepted weeks."""
    plan = record.plan
    earlier = [WeekTotals(item.week, _submission_totals(item))
               for item in outcomes.accepted_submissions(session, plan.unit)
               if item.id != record.submission.id]
    unit = next((unit for unit in settings.units if unit.name == plan.unit), None)
    findings = check_consistency(WeekTotals(plan.week, totals), previous_accepted(earlier, plan.week),
                                 settings.campaign.calendar(), unit.villages if unit else None)
    return [finding.message for finding in findings]


def _submission_totals(submission) -> dict[int, int]:
    return {column: sum(row.values()[column] or 0 for row in submission.rows) for column in range(2, 21)}


def _report_notice(session: Session, record: RecordedReport, settings: Settings, received_at: dt.datetime,
                   ignored_files: list[str]) -> Notice:
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
        ignored_files=ignored_files,
    )
    if report.accepted:
        rows = [{column: value or 0 for column, value in row.items()} for row in report.values]
        findings = _findings(session, settings, record, report.totals())
        return ReceiptNotice(rows=rows, totals=report.totals(), findings=findings, **common)
    return RejectionNotice(violations=report.violations, **common)


LIBREOFFICE_INSTALL = "apt-get install -y --no-install-recommends libreoffice-calc-nogui libreoffice-writer-nogui"


def alert_recipient(settings: Settings) -> str:
    """Return the address of alerts: the first [admin] address, else the county mailbox."""
    return settings.admin_emails[0] if settings.admin_emails else settings.smtp.from_address


def enqueue_alert(session: Session, settings: Settings, message_id: str, rendered: Rendered,
                  now: dt.datetime) -> OutboxMail:
    """Put one alert to the admin into the outbox under the fixed ``message_id``; no commit.

    The fixed Message-ID is what keeps the alert from being queued twice: callers look it up
    in the outbox first.
    """
    return enqueue_unsolicited(session, settings, alert_recipient(settings), rendered, "alert", now,
                               message_id=message_id)


def enqueue_unsolicited(session: Session, settings: Settings, recipient: str, rendered: Rendered, kind: str,
                        now: dt.datetime, message_id: str | None = None,
                        notice_key: str | None = None) -> OutboxMail:
    """Put one mail that replies to no incoming mail into the outbox; no commit.

    ``kind`` is the X-Zhoubao-Notice value. ``message_id`` replaces the generated Message-ID, and
    ``notice_key`` is the outbox's unique key of a scheduled notice or alert.
    """
    composed = compose_mail(
        from_address=settings.smtp.from_address,
        from_name=settings.smtp.from_name,
        to=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=kind,
        now=now,
        in_reply_to=None,
        references=[],
    )
    if message_id is not None:
        composed.replace_header("Message-ID", message_id)
    return repository.enqueue_mail(session, message=None, kind=kind, recipient=recipient,
                                   subject=rendered.subject, mail_message_id=composed["Message-ID"],
                                   raw=bytes(composed), now=now, notice_key=notice_key,
                                   mailbox=settings.mailbox.key)


def queue_libreoffice_alert(session: Session, settings: Settings, now: dt.datetime) -> None:
    """Tell the admin once that LibreOffice is missing; later calls queue nothing."""
    configured = settings.libreoffice.path
    if configured:
        path_advice = (f"配置文件 [libreoffice] 一节的 path 填写的是 {configured}，该文件不存在或不能执行。"
                       "请安装后改为 soffice 的实际路径，或删去这一行，由系统自动查找。")
    else:
        path_advice = ("安装后无需修改配置，也无需重启服务。若 soffice 不在系统路径中，"
                       "请在配置文件 [libreoffice] 一节的 path 中填写其完整路径。")
    alert = AlertNotice(
        title="请在服务器上安装 LibreOffice，以便读取旧版 Word 和 WPS 文件",
        lines=[
            "有乡镇发来了旧版 Word（.doc）、WPS 文字（.wps）或 WPS 表格（.et）格式的统计表。服务器上没有安装 "
            "LibreOffice，本系统无法读取这些文件，已回复发件人改存为 .xlsx 或 .docx 后重新发送。",
            "安装 LibreOffice 后，本系统即可直接读取这类文件，不必再麻烦乡镇另存。"
            f"在 Debian 或 Ubuntu 服务器上，以管理员身份执行：{LIBREOFFICE_INSTALL}",
            path_advice,
            "本提示只发送一次。",
        ],
        tz=settings.campaign.timezone,
    )
    if queue_alert(session, settings, alert, "alert; libreoffice-missing", now):
        logger.warning("alert: LibreOffice missing, alert queued once")


def queue_notices(session: Session, settings: Settings, now: dt.datetime) -> int:
    """Put every scheduled notice due at ``now`` and not yet queued into the outbox; no commit.

    Each goes once to each recipient: the planner leaves out a recipient that already has an
    outbox row with the notice's key, and the key's unique index stops a planner that raced
    another. Returns the number of mails queued.
    """
    from service.notices import plan_notices

    queued = 0
    for planned in plan_notices(settings, session, now):
        rendered = render_notice(planned.notice, settings.template_dir, signature=settings.smtp.from_name)
        for recipient in planned.recipients:
            try:
                with session.begin_nested():
                    mail = enqueue_unsolicited(session, settings, recipient, rendered, planned.header_kind, now,
                                               notice_key=settings.scoped(planned.recipient_key(recipient)))
            except IntegrityError:
                logger.info("notice %s: already queued for %s by another process", planned.key, recipient)
                continue
            queued += 1
            logger.info("notice %s: queued for %s as outbox mail %d (%s)", planned.key, recipient, mail.id,
                        mail.mail_message_id)
    return queued
