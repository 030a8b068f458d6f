"""Decide what one incoming mail means, without I/O.

Given the parsed mail and the campaign's context, :func:`decide` returns which weekly reports the
mail carries (unit, week, lateness, checked values), whether it is held for the admin or ignored,
and whether its sender gets a reply. Storing the decision and sending the reply happen elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from enum import StrEnum

from ingest.calendar import Campaign, week_from_text
from ingest.errors import UnreadableFile
from ingest.locate import locate_tables
from ingest.message import Attachment, IncomingMail
from ingest.readers import read_grids
from ingest.rules import check_table
from ingest.table import CheckedReport, WeeklyTable
from ingest.units import UnitDirectory
from store.models import MessageOutcome

logger = logging.getLogger(__name__)

# File kinds read in this version; the reply names what to send for every other kind.
READABLE_KINDS = frozenset({"xlsx", "docx"})

UNSUPPORTED_REASONS = {
    "xls": "这是旧版 Excel（.xls）文件，暂时无法读取。请在 Excel 或 WPS 中“另存为”.xlsx 格式后重新发送。",
    "doc": "这是旧版 Word（.doc）文件，暂时无法读取。请在 Word 或 WPS 中“另存为”.docx 格式后重新发送。",
    "pdf": "这是 PDF 文件，无法从中读取表格数字。请发送填好的 Excel（.xlsx）或 Word（.docx）原文件。",
    "image": "这是图片（照片或截图），无法从中读取表格数字。请发送填好的 Excel（.xlsx）或 Word（.docx）原文件。",
    "zip": "这是压缩包，暂时无法读取。请直接把统计表文件（.xlsx 或 .docx）作为附件发送。",
    "rar": "这是 RAR 压缩包，无法读取。请直接把统计表文件（.xlsx 或 .docx）作为附件发送。",
    "7z": "这是 7z 压缩包，无法读取。请直接把统计表文件（.xlsx 或 .docx）作为附件发送。",
}
UNKNOWN_REASON = "无法识别该文件的格式。请发送填好的附件二统计表（Excel .xlsx 或 Word .docx 文件）。"


class WeekSource(StrEnum):
    """Where the week of a report was read from, in the order they are tried."""

    SUBJECT = "subject"
    FILE_NAME = "file_name"
    FILL_DATE = "fill_date"
    RECEIVED = "received"


@dataclass(frozen=True)
class Context:
    """What :func:`decide` needs besides the mail: config and the server's INTERNALDATE."""

    units: UnitDirectory
    campaign: Campaign
    own_addresses: frozenset[str]
    received_at: dt.datetime


@dataclass(frozen=True)
class FileProblem:
    """An attachment that held no readable weekly table, with the Chinese reason for the sender."""

    file_name: str
    reason: str


@dataclass
class ReportPlan:
    """One checked weekly report, ready to be stored as a submission."""

    unit: str
    week: int
    week_source: WeekSource
    late: bool
    file_name: str
    file_sha256: str
    report: CheckedReport


@dataclass
class Decision:
    """The outcome of one mail.

    ``reason`` is an English phrase for the log; ``held_reason`` the Chinese sentence shown to
    the admin and, when ``reply`` is set, to the sender.
    """

    outcome: MessageOutcome
    reason: str
    unit: str | None = None
    reports: list[ReportPlan] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    held_reason: str | None = None
    # The 填报乡镇（单位） as written in the table of a held mail, for the reply.
    unit_text: str | None = None
    reply: bool = False


@dataclass(frozen=True)
class _FoundTable:
    attachment: Attachment
    table: WeeklyTable


def decide(mail: IncomingMail, context: Context) -> Decision:
    """Work out the outcome of one mail: ignored, held, unreadable, accepted or rejected."""
    ignored = _ignore_reason(mail, context)
    if ignored:
        return Decision(MessageOutcome.IGNORED, ignored)

    found, problems = _read_attachments(mail.attachments)
    unit = context.units.by_email(mail.sender)
    if unit is None:
        return Decision(
            MessageOutcome.HELD,
            "sender not in config",
            problems=problems,
            held_reason=f"发件地址 {mail.sender} 未在配置中登记为任何填报单位。",
            reply=bool(found),
        )

    if not found:
        return Decision(MessageOutcome.UNREADABLE, "no weekly table", unit=unit.name,
                        problems=problems, reply=True)

    return _plan_reports(mail, context, unit.name, found)


def _ignore_reason(mail: IncomingMail, context: Context) -> str | None:
    """Return why a mail gets neither a record nor a reply, or None."""
    if mail.bounce:
        return "bounce"
    if mail.automatic:
        return "auto-reply"
    if not mail.sender:
        return "no sender address"
    if mail.sender in context.own_addresses:
        return "sent by the county's own address"
    return None


def _read_attachments(attachments: list[Attachment]) -> tuple[list[_FoundTable], list[FileProblem]]:
    found: list[_FoundTable] = []
    problems: list[FileProblem] = []
    for attachment in attachments:
        if attachment.kind not in READABLE_KINDS:
            reason = UNSUPPORTED_REASONS.get(attachment.kind, UNKNOWN_REASON)
            problems.append(FileProblem(attachment.filename, reason))
            continue
        try:
            tables = locate_tables(read_grids(attachment.data, attachment.kind))
        except UnreadableFile as err:
            logger.info("attachment %r: unreadable: %s", attachment.filename, err)
            problems.append(FileProblem(attachment.filename, err.reason))
            continue
        found.extend(_FoundTable(attachment, table) for table in tables)
    return found, problems


def _plan_reports(mail: IncomingMail, context: Context, unit: str,
                  found: list[_FoundTable]) -> Decision:
    plans = []
    for item in found:
        other_unit = _other_unit_named(item.table, context.units, unit)
        if other_unit:
            return Decision(
                MessageOutcome.HELD,
                "table names another unit",
                unit=unit,
                held_reason=(f"表中“填报乡镇（单位）”填写为“{item.table.header.unit_text}”，"
                             f"与该邮箱登记的单位“{unit}”不一致。"),
                unit_text=item.table.header.unit_text,
                reply=True,
            )

        week, source = _resolve_week(mail.subject, item, context)
        if week is None:
            return Decision(
                MessageOutcome.HELD,
                "no week could be determined",
                unit=unit,
                held_reason="无法确定该表属于活动的第几周（主题、文件名和填报时间都未能对应到报送周次）。",
                reply=True,
            )

        report = check_table(item.table, first_week=week == context.campaign.weeks()[0])
        plans.append(ReportPlan(
            unit=unit,
            week=week,
            week_source=source,
            late=context.campaign.is_late(week, context.received_at),
            file_name=item.attachment.filename,
            file_sha256=hashlib.sha256(item.attachment.data).hexdigest(),
            report=report,
        ))

    accepted = all(plan.report.accepted for plan in plans)
    outcome = MessageOutcome.ACCEPTED if accepted else MessageOutcome.REJECTED
    return Decision(outcome, "checked", unit=unit, reports=plans, reply=True)


def _other_unit_named(table: WeeklyTable, units: UnitDirectory, unit: str) -> str | None:
    """Return the configured unit the table's 填报乡镇 names, if it is not the sender's."""
    text = table.header.unit_text
    if not text:
        return None
    named = units.match_name(text)
    if named is None or named.name == unit:
        return None
    return named.name


def _resolve_week(subject: str, item: _FoundTable, context: Context) -> tuple[int | None, WeekSource]:
    """Find the report's week: 第N周 in the subject or file name, the 填报时间, the arrival time."""
    campaign = context.campaign
    valid = set(campaign.weeks())
    for text, source in ((subject, WeekSource.SUBJECT), (item.attachment.filename, WeekSource.FILE_NAME)):
        week = week_from_text(text or "")
        if week in valid:
            return week, source

    fill_date = item.table.header.fill_date
    if fill_date is not None:
        week = campaign.week_for_fill_date(fill_date)
        if week is not None:
            return week, WeekSource.FILL_DATE

    return campaign.week_due_after(context.received_at), WeekSource.RECEIVED


FAILED_REASON = "读取该文件时系统出现错误，邮件已保存并转县科协人工核对，暂不需要重新发送。"


def failed_decision(mail: IncomingMail, units: UnitDirectory) -> Decision:
    """Describe a mail whose processing raised: kept for the admin, the sender told so."""
    unit = units.by_email(mail.sender) if mail.sender else None
    problems = [FileProblem(attachment.filename, FAILED_REASON) for attachment in mail.attachments]
    return Decision(
        MessageOutcome.FAILED,
        "processing raised",
        unit=unit.name if unit else None,
        problems=problems or [FileProblem("", FAILED_REASON)],
        reply=unit is not None and not (mail.automatic or mail.bounce),
    )
