"""The content of each notice, as plain data; :mod:`notify.render` turns it into text.

Replies to a township answer its mail. Reminders and overdue notices chase a unit before and after
a deadline, the digest tells the county admin how a week went, and an alert carries an operational
message to the admin. Every notice has a ``kind`` naming its templates and the
``X-Zhoubao-Notice`` header value. Times are aware datetimes; ``tz`` is the zone they are shown in
(the campaign's timezone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar
from zoneinfo import ZoneInfo

from ingest.consistency import Finding
from ingest.demand import DemandRow
from ingest.table import Violation

BEIJING = ZoneInfo("Asia/Shanghai")


class NoticeKind(StrEnum):
    """Reply kinds; the value names the templates and goes into the X-Zhoubao-Notice header."""

    RECEIPT = "receipt"
    REJECTION = "rejection"
    UNREADABLE = "unreadable"
    HELD = "held"
    DEMAND_RECEIPT = "demand-receipt"
    SUMMARY_RECEIPT = "summary-receipt"
    REMINDER = "reminder"
    OVERDUE = "overdue"
    OVERDUE_2 = "overdue-2"
    DIGEST = "digest"
    ALERT = "alert"


@dataclass(frozen=True, kw_only=True)
class ReportNotice:
    """Fields shared by the replies about one checked weekly report.

    ``campaign_name`` is the short name used in subjects, such as ``科技之冬``. ``source`` is the
    worksheet or Word table the report was read from, such as ``Sheet1`` or ``表格1``.
    ``duplicate`` is True when the same file had already been received for this unit and week.
    """

    unit: str
    week: int
    deadline: dt.datetime
    late: bool
    received_at: dt.datetime
    file_name: str
    source: str = ""
    reporter: str | None = None
    campaign_name: str = "科技之冬"
    duplicate: bool = False
    tz: ZoneInfo = BEIJING
    # Other attachments of the same mail that held no weekly table and were not read further.
    ignored_files: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ReceiptNotice(ReportNotice):
    """回执: the report passed every rule and was recorded.

    ``rows`` contains the values of each data row and ``totals`` their sums, by column number.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.RECEIPT

    rows: list[dict[int, int]] = field(default_factory=list)
    totals: dict[int, int] = field(default_factory=dict)
    # 核实性 findings against the unit's previous week or its villages: the report is accepted, and
    # the clerk is asked to confirm or resend.
    findings: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class RejectionNotice(ReportNotice):
    """退回通知: the report broke one or more rules and must be corrected and sent again.

    The reply prints each violation with the rule texts of :data:`ingest.rules.RULES`.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.REJECTION

    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class UnreadableNotice:
    """退回通知 for a mail without a readable 附件二 table.

    ``attachments`` pairs each file name with the Chinese reason it could not be read; it is
    empty when nothing was attached. ``reason`` is an optional sentence about the whole mail.
    ``unit`` is the sender's unit when its address is known.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.UNREADABLE

    received_subject: str
    received_at: dt.datetime
    attachments: list[tuple[str, str]] = field(default_factory=list)
    reason: str | None = None
    unit: str | None = None
    tz: ZoneInfo = BEIJING


@dataclass(frozen=True, kw_only=True)
class HeldNotice:
    """回执 for a table received but held for the county's review before it is recorded.

    ``reason`` is the Chinese sentence saying why, such as an unregistered sender address or a
    填报乡镇 naming another unit. ``unit_text`` is the 填报乡镇 as written in the table.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.HELD

    reason: str
    unit_text: str | None
    sender: str
    received_subject: str = ""
    received_at: dt.datetime | None = None
    file_names: list[str] = field(default_factory=list)
    tz: ZoneInfo = BEIJING


# Maximum length of an activity content quoted in a demand receipt. A longer one is cut and ends in "……".
BRIEF_LENGTH = 40


@dataclass(frozen=True, kw_only=True)
class DemandReceiptNotice:
    """回执 for a 附件1 demand form (活动需求征集表) that was recorded.

    ``rows`` are the activities read from the form. ``replaced`` is True when the form replaced
    the unit's earlier one. ``superseded`` is True when a form the unit sent later was recorded
    first, so this one was only filed. ``duplicate`` is True when the same file had already been
    received.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.DEMAND_RECEIPT

    unit: str
    received_at: dt.datetime
    file_name: str
    source: str = ""
    contact: str | None = None
    phone: str | None = None
    rows: list[DemandRow] = field(default_factory=list)
    replaced: bool = False
    superseded: bool = False
    duplicate: bool = False
    campaign_name: str = "科技之冬"
    tz: ZoneInfo = BEIJING

    def briefs(self) -> list[str]:
        """Return one line per activity: its content on one line, cut after BRIEF_LENGTH characters."""
        return [_brief(row) for row in self.rows]


def _brief(row: DemandRow) -> str:
    text = " ".join(row.content.split())
    if not text:
        return "（未填写活动内容）"
    if len(text) > BRIEF_LENGTH:
        return text[:BRIEF_LENGTH] + "……"
    return text


@dataclass(frozen=True, kw_only=True)
class SummaryReceiptNotice:
    """回执 for 总结材料: the files kept and the download links recorded.

    ``files`` are (name, size in bytes) pairs. ``links`` are download addresses of large
    attachments; the county fetches them, since they expire.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.SUMMARY_RECEIPT

    unit: str
    received_at: dt.datetime
    files: list[tuple[str, int]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    deadline: dt.datetime | None = None
    campaign_name: str = "科技之冬"
    tz: ZoneInfo = BEIJING


# --- reminders and overdue notices ---------------------------------------------------------------


class OneOffDeadline(StrEnum):
    """A deadline of the campaign besides the weekly table; the value goes into X-Zhoubao-Notice."""

    DEMAND_FORM = "demand-form"  # 附件1 活动需求征集表, due before the campaign
    SUMMARY = "summary"  # 总结材料, a written summary with photos, videos and media material

    @property
    def document(self) -> str:
        """The document's name as notices print it, such as ``活动需求征集表（附件1）``."""
        return _ONE_OFF_DOCUMENTS[self]

    @property
    def contents(self) -> str:
        """The sentence describing what the unit sends."""
        return _ONE_OFF_CONTENTS[self]


_ONE_OFF_DOCUMENTS = {
    OneOffDeadline.DEMAND_FORM: "活动需求征集表（附件1）",
    OneOffDeadline.SUMMARY: "总结材料",
}
_ONE_OFF_CONTENTS = {
    OneOffDeadline.DEMAND_FORM: "填好的活动需求征集表（附件1，Word 或 Excel 文件）",
    OneOffDeadline.SUMMARY: "活动开展情况的书面总结，以及活动照片、视频和媒体报道等材料",
}


@dataclass(frozen=True)
class Contact:
    """The county contact that reminders and overdue notices sign with; empty fields are left out."""

    name: str = ""
    phone: str = ""
    office: str = ""

    def __bool__(self) -> bool:
        return bool(self.name or self.phone or self.office)


@dataclass(frozen=True, kw_only=True)
class ReturnedReport:
    """The unit's latest report for the deadline, returned for ``violations`` and not corrected since."""

    received_at: dt.datetime
    file_name: str
    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ChaseNotice:
    """Fields shared by the reminder and the overdue notices to one unit.

    A notice is about either a reporting ``week`` or a one-off ``deadline_name``, never both.
    ``as_of`` is the moment the status is stated at, and its date is the date of the signature.
    ``basis`` is the title of the county's notice that set the deadline, without 《》; when empty,
    the notice refers to the campaign's notice in general words. ``returned`` is set when the unit
    sent a report that was returned and has not sent a corrected one.
    """

    unit: str
    deadline: dt.datetime
    as_of: dt.datetime
    week: int | None = None
    deadline_name: OneOffDeadline | None = None
    returned: ReturnedReport | None = None
    basis: str = ""
    contact: Contact = Contact()
    campaign_name: str = "科技之冬"
    tz: ZoneInfo = BEIJING

    kind: ClassVar[NoticeKind]

    def __post_init__(self) -> None:
        # Callers build notices from the schedule, so a wrong pair is a bug, not user input.
        if (self.week is None) == (self.deadline_name is None):
            raise ValueError("a chase notice needs exactly one of week and deadline_name")

    @property
    def document(self) -> str:
        """The document chased, as the body prints it: ``第3周“科技之冬”周统计表``."""
        if self.deadline_name is not None:
            return f"“{self.campaign_name}”{self.deadline_name.document}"
        return f"第{self.week}周“{self.campaign_name}”周统计表"

    @property
    def subject_document(self) -> str:
        """The document as subjects print it, without quotes: ``第3周科技之冬周统计表``."""
        if self.deadline_name is not None:
            return f"{self.campaign_name}{self.deadline_name.document}"
        return f"第{self.week}周{self.campaign_name}周统计表"

    @property
    def header_kind(self) -> str:
        """The X-Zhoubao-Notice value: ``reminder; week=3`` or ``overdue; deadline=summary``."""
        return _header_kind(self.kind, self.week, self.deadline_name)


def _header_kind(kind: NoticeKind, week: int | None, deadline_name: OneOffDeadline | None) -> str:
    if deadline_name is not None:
        return f"{kind}; deadline={deadline_name}"
    return f"{kind}; week={week}"


@dataclass(frozen=True, kw_only=True)
class ReminderNotice(ChaseNotice):
    """报送提醒 before the deadline, to a unit without an accepted report."""

    kind: ClassVar[NoticeKind] = NoticeKind.REMINDER


@dataclass(frozen=True, kw_only=True)
class OverdueNotice(ChaseNotice):
    """逾期未报通知 after the deadline, to a unit without an accepted report.

    A returned, uncorrected report counts as missing. ``new_deadline`` is the moment by which the
    unit is asked to send the report late. None requests it as soon as possible.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.OVERDUE

    new_deadline: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class SecondOverdueNotice(OverdueNotice):
    """The second overdue notice, some days after the first; ``first_sent_at`` is when that went out."""

    kind: ClassVar[NoticeKind] = NoticeKind.OVERDUE_2

    first_sent_at: dt.datetime | None = None


# --- the admin's digest and alerts -------------------------------------------------------------


@dataclass(frozen=True)
class ReportedUnit:
    """A unit whose report for the week was accepted, and when it arrived."""

    unit: str
    received_at: dt.datetime


@dataclass(frozen=True)
class ReturnedUnit:
    """A unit whose latest report for the week was returned and not corrected."""

    unit: str
    received_at: dt.datetime
    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True)
class UnitFinding:
    """A 核实性 finding (see :mod:`ingest.consistency`) on a unit's accepted report."""

    unit: str
    week: int
    finding: Finding
    explained: bool = False
    # The accepted report the finding is about, for ``zhoubao explain``.
    submission_id: int | None = None
    # The admin's note when marking it explained, such as 已电话核实.
    note: str = ""


@dataclass(frozen=True)
class HeldMail:
    """A mail held for the admin's review: an unknown sender or an unreadable file."""

    received_at: dt.datetime
    sender: str
    subject: str
    reason: str


@dataclass(frozen=True)
class FailedMail:
    """An outgoing mail the SMTP server rejected for good (a 5xx reply)."""

    recipient: str
    subject: str
    error: str
    failed_at: dt.datetime


@dataclass(frozen=True)
class BouncingRecipient:
    """A unit's address that mail bounced from and that has sent nothing since."""

    address: str
    unit: str | None
    bounced_at: dt.datetime
    reason: str


@dataclass(frozen=True)
class OneOffStatus:
    """The units that have and have not sent a one-off document, for a line in the digest."""

    deadline_name: OneOffDeadline
    deadline: dt.datetime
    received: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DigestNotice:
    """每周汇总 for the county admin after a week's deadline.

    Every unit due to report is in exactly one of ``on_time``, ``late``, ``returned`` and
    ``missing``. ``week_totals`` are the county's totals of the week's accepted reports by column
    number. ``campaign_totals`` are the totals of the campaign so far. A column whose sum over
    weeks means nothing (such as 2..5) may be left out, and the digest prints a dash for it.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.DIGEST

    week: int
    deadline: dt.datetime
    as_of: dt.datetime
    on_time: list[ReportedUnit] = field(default_factory=list)
    late: list[ReportedUnit] = field(default_factory=list)
    returned: list[ReturnedUnit] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    week_totals: dict[int, int] = field(default_factory=dict)
    campaign_totals: dict[int, int] = field(default_factory=dict)
    findings: list[UnitFinding] = field(default_factory=list)
    held_mails: list[HeldMail] = field(default_factory=list)
    failed_mails: list[FailedMail] = field(default_factory=list)
    bouncing: list[BouncingRecipient] = field(default_factory=list)
    one_off: list[OneOffStatus] = field(default_factory=list)
    campaign_name: str = "科技之冬"
    tz: ZoneInfo = BEIJING

    @property
    def due_count(self) -> int:
        """The number of units due to report this week."""
        return len(self.on_time) + len(self.late) + len(self.returned) + len(self.missing)

    @property
    def header_kind(self) -> str:
        """The X-Zhoubao-Notice value, such as ``digest; week=3``."""
        return _header_kind(self.kind, self.week, None)


@dataclass(frozen=True, kw_only=True)
class OneOffDigestNotice:
    """汇总 for the admin after a one-off deadline: who sent the document and who did not.

    Its templates are ``one-off-digest.*``; its X-Zhoubao-Notice value is
    ``digest; deadline=summary`` or ``digest; deadline=demand-form``.
    """

    kind: ClassVar[NoticeKind] = NoticeKind.DIGEST
    template: ClassVar[str] = "one-off-digest"

    status: OneOffStatus
    as_of: dt.datetime
    campaign_name: str = "科技之冬"
    tz: ZoneInfo = BEIJING

    @property
    def deadline_name(self) -> OneOffDeadline:
        return self.status.deadline_name

    @property
    def header_kind(self) -> str:
        """The X-Zhoubao-Notice value, such as ``digest; deadline=summary``."""
        return _header_kind(self.kind, None, self.status.deadline_name)


@dataclass(frozen=True, kw_only=True)
class AlertNotice:
    """系统提示 to the admin about the service itself: a ``title`` and paragraphs of ``lines``."""

    kind: ClassVar[NoticeKind] = NoticeKind.ALERT

    title: str
    lines: list[str] = field(default_factory=list)
    as_of: dt.datetime | None = None
    tz: ZoneInfo = BEIJING


Notice = (ReceiptNotice | RejectionNotice | UnreadableNotice | HeldNotice | DemandReceiptNotice
          | SummaryReceiptNotice | OneOffDigestNotice | ReminderNotice | OverdueNotice | SecondOverdueNotice | DigestNotice | AlertNotice)
