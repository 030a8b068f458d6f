"""The pure decision for one mail: outcome, unit, week, lateness, reply or not."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest.calendar import Campaign
from ingest.message import parse_message
from ingest.pipeline import Context, WeekSource, decide, failed_decision
from ingest.table import RuleId
from ingest.units import UnitDirectory, UnitSettings
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx
from store.models import MessageOutcome

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = Campaign(
    first_deadline=dt.datetime(2023, 12, 8, 18, 0, tzinfo=SHANGHAI),
    last_deadline=dt.datetime(2024, 3, 15, 18, 0, tzinfo=SHANGHAI),
    timezone=SHANGHAI,
    skipped_weeks=frozenset({10}),
)
UNITS = UnitDirectory([
    UnitSettings("水定镇", (), ("shuiding_kx@163.com",)),
    UnitSettings("芦草沟镇", ("芦草沟镇人民政府",), ("lucaogou_kx@126.com",)),
    UnitSettings("清水河镇", (), ("qingshuihe_kx@163.com",)),
])
COUNTY = "hckexie-county@example.test"


def context(received: dt.datetime) -> Context:
    return Context(units=UNITS, campaign=CAMPAIGN, own_addresses=frozenset({COUNTY}), received_at=received)


def on(month: int, day: int, hour: int = 16, minute: int = 0) -> dt.datetime:
    year = 2023 if month == 12 else 2024
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def mail(*, subject="水定镇第3周科技之冬周统计表", attachment=None, filename="水定镇.xlsx",
         sender="shuiding_kx@163.com", style=MailStyle.WEBMAIL_163):
    if attachment is None and style not in (MailStyle.AUTOREPLY, MailStyle.NO_ATTACHMENT, MailStyle.BOUNCE):
        attachment = build_xlsx([SAMPLE_ROWS["valid"]])
    return parse_message(build_mail(style, sender=sender, subject=subject, attachment=attachment,
                                    filename=filename, to=COUNTY))


def test_valid_report_accepted():
    decision = decide(mail(), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.ACCEPTED
    assert (decision.reports[0].unit, decision.reports[0].week) == ("水定镇", 3)


def test_week_subject_beats_fill_date():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="2023年12月15日")
    decision = decide(mail(attachment=attachment), context(on(12, 22)))
    assert decision.reports[0].week_source == WeekSource.SUBJECT
    assert decision.reports[0].week == 3


def test_week_from_file_name():
    decision = decide(mail(subject="水定镇周统计表", filename="水定镇第五周.xlsx"), context(on(12, 22)))
    assert (decision.reports[0].week, decision.reports[0].week_source) == (5, WeekSource.FILE_NAME)


def test_week_from_fill_date():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="2023.12.29")
    decision = decide(mail(subject="周统计表", attachment=attachment), context(on(12, 22)))
    assert (decision.reports[0].week, decision.reports[0].week_source) == (4, WeekSource.FILL_DATE)


def test_week_from_arrival_fills_missed_week():
    """A report known only by its arrival after a deadline fills the week just closed."""
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="")
    decision = decide(mail(subject="周统计表", attachment=attachment), context(on(1, 3)))
    assert (decision.reports[0].week, decision.reports[0].week_source) == (4, WeekSource.RECEIVED)
    assert decision.reports[0].late is True


def test_week_from_arrival_after_reported_week():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="")
    reported = dataclasses.replace(context(on(1, 3)), accepted_weeks={"水定镇": frozenset({4})})
    decision = decide(mail(subject="周统计表", attachment=attachment), reported)
    assert (decision.reports[0].week, decision.reports[0].late) == (5, False)


def test_week_from_arrival_not_before_unit_joins():
    """A unit that joins in week 5 has no week 4 for its first unlabelled report to fill."""
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="")
    joining = UnitDirectory([UnitSettings("水定镇", (), ("shuiding_kx@163.com",), from_week=5)])
    joined = dataclasses.replace(context(on(1, 5, 9)), units=joining)
    decision = decide(mail(subject="周统计表", attachment=attachment), joined)
    assert (decision.reports[0].week, decision.reports[0].late) == (5, False)


def test_skipped_week_in_subject_falls_through():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], date_text="2024年2月16日")
    decision = decide(mail(subject="第10周统计表", attachment=attachment), context(on(2, 16)))
    assert decision.reports[0].week == 11


def test_after_deadline_is_late():
    decision = decide(mail(), context(on(12, 22, 18, 1)))
    assert decision.reports[0].late is True


def test_at_deadline_is_on_time():
    decision = decide(mail(), context(on(12, 22, 18, 0)))
    assert decision.reports[0].late is False


def test_first_week_allows_equal_totals():
    attachment = build_xlsx([SAMPLE_ROWS["r3_r4_broken"]])
    decision = decide(mail(subject="第1周统计表", attachment=attachment), context(on(12, 8)))
    assert decision.outcome == MessageOutcome.ACCEPTED


def test_later_week_rejects_equal_totals():
    attachment = build_xlsx([SAMPLE_ROWS["r3_r4_broken"]])
    decision = decide(mail(subject="第2周统计表", attachment=attachment), context(on(12, 15)))
    rules = [violation.rule for violation in decision.reports[0].report.violations]
    assert rules == [RuleId.R3, RuleId.R4]


def test_alias_in_table_matches_sender():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]], unit="芦草沟镇人民政府")
    decision = decide(mail(sender="lucaogou_kx@126.com", attachment=attachment), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.ACCEPTED


def test_table_of_other_unit_held():
    attachment = build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇")
    decision = decide(mail(attachment=attachment, filename="表.docx"), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.HELD
    assert "清水河镇" in decision.held_reason


def test_unknown_sender_held_with_reply():
    decision = decide(mail(sender="stranger@example.test"), context(on(12, 22)))
    assert (decision.outcome, decision.reply) == (MessageOutcome.HELD, True)


def test_unknown_sender_without_table_not_answered():
    decision = decide(mail(sender="stranger@example.test", style=MailStyle.NO_ATTACHMENT), context(on(12, 22)))
    assert (decision.outcome, decision.reply) == (MessageOutcome.HELD, False)


@pytest.mark.parametrize("style", [MailStyle.AUTOREPLY, MailStyle.BOUNCE])
def test_automatic_mail_ignored(style):
    decision = decide(mail(style=style), context(on(12, 22)))
    assert (decision.outcome, decision.reply) == (MessageOutcome.IGNORED, False)


def test_own_address_ignored():
    decision = decide(mail(sender=COUNTY), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.IGNORED


def test_missing_attachment_unreadable():
    decision = decide(mail(style=MailStyle.NO_ATTACHMENT), context(on(12, 22)))
    assert (decision.outcome, decision.problems, decision.reply) == (MessageOutcome.UNREADABLE, [], True)


def test_legacy_xls_named_in_problem():
    attachment = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    decision = decide(mail(attachment=attachment, filename="水定镇.xls"), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.UNREADABLE
    assert ".xlsx" in decision.problems[0].reason


def test_form_without_table_unreadable():
    attachment = build_xlsx([SAMPLE_ROWS["valid"]])[:2000]
    decision = decide(mail(attachment=attachment), context(on(12, 22)))
    assert decision.outcome == MessageOutcome.UNREADABLE


def test_failed_decision_answers_known_unit():
    decision = failed_decision(mail(), UNITS)
    assert (decision.outcome, decision.unit, decision.reply) == (MessageOutcome.FAILED, "水定镇", True)
