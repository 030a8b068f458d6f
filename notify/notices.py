"""The content of each reply to a township, as plain data; :mod:`notify.render` turns it into text.

Every notice has a ``kind`` naming its templates and the ``X-Zhoubao-Notice`` header value.
Times are aware datetimes; ``tz`` is the zone they are shown in (the campaign's timezone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar
from zoneinfo import ZoneInfo

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


Notice = ReceiptNotice | RejectionNotice | UnreadableNotice | HeldNotice | DemandReceiptNotice
