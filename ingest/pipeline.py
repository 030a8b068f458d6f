"""Decide what one incoming mail means, without I/O.

Given the parsed mail and the campaign's context, :func:`decide` returns which weekly reports and
demand forms the mail carries (unit, week, lateness, checked values), whether it is held for the
admin or ignored, and whether its sender gets a reply. Storing the decision and sending the reply
happen elsewhere. The one outside step, converting legacy Word and WPS files with LibreOffice, is
injected through :attr:`Context.convert`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ingest.calendar import Campaign, assign_week, week_from_text
from ingest.containers import Limits, expand_files
from ingest.demand import DemandForm, locate_demand_forms
from ingest.errors import UnreadableFile
from ingest.locate import locate_tables
from ingest.message import Attachment, IncomingMail
from ingest.readers import READABLE_KINDS, read_grids, unreadable_reason
from ingest.rules import check_table
from ingest.summary import SummaryPlan, is_summary_mail, plan_summary
from ingest.table import CheckedReport, FileProblem, Grid, WeeklyTable
from ingest.units import UnitDirectory, UnitSettings
from store.models import MessageOutcome

logger = logging.getLogger(__name__)

# Kinds that need LibreOffice before read_grids can read them.
CONVERTIBLE_KINDS = frozenset({"doc", "wps", "et"})

FAILED_REASON = "读取该文件时系统出现错误，邮件已保存并转县科协人工核对，暂不需要重新发送。"
BODY_FILE_NAME = "邮件正文中的表格"
BLANK_DEMAND_FORM_REASON = "这是空白的附件1“活动需求征集表”，表中没有填写任何活动。请填写后重新发送。"

# Converts legacy bytes of a kind ("doc", "wps", "et") into (bytes, new kind), or raises
# UnreadableFile. None in the context means LibreOffice is not installed.
Converter = Callable[[bytes, str], tuple[bytes, str]]


class WeekSource(StrEnum):
    """Source of a report's week, in the order the sources are tried."""

    SHEET = "sheet"
    SUBJECT = "subject"
    FILE_NAME = "file_name"
    FILL_DATE = "fill_date"
    RECEIVED = "received"


@dataclass(frozen=True)
class Context:
    """Inputs of :func:`decide` besides the mail.

    ``received_at`` is the server's INTERNALDATE. ``received_weeks`` maps each unit to the weeks
    it already has a submission for, so a workbook that repeats last week's sheet is read for
    this week only. ``accepted_weeks`` maps each unit to the weeks it has an accepted report for,
    which decides the week of a report known only by its arrival time.
    """

    units: UnitDirectory
    campaign: Campaign
    own_addresses: frozenset[str]
    received_at: dt.datetime
    limits: Limits = field(default_factory=Limits)
    convert: Converter | None = None
    received_weeks: Mapping[str, frozenset[int]] = field(default_factory=dict)
    accepted_weeks: Mapping[str, frozenset[int]] = field(default_factory=dict)


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
class DemandPlan:
    """One 附件1 demand form, ready to be stored for the unit."""

    unit: str
    file_name: str
    file_sha256: str
    form: DemandForm


@dataclass
class Decision:
    """The outcome of one mail.

    ``reason`` is an English phrase for the log; ``held_reason`` the Chinese sentence shown to
    the admin and, when ``reply`` is set, to the sender. ``ignored_files`` names the attachments
    that held no table in a mail that had one, for the receipt.
    """

    outcome: MessageOutcome
    reason: str
    unit: str | None = None
    reports: list[ReportPlan] = field(default_factory=list)
    demand_forms: list[DemandPlan] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    held_reason: str | None = None
    # The 填报乡镇（单位） as written in the table of a held mail, for the reply.
    unit_text: str | None = None
    reply: bool = False
    needs_converter: bool = False
    # 总结材料 the mail carries, recorded besides any table in it.
    summary: SummaryPlan | None = None


@dataclass(frozen=True)
class FoundFile:
    """Content of one file: weekly tables, demand forms, or neither."""

    attachment: Attachment
    tables: list[WeeklyTable]
    forms: list[DemandForm]


def decide(mail: IncomingMail, context: Context) -> Decision:
    """Work out the outcome of one mail: ignored, held, unreadable, accepted or rejected."""
    ignored = _ignore_reason(mail, context)
    if ignored:
        return Decision(MessageOutcome.IGNORED, ignored)

    found, problems, needs_converter = _read_files(mail, context)
    decision = _decide_found(mail, context, found, problems)
    decision.needs_converter = needs_converter
    return decision


def _decide_found(mail: IncomingMail, context: Context, found: list[FoundFile],
                  problems: list[FileProblem]) -> Decision:
    unit = context.units.by_email(mail.sender)
    holds_something = any(item.tables or item.forms for item in found)
    if unit is None:
        return Decision(
            MessageOutcome.HELD,
            "sender not in config",
            problems=problems,
            held_reason=f"发件地址 {mail.sender} 未在配置中登记为任何填报单位。",
            reply=holds_something,
        )

    summary = plan_summary(mail, unit.name) if is_summary_mail(mail) else None
    if not holds_something:
        if summary is not None:
            return Decision(MessageOutcome.SUMMARY, "summary material", unit=unit.name,
                            summary=summary, reply=True)
        return Decision(MessageOutcome.UNREADABLE, "no weekly table", unit=unit.name,
                        problems=problems, reply=True)

    decision = _plan(mail, context, unit, found)
    decision.ignored_files += [problem.file_name for problem in problems if problem.file_name]
    decision.summary = summary
    return decision


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


def _read_files(mail: IncomingMail, context: Context) -> tuple[list[FoundFile], list[FileProblem], bool]:
    """Open every candidate file of the mail, containers and the HTML body included.

    The flag is True when a legacy file could not be read because no converter is installed.
    """
    found, problems, needs_converter = read_files(mail.attachments, context.limits, context.convert)
    problems = [*mail.problems, *problems]

    body = _body_table(mail)
    if body is not None:
        item, _ = _read_file(body, None)
        # The body counts only when it contains the form, so a layout table causes no problem.
        if item is not None and (item.tables or item.forms):
            found.append(item)
    return found, problems, needs_converter


def read_files(attachments: list[Attachment], limits: Limits,
               convert: Converter | None) -> tuple[list[FoundFile], list[FileProblem], bool]:
    """Unpack containers, convert legacy files and locate the tables in each file.

    Returns the files that hold a weekly table or a demand form, the problems of the others, and
    whether a legacy file was left unread for want of a converter.
    """
    files, problems = expand_files(attachments, limits)
    needs_converter = convert is None and any(item.kind in CONVERTIBLE_KINDS for item in files)

    found = []
    for attachment in files:
        item, problem = _read_file(attachment, convert)
        if problem is not None:
            problems.append(problem)
        elif item is not None:
            found.append(item)
    return found, problems, needs_converter


def _body_table(mail: IncomingMail) -> Attachment | None:
    """Return the mail body as a file when a table may be pasted in it: HTML, or tab-separated text."""
    html = mail.body_html
    if "<table" in html.lower():
        return Attachment(BODY_FILE_NAME, html.encode("utf-8"), "text/html", "html")
    # Phone mail apps paste a spreadsheet selection as plain text, one row a line, cells split by tabs.
    if any(line.count("\t") >= 10 for line in mail.body_text.splitlines()):
        return Attachment(BODY_FILE_NAME, mail.body_text.encode("utf-8"), "text/plain", "csv")
    return None


def _read_file(attachment: Attachment, convert: Converter | None) -> tuple[FoundFile | None, FileProblem | None]:
    kind = attachment.kind
    data = attachment.data
    if kind in CONVERTIBLE_KINDS:
        if convert is None:
            return None, FileProblem(attachment.filename, unreadable_reason(kind))
        try:
            data, kind = convert(data, kind)
        except UnreadableFile as err:
            logger.info("attachment %r: conversion failed: %s", attachment.filename, err)
            return None, FileProblem(attachment.filename, err.reason)

    if kind not in READABLE_KINDS:
        return None, FileProblem(attachment.filename, unreadable_reason(kind))

    try:
        grids = read_grids(data, kind)
    except UnreadableFile as err:
        logger.info("attachment %r: unreadable: %s", attachment.filename, err)
        return None, FileProblem(attachment.filename, err.reason)
    return _find_tables(attachment, grids)


def _find_tables(attachment: Attachment, grids: list[Grid]) -> tuple[FoundFile | None, FileProblem | None]:
    # A blank 附件1 is not recorded: it would replace a filled one the unit sent before.
    all_forms = locate_demand_forms(grids)
    forms = [form for form in all_forms if form.rows]
    try:
        tables = locate_tables(grids)
    except UnreadableFile as err:
        if forms:
            return FoundFile(attachment, [], forms), None
        if all_forms:
            return None, FileProblem(attachment.filename, BLANK_DEMAND_FORM_REASON)
        return None, FileProblem(attachment.filename, err.reason)
    return FoundFile(attachment, tables, forms), None


def _plan(mail: IncomingMail, context: Context, unit: UnitSettings, found: list[FoundFile]) -> Decision:
    """Assign a unit and week to every table found and check it.

    A table whose 填报乡镇 names another configured unit, or whose week cannot be found, is held
    for the admin. The mail as a whole is held only when no table of it could be planned.
    """
    plans: list[ReportPlan] = []
    demand_plans: list[DemandPlan] = []
    held: list[tuple[str, str, str | None]] = []
    for item in found:
        digest = hashlib.sha256(item.attachment.data).hexdigest()
        demand_plans.extend(DemandPlan(unit.name, item.attachment.filename, digest, form) for form in item.forms)
        for table in _tables_to_read(mail, context, unit.name, item):
            plan, hold_reason = _plan_table(mail, context, unit, item, table, digest)
            if plan is not None:
                plans.append(plan)
            else:
                held.append((item.attachment.filename, hold_reason, table.header.unit_text))

    if held and not plans and not demand_plans:
        file_name, reason, unit_text = held[0]
        decision = _held(unit.name, reason, "table held for review")
        decision.unit_text = unit_text
        return decision

    rejected = any(not plan.report.accepted for plan in plans)
    outcome = MessageOutcome.REJECTED if rejected else MessageOutcome.ACCEPTED
    decision = Decision(outcome, "checked", unit=unit.name, reports=plans, demand_forms=demand_plans,
                        reply=True)
    decision.ignored_files = [f"{file_name}（{reason}已转县科协人工核对）" for file_name, reason, _ in held]
    return decision


def _plan_table(mail: IncomingMail, context: Context, unit: UnitSettings, item: FoundFile, table: WeeklyTable,
                digest: str) -> tuple[ReportPlan | None, str]:
    """Plan one table, or return why it is held for the admin."""
    other_unit = _other_unit_named(table, context.units, unit.name)
    if other_unit:
        return None, (f"表中“填报乡镇（单位）”填写为“{table.header.unit_text}”，"
                      f"与该邮箱登记的单位“{unit.name}”不一致。")

    week, source = _resolve_week(mail.subject, item, table, context, unit)
    if week is None:
        return None, "无法确定该表属于活动的第几周（主题、文件名、工作表名称和填报时间都未能对应到报送周次）。"

    report = check_table(table, first_week=week == context.campaign.weeks()[0])
    plan = ReportPlan(
        unit=unit.name,
        week=week,
        week_source=source,
        late=context.campaign.is_late(week, context.received_at),
        file_name=item.attachment.filename,
        file_sha256=digest,
        report=report,
    )
    return plan, ""


def _held(unit: str, reason: str, log_reason: str) -> Decision:
    return Decision(MessageOutcome.HELD, log_reason, unit=unit, held_reason=reason, reply=True)


def _tables_to_read(mail: IncomingMail, context: Context, unit: str, item: FoundFile) -> list[WeeklyTable]:
    """Return the tables of one file that count.

    A workbook often carries last week's sheet beside this week's. When the mail names its week,
    sheets of other weeks that the unit has already reported are left out.
    """
    if len(item.tables) < 2:
        return item.tables
    mail_week = _explicit_week(mail.subject, item.attachment.filename, context.campaign)
    if mail_week is None:
        return item.tables
    already = context.received_weeks.get(unit, frozenset())
    return [table for table in item.tables
            if _sheet_week(table, context.campaign) in (None, mail_week)
            or _sheet_week(table, context.campaign) not in already]


def _other_unit_named(table: WeeklyTable, units: UnitDirectory, unit: str) -> str | None:
    """Return the configured unit the table's 填报乡镇 names, if it is not the sender's."""
    text = table.header.unit_text
    if not text:
        return None
    named = units.match_name(text)
    if named is None or named.name == unit:
        return None
    return named.name


def _sheet_week(table: WeeklyTable, campaign: Campaign) -> int | None:
    week = table.week_hint
    return week if week is not None and campaign.is_reporting_week(week) else None


def _explicit_week(subject: str, file_name: str, campaign: Campaign) -> int | None:
    for text in (subject, file_name):
        week = week_from_text(text or "")
        if week is not None and campaign.is_reporting_week(week):
            return week
    return None


def _resolve_week(subject: str, item: FoundFile, table: WeeklyTable, context: Context,
                  unit: UnitSettings) -> tuple[int | None, WeekSource]:
    """Find the report's week.

    A workbook with several week sheets gives each table its sheet's week. Otherwise the order is:
    第N周 in the subject, in the file name, in the sheet name or title, then the 填报时间, then the
    arrival time together with the unit's accepted weeks.
    """
    campaign = context.campaign
    sheet_week = _sheet_week(table, campaign)
    if sheet_week is not None and len(item.tables) > 1:
        return sheet_week, WeekSource.SHEET

    for text, source in ((subject, WeekSource.SUBJECT), (item.attachment.filename, WeekSource.FILE_NAME)):
        week = week_from_text(text or "")
        if week is not None and campaign.is_reporting_week(week):
            return week, source
    if sheet_week is not None:
        return sheet_week, WeekSource.SHEET

    fill_date = table.header.fill_date
    if fill_date is not None:
        week = campaign.week_for_fill_date(fill_date)
        if week is not None:
            return week, WeekSource.FILL_DATE

    # Only the arrival time is left: a report after a deadline fills the week just closed when the
    # unit has no accepted report for it, else it counts for the next week.
    week = assign_week(campaign, context.received_at, None, context.accepted_weeks.get(unit.name, frozenset()),
                       unit.reports_in)
    return week, WeekSource.RECEIVED


def oversized_decision(mail: IncomingMail, size: int, limit: int, units: UnitDirectory) -> Decision:
    """Describe a mail too large to fetch: recorded from its headers, with a reply naming the limit."""
    unit = units.by_email(mail.sender) if mail.sender else None
    reason = (f"邮件大小约 {size / 1048576:.1f} MB，超过本系统可接收的 {limit / 1048576:.0f} MB 上限，"
              "未能下载。请只附上填好的统计表文件（不要附照片、视频），或把文件压缩后重新发送。")
    return Decision(
        MessageOutcome.UNREADABLE,
        "message over the size limit",
        unit=unit.name if unit else None,
        problems=[FileProblem("", reason)],
        reply=unit is not None and not (mail.automatic or mail.bounce),
    )


def failed_decision(mail: IncomingMail, units: UnitDirectory) -> Decision:
    """Describe a mail whose processing raised: kept for the admin, with a reply saying so."""
    unit = units.by_email(mail.sender) if mail.sender else None
    problems = [FileProblem(attachment.filename, FAILED_REASON) for attachment in mail.attachments]
    return Decision(
        MessageOutcome.FAILED,
        "processing raised",
        unit=unit.name if unit else None,
        problems=problems or [FileProblem("", FAILED_REASON)],
        reply=unit is not None and not (mail.automatic or mail.bounce),
    )
