"""Work out from the database which scheduled notices are due at a moment, without sending any.

The calendar (:func:`ingest.calendar.due_notices`) returns which reminders, overdue notices and
digests fall due at ``now`` and are still useful. This module adds what only the database records:
which units have an accepted report by ``now``, which were returned, and which notices are
already in the outbox. Nothing here writes.

A notice counts as queued for a recipient when an outbox row, whatever its status, has the
key :meth:`PlannedNotice.recipient_key` gives, such as ``reminder; week=3; to=a@example.cn``.
The database keeps that key unique, so two planners that race queue it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.calendar import Campaign, OneOffNotice, ScheduledNotice, due_notices, due_one_off_notices
from ingest.consistency import WeekTotals, check_consistency, previous_accepted
from ingest.form import COLUMNS
from ingest.rules import RULES
from ingest.table import RuleId, Violation
from ingest.units import UnitDirectory, UnitSettings
from notify.notices import (
    BouncingRecipient,
    ChaseNotice,
    Contact,
    DigestNotice,
    FailedMail,
    HeldMail,
    OneOffDeadline,
    OneOffDigestNotice,
    OneOffStatus,
    OverdueNotice,
    ReminderNotice,
    ReportedUnit,
    ReturnedReport,
    ReturnedUnit,
    SecondOverdueNotice,
    UnitFinding,
)
from notify.render import format_datetime, render_notice
from service.config import Settings
from store import outcomes, repository
from store.models import (
    Message,
    MessageOutcome,
    OutboxMail,
    Submission,
    SubmissionStatus,
    Unit,
)

logger = logging.getLogger(__name__)

_WEEK = dt.timedelta(days=7)

# Weekly counts add up over the campaign; 乡镇、村 and the running totals 4 and 5 do not.
_CAMPAIGN_SUMMED = tuple(column for column in COLUMNS if column >= 6)


class ReportState(StrEnum):
    """The state of a unit's report for one week at a given moment."""

    ON_TIME = "on-time"
    LATE = "late"
    RETURNED = "returned"  # the latest report was returned and not corrected
    MISSING = "missing"


STATE_LABELS = {
    ReportState.ON_TIME: "已按时报送",
    ReportState.LATE: "逾期报送",
    ReportState.RETURNED: "已退回未更正",
    ReportState.MISSING: "未报送",
}


@dataclass(frozen=True)
class UnitStatus:
    """One unit's state for a week; ``submission`` is the accepted or the returned report."""

    unit: UnitSettings
    state: ReportState
    submission: Submission | None = None

    @property
    def accepted(self) -> bool:
        return self.state in (ReportState.ON_TIME, ReportState.LATE)


@dataclass(frozen=True)
class PlannedNotice:
    """A notice due now: its kind, the unit it chases (None: the admin's digest) and recipients."""

    kind: ScheduledNotice
    unit: str | None
    week: int | None  # None: a one-off deadline's notice
    recipients: tuple[str, ...]
    notice: ChaseNotice | DigestNotice | OneOffDigestNotice

    @property
    def header_kind(self) -> str:
        """The ``X-Zhoubao-Notice`` value, such as ``overdue; week=3``."""
        return self.notice.header_kind

    @property
    def key(self) -> str:
        """The notice's name in logs: its header value and the unit it goes to."""
        return f"{self.header_kind}; unit={self.unit}" if self.unit else self.header_kind

    def recipient_key(self, recipient: str) -> str:
        """Return the outbox's ``notice_key`` of this notice to ``recipient``."""
        return f"{self.header_kind}; to={recipient.lower()}"


# --- the week's status -------------------------------------------------------------------------


def week_status(settings: Settings, session: Session, week: int, now: dt.datetime) -> list[UnitStatus]:
    """Return the state of each unit due to report ``week``, as known at ``now``, in config order.

    Reports received after ``now`` are not counted, so a replay with ``--now`` shows the week as it was then.
    """
    calendar = settings.campaign.calendar()
    by_unit = _submissions_by_unit(session, [week], now)
    return [_unit_status(unit, by_unit.get(unit.name, []))
            for unit in UnitDirectory(settings.units).due_in(calendar, week)]


def _unit_status(unit: UnitSettings, submissions: list[Submission]) -> UnitStatus:
    accepted = [item for item in submissions if item.status is SubmissionStatus.ACCEPTED]
    if accepted:
        state = ReportState.LATE if accepted[-1].late else ReportState.ON_TIME
        return UnitStatus(unit, state, accepted[-1])

    returned = [item for item in submissions if item.status is SubmissionStatus.REJECTED]
    if returned:
        return UnitStatus(unit, ReportState.RETURNED, returned[-1])
    return UnitStatus(unit, ReportState.MISSING)


def _submissions_by_unit(session: Session, weeks: Iterable[int],
                         now: dt.datetime) -> dict[str, list[Submission]]:
    """Return the submissions of ``weeks`` received by ``now``, by unit name, oldest first."""
    statement = (
        select(Submission).join(Submission.unit)
        .where(Submission.week.in_(list(weeks)), Submission.received_at <= now)
        .order_by(Submission.received_at, Submission.id)
    )
    by_unit: dict[str, list[Submission]] = defaultdict(list)
    for submission in session.scalars(statement):
        by_unit[submission.unit.name].append(submission)
    return by_unit


def violations_of(submission: Submission) -> list[Violation]:
    """Return the stored violations of ``submission`` as :class:`ingest.table.Violation`."""
    return [
        Violation(
            rule=RuleId(record.rule),
            row=record.row,
            cell=record.cell,
            columns=tuple(int(column) for column in record.columns.split(",") if column),
            found={int(column): value for column, value in record.found.items()},
            expected=record.expected,
        )
        for record in submission.violations
    ]


# --- planning ----------------------------------------------------------------------------------


def plan_notices(settings: Settings, session: Session, now: dt.datetime) -> list[PlannedNotice]:
    """Return the scheduled notices due at ``now``, still useful and not yet in the outbox.

    Stale ones are left out: no reminder after the deadline, no reminder or overdue notice to a
    unit with an accepted report by ``now``, nothing in a skipped week. A recipient that already
    has the notice in the outbox is left out, and so is a notice left without recipients.
    """
    calendar = settings.campaign.calendar()
    due = due_notices(calendar, settings.notices, now)
    planned: list[PlannedNotice] = []
    for item in due:
        if item.kind is ScheduledNotice.DIGEST:
            planned.append(_plan_digest(settings, session, calendar, item.week, now))
        else:
            planned.extend(_plan_chase(settings, session, calendar, item.kind, item.week, now))
    for one_off in due_one_off_notices(calendar, settings.notices, settings.campaign.one_off, now):
        if one_off.kind is ScheduledNotice.DIGEST:
            planned.append(_plan_one_off_digest(settings, session, one_off, now))
        else:
            planned.extend(_plan_one_off(settings, session, calendar, one_off, now))
    return _without_queued(settings, session, planned)


def _plan_chase(settings: Settings, session: Session, calendar: Campaign, kind: ScheduledNotice,
                week: int, now: dt.datetime) -> list[PlannedNotice]:
    planned = []
    bouncing = repository.bouncing_now(session)
    for status in week_status(settings, session, week, now):
        if status.accepted:
            continue
        recipients = _deliverable(status.unit, bouncing, f"{kind}; week={week}")
        if not recipients:
            continue
        notice = _chase_notice(settings, session, calendar, kind, week, status, now)
        planned.append(PlannedNotice(kind, status.unit.name, week, recipients, notice))
    return planned


def _deliverable(unit: UnitSettings, bouncing: Mapping[str, object], notice: str) -> tuple[str, ...]:
    """Return the unit's addresses that do not bounce; log when none is left."""
    recipients = tuple(address for address in unit.emails if address.lower() not in bouncing)
    if not unit.emails:
        logger.warning("unit %s: no address configured, %s not planned", unit.name, notice)
    elif not recipients:
        logger.warning("unit %s: every address bounces, %s not planned", unit.name, notice)
    return recipients


def _chase_notice(settings: Settings, session: Session, calendar: Campaign, kind: ScheduledNotice,
                  week: int, status: UnitStatus, now: dt.datetime) -> ChaseNotice:
    return _build_chase(settings, session, kind, status.unit, now, deadline=calendar.deadline(week),
                        week=week, returned=_returned(status))


def _build_chase(settings: Settings, session: Session, kind: ScheduledNotice, unit: UnitSettings,
                 now: dt.datetime, **about) -> ChaseNotice:
    """Return the reminder or overdue notice of ``kind``; ``about`` names the deadline it chases."""
    admin = settings.admin
    common = dict(unit=unit.name, as_of=now, contact=Contact(admin.name, admin.phone, admin.office),
                  campaign_name=settings.campaign.name, tz=settings.campaign.timezone, **about)
    if kind is ScheduledNotice.REMINDER:
        return ReminderNotice(**common)
    if kind is ScheduledNotice.OVERDUE:
        return OverdueNotice(**common)
    first_kind = OverdueNotice(**common).header_kind
    return SecondOverdueNotice(first_sent_at=_first_sent_at(session, first_kind, unit.emails), **common)


# --- one-off deadlines -------------------------------------------------------------------------


def one_off_units(settings: Settings, calendar: Campaign, deadline: dt.datetime) -> list[UnitSettings]:
    """Return the units that owe a one-off document due at ``deadline``.

    Those are the units reporting in the week nearest the deadline: the first week due after
    it, or the last week for a deadline after the campaign, such as the summary's.
    """
    week = calendar.week_due_after(deadline) or calendar.last_week
    return [unit for unit in settings.units if unit.reports_in(week)]


def _plan_one_off(settings: Settings, session: Session, calendar: Campaign, item: OneOffNotice,
                  now: dt.datetime) -> list[PlannedNotice]:
    sent = outcomes.one_off_senders(session, item.document, now)
    bouncing = repository.bouncing_now(session)
    planned = []
    for unit in one_off_units(settings, calendar, item.deadline):
        if unit.name in sent:
            continue
        recipients = _deliverable(unit, bouncing, f"{item.kind}; deadline={item.document}")
        if not recipients:
            continue
        notice = _build_chase(settings, session, item.kind, unit, now, deadline=item.deadline,
                              deadline_name=OneOffDeadline(item.document))
        planned.append(PlannedNotice(item.kind, unit.name, None, recipients, notice))
    return planned


def one_off_status(settings: Settings, session: Session, now: dt.datetime,
                   horizon: dt.timedelta = dt.timedelta(days=14)) -> list[OneOffStatus]:
    """Return who has and has not sent each one-off document due before ``now + horizon``."""
    deadlines = sorted(settings.campaign.one_off.items(), key=lambda item: item[1])
    return [_one_off_status(settings, session, document, deadline, now)
            for document, deadline in deadlines if deadline <= now + horizon]


def _one_off_status(settings: Settings, session: Session, document: str, deadline: dt.datetime,
                    now: dt.datetime) -> OneOffStatus:
    sent = outcomes.one_off_senders(session, document, now)
    units = [unit.name for unit in one_off_units(settings, settings.campaign.calendar(), deadline)]
    return OneOffStatus(OneOffDeadline(document), deadline,
                        received=[name for name in units if name in sent],
                        missing=[name for name in units if name not in sent])


def _plan_one_off_digest(settings: Settings, session: Session, item: OneOffNotice,
                         now: dt.datetime) -> PlannedNotice:
    status = _one_off_status(settings, session, item.document, item.deadline, now)
    notice = OneOffDigestNotice(status=status, as_of=now, campaign_name=settings.campaign.name,
                                tz=settings.campaign.timezone)
    recipients = settings.admin_recipients
    return PlannedNotice(ScheduledNotice.DIGEST, None, None, tuple(recipients), notice)


def _returned(status: UnitStatus) -> ReturnedReport | None:
    if status.state is not ReportState.RETURNED or status.submission is None:
        return None
    submission = status.submission
    return ReturnedReport(received_at=submission.received_at, file_name=submission.file_name,
                          violations=violations_of(submission))


def _first_sent_at(session: Session, kind: str, recipients: tuple[str, ...]) -> dt.datetime | None:
    statement = select(OutboxMail.sent_at).where(
        OutboxMail.kind == kind, OutboxMail.recipient.in_(recipients), OutboxMail.sent_at.is_not(None)
    ).order_by(OutboxMail.sent_at)
    return session.scalars(statement).first()


def _without_queued(settings: Settings, session: Session, planned: list[PlannedNotice]) -> list[PlannedNotice]:
    """Drop recipients that already have their notice in the outbox, then notices left with none."""
    keys = [settings.scoped(item.recipient_key(address)) for item in planned for address in item.recipients]
    queued = set(session.scalars(select(OutboxMail.notice_key).where(OutboxMail.notice_key.in_(keys))))

    kept = []
    for item in planned:
        recipients = tuple(address for address in item.recipients
                           if settings.scoped(item.recipient_key(address)) not in queued)
        if recipients:
            kept.append(PlannedNotice(item.kind, item.unit, item.week, recipients, item.notice))
        else:
            logger.debug("notice %s: already in the outbox", item.key)
    return kept


# --- the admin's digest ------------------------------------------------------------------------


def _plan_digest(settings: Settings, session: Session, calendar: Campaign, week: int,
                 now: dt.datetime) -> PlannedNotice:
    recipients = settings.admin_recipients
    return PlannedNotice(ScheduledNotice.DIGEST, None, week, tuple(recipients),
                         build_digest(settings, session, week, now))


def build_digest(settings: Settings, session: Session, week: int, now: dt.datetime) -> DigestNotice:
    """Return the admin's digest of ``week`` as known at ``now``."""
    calendar = settings.campaign.calendar()
    statuses = week_status(settings, session, week, now)
    accepted = accepted_reports(settings, session, now)
    window_start = calendar.deadline(week) - _WEEK

    return DigestNotice(
        week=week,
        deadline=calendar.deadline(week),
        as_of=now,
        on_time=[_reported(item) for item in statuses if item.state is ReportState.ON_TIME],
        late=[_reported(item) for item in statuses if item.state is ReportState.LATE],
        returned=[ReturnedUnit(item.unit.name, item.submission.received_at, violations_of(item.submission))
                  for item in statuses if item.state is ReportState.RETURNED],
        missing=[item.unit.name for item in statuses if item.state is ReportState.MISSING],
        week_totals=_sum_columns([item for item in accepted if item.week == week], COLUMNS),
        campaign_totals=_sum_columns([item for item in accepted if item.week <= week], _CAMPAIGN_SUMMED),
        findings=findings_of(settings, session, accepted, [week]),
        held_mails=_held_mails(session, settings.mailbox.key, window_start, now),
        failed_mails=[FailedMail(mail.recipient, mail.subject, mail.last_error or "", mail.next_attempt_at)
                      for mail in repository.failed_outbox(session, window_start, settings.mailbox.key)],
        bouncing=_bouncing(settings, session),
        one_off=one_off_status(settings, session, now),
        campaign_name=settings.campaign.name,
        tz=settings.campaign.timezone,
    )


def _bouncing(settings: Settings, session: Session) -> list[BouncingRecipient]:
    """Return the bouncing addresses of the mailbox's units, by address."""
    directory = settings.unit_directory()
    bouncing = []
    for record in sorted(repository.bouncing_now(session).values(), key=lambda item: item.address):
        unit = directory.by_email(record.address)
        if unit is not None:
            bouncing.append(BouncingRecipient(record.address, unit.name, record.last_seen_at, record.reason))
    return bouncing


def _reported(status: UnitStatus) -> ReportedUnit:
    return ReportedUnit(status.unit.name, status.submission.received_at)


def accepted_reports(settings: Settings, session: Session, now: dt.datetime) -> list[Submission]:
    """Return the accepted reports of the mailbox's units received by ``now``, by unit name and week."""
    statement = (
        select(Submission).join(Submission.unit)
        .where(Submission.status == SubmissionStatus.ACCEPTED, Submission.received_at <= now,
               Unit.name.in_([unit.name for unit in settings.units]))
        .order_by(Unit.name, Submission.week)
    )
    return list(session.scalars(statement))


def _totals(submission: Submission) -> dict[int, int]:
    totals = dict.fromkeys(COLUMNS, 0)
    for row in submission.rows:
        for column, value in row.values().items():
            totals[column] += value or 0
    return totals


def _sum_columns(submissions: list[Submission], columns: Iterable[int]) -> dict[int, int]:
    sums = dict.fromkeys(columns, 0)
    for submission in submissions:
        totals = _totals(submission)
        for column in sums:
            sums[column] += totals[column]
    return sums


def findings_of(settings: Settings, session: Session, accepted: list[Submission],
                weeks: Iterable[int]) -> list[UnitFinding]:
    """Return the 核实性 findings of the accepted reports of ``weeks``, marked when explained.

    ``accepted`` contains every accepted report known at the moment, since each week is compared
    with the unit's latest earlier one.
    """
    calendar = settings.campaign.calendar()
    villages = {unit.name: unit.villages for unit in settings.units}
    explained = repository.explained_findings(session)
    by_unit: dict[str, list[tuple[Submission, WeekTotals]]] = defaultdict(list)
    for submission in accepted:
        by_unit[submission.unit.name].append((submission, WeekTotals(submission.week, _totals(submission))))

    findings = []
    for week in weeks:
        for unit, reports in by_unit.items():
            current = next(((item, totals) for item, totals in reports if totals.week == week), None)
            if current is None:
                continue
            submission, totals = current
            previous = previous_accepted([totals for _, totals in reports], week)
            for finding in check_consistency(totals, previous, calendar, villages.get(unit)):
                key = (submission.id, str(finding.check))
                findings.append(UnitFinding(unit, week, finding, explained=key in explained,
                                            submission_id=submission.id, note=explained.get(key, "")))
    return findings


def _held_mails(session: Session, mailbox: str, since: dt.datetime, now: dt.datetime) -> list[HeldMail]:
    statement = (
        select(Message)
        .where(Message.mailbox == mailbox,
               Message.outcome.in_([MessageOutcome.HELD, MessageOutcome.UNREADABLE]),
               Message.received_at > since, Message.received_at <= now)
        .order_by(Message.received_at, Message.id)
    )
    return [HeldMail(mail.internal_date or mail.received_at, mail.sender or "", mail.subject or "",
                     mail.error or _OUTCOME_REASONS[mail.outcome])
            for mail in session.scalars(statement)]


_OUTCOME_REASONS = {MessageOutcome.HELD: "待人工核对", MessageOutcome.UNREADABLE: "附件无法读取"}


# --- terminal text -----------------------------------------------------------------------------


def default_week(calendar: Campaign, now: dt.datetime) -> int | None:
    """Return the latest reporting week whose deadline passed at ``now``, else the one due next."""
    return calendar.week_closed_before(now) or calendar.week_due_after(now)


def format_status(settings: Settings, statuses: list[UnitStatus], week: int) -> str:
    """Return the week's status as a terminal table in Chinese."""
    calendar = settings.campaign.calendar()
    tz = settings.campaign.timezone
    title = f"第{week}周，截止时间 {format_datetime(calendar.deadline(week), tz)}"
    if not statuses:
        reason = "本周停报，无需报送。" if week in calendar.skipped_weeks else "本周没有需要报送的单位。"
        return f"{title}\n{reason}"

    rows = [("单位", "状态", "收到时间", "不符合的规则")]
    for item in statuses:
        received = _chinese_time(item.submission.received_at, tz) if item.submission else "—"
        rules = _rules_text(item.submission) if item.state is ReportState.RETURNED else ""
        rows.append((item.unit.name, STATE_LABELS[item.state], received, rules or "—"))
    return f"{title}\n{_table(rows)}"


def _rules_text(submission: Submission) -> str:
    """Return each rule the report broke once, as ``R1（6栏=9+11+13+15+17+19）``."""
    rules = dict.fromkeys(RuleId(record.rule) for record in submission.violations)
    return "；".join(f"{rule}（{RULES[rule].printed}）" for rule in rules)


def format_plan(settings: Settings, planned: list[PlannedNotice]) -> str:
    """Return one table row per recipient of each planned notice: week, kind, unit, address, subject."""
    if not planned:
        return "当前没有需要发送的通知。"
    rows = [("周次或事项", "类型", "单位", "收件人", "主题")]
    for item in planned:
        subject = render_notice(item.notice, settings.template_dir, signature=settings.smtp.from_name).subject
        about = f"第{item.week}周" if item.week is not None else item.notice.deadline_name.document
        label = "汇总" if item.kind is ScheduledNotice.DIGEST and item.week is None else _KIND_LABELS[item.kind]
        for recipient in item.recipients:
            rows.append((about, label, item.unit or "管理员", recipient, subject))
    return _table(rows)


def format_findings(findings: list[UnitFinding]) -> str:
    """Return the 核实性 findings as a terminal table: report number, unit, week, check, state, text."""
    if not findings:
        return "没有需要核实的数据。"
    rows = [("报表编号", "单位", "周次", "检查项", "状态", "内容", "说明")]
    for item in findings:
        state = "已说明" if item.explained else "待核实"
        rows.append((f"#{item.submission_id}", item.unit, f"第{item.week}周", str(item.finding.check), state,
                     item.finding.summary, item.note or "—"))
    return _table(rows)


_KIND_LABELS = {ScheduledNotice.REMINDER: "截止前提醒", ScheduledNotice.OVERDUE: "逾期通知",
                ScheduledNotice.OVERDUE_2: "第二次逾期通知", ScheduledNotice.DIGEST: "每周汇总"}


def _chinese_time(moment: dt.datetime, tz) -> str:
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _table(rows: list[tuple[str, ...]]) -> str:
    """Lay out ``rows`` in columns; Chinese characters take two terminal cells (UAX #11)."""
    widths = [max(_width(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
