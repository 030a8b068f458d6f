"""Planning scheduled notices from the database at a fixed moment, on SQLite and PostgreSQL.

Week 3 of the test campaign is due on Friday 2023年12月22日 18:00 Beijing time. By then 水定镇
reported on time, 清水河镇 reports late at 19:30, 芦草沟镇 was returned, 惠远镇 sent nothing.
Week 8 is skipped.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from ingest.calendar import ScheduledNotice
from ingest.table import (
    Cell,
    CheckedReport,
    ReportHeader,
    ReportRow,
    RuleId,
    Violation,
    WeeklyTable,
)
from notify.render import render_notice
from service.config import Settings, load_settings
from service.notices import ReportState, plan_notices, week_status
from service.replies import queue_notices
from store import repository
from store.models import MessageOutcome
from store.session import Database

BEIJING = dt.timezone(dt.timedelta(hours=8))
ADMIN = "kexie-admin@example.test"
COUNTY = "hckexie-county@example.test"

# name, address; every address is fictitious and never contacted.
UNITS = (
    ("水定镇", "shuiding_kx@example.test"),
    ("清水河镇", "qingshuihe_kx@example.test"),
    ("芦草沟镇", "lucaogou_kx@example.test"),
    ("惠远镇", "huiyuan_kx@example.test"),
)

VALID_ROW = {2: 1, 3: 12, 4: 40, 5: 900, 6: 6, 7: 150, 8: 20, 9: 1, 10: 30, 11: 1, 12: 30,
             13: 1, 14: 30, 15: 1, 16: 20, 17: 1, 18: 20, 19: 1, 20: 20}
R1_VIOLATION = Violation(
    rule=RuleId.R1, row=8, cell="Sheet1!F8", columns=(6, 9, 11, 13, 15, 17, 19),
    found={6: 7, 9: 1}, expected="应等于6，即9+11+13+15+17+19之和",
)


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2023) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def config_text(database_url: str) -> str:
    units = "\n".join(f'[[units]]\nname = "{name}"\nemails = ["{email}"]\n' for name, email in UNITS)
    return f"""
[mailbox]
host = "127.0.0.1"
port = 1143
security = "none"
username = "{COUNTY}"
password = "x"

[smtp]
host = "127.0.0.1"
port = 1025
security = "none"
from = "{COUNTY}"
from_name = "霍城县科协"

[database]
url = "{database_url}"

[campaign]
name = "科技之冬"
first_deadline = 2023-12-08T18:00:00
last_deadline = 2024-03-15T18:00:00
timezone = "Asia/Shanghai"
skipped_weeks = [8]

[admin]
emails = ["{ADMIN}"]
name = "贾老师"
phone = "0999-3021234"

{units}"""


def write_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(database_url), encoding="utf-8")
    return path


def make_report(violations: list[Violation] | None = None) -> CheckedReport:
    cells = {column: Cell(value, f"Sheet1!R8C{column}") for column, value in VALID_ROW.items()}
    row = ReportRow(index=8, ref="Sheet1!8", cells=cells, remark="")
    header = ReportHeader(unit_text="", reporter="李明", phone="138****0001",
                          fill_date=dt.date(2023, 12, 22), fill_date_text="2023年12月22日")
    table = WeeklyTable(source="Sheet1", header=header, rows=[row])
    return CheckedReport(table=table, values=[dict(VALID_ROW)], violations=violations or [])


def submit(database: Database, uid: int, unit: str, received_at: dt.datetime, *, week: int = 3,
           late: bool = False, violations: list[Violation] | None = None) -> None:
    with database.session() as session:
        units = repository.sync_units(session, [(name, []) for name, _ in UNITS])
        message = repository.archive_message(
            session, mailbox="INBOX", uid_validity=1, uid=uid, raw=f"mail {uid}".encode(),
            internal_date=received_at, received_at=received_at,
            message_id_header=f"<m{uid}@example.test>", sender=dict(UNITS)[unit], subject="周统计表",
        )
        repository.record_submission(
            session, message=message, unit=units[unit], week=week, late=late,
            file_name="附件二.xlsx", file_sha256=f"{uid:064x}", report=make_report(violations),
            received_at=received_at,
        )


def populate_week_3(database: Database) -> None:
    submit(database, 1, "水定镇", at(22, 10))
    submit(database, 2, "清水河镇", at(22, 19, 30), late=True)
    submit(database, 3, "芦草沟镇", at(22, 11), violations=[R1_VIOLATION])


@pytest.fixture
def settings(tmp_path, database, database_url) -> Settings:
    populate_week_3(database)
    return load_settings(write_config(tmp_path, database_url))


def plan(database: Database, settings: Settings, now: dt.datetime):
    with database.session() as session:
        return plan_notices(settings, session, now)


def summary(planned, week: int = 3) -> set[tuple[str, str | None]]:
    """The kind and unit of each planned notice about ``week``; earlier weeks' late ones are left out."""
    return {(str(item.kind), item.unit) for item in planned if item.week == week}


# --- status --------------------------------------------------------------------------------------


def states(database: Database, settings: Settings, now: dt.datetime) -> dict[str, ReportState]:
    with database.session() as session:
        return {item.unit.name: item.state for item in week_status(settings, session, 3, now)}


def test_status_after_late_report(database, settings):
    assert states(database, settings, at(22, 20)) == {
        "水定镇": ReportState.ON_TIME, "清水河镇": ReportState.LATE,
        "芦草沟镇": ReportState.RETURNED, "惠远镇": ReportState.MISSING,
    }


def test_status_ignores_reports_after_now(database, settings):
    assert states(database, settings, at(22, 19))["清水河镇"] is ReportState.MISSING


def test_corrected_report_counts_as_accepted(database, settings):
    submit(database, 4, "芦草沟镇", at(22, 15))
    assert states(database, settings, at(22, 20))["芦草沟镇"] is ReportState.ON_TIME


# --- reminders and overdue notices ---------------------------------------------------------------


def test_reminder_before_deadline(database, settings):
    planned = plan(database, settings, at(22, 12, 30))
    assert summary(planned) == {("reminder", "清水河镇"), ("reminder", "芦草沟镇"), ("reminder", "惠远镇")}


def test_nothing_before_reminder_time(database, settings):
    assert summary(plan(database, settings, at(22, 11, 59))) == set()


def test_previous_week_second_overdue_still_useful(database, settings):
    planned = plan(database, settings, at(22, 12, 30))
    assert ("overdue-2", "惠远镇") in summary(planned, week=2)


def test_reminder_repeats_violations(database, settings):
    planned = {item.unit: item for item in plan(database, settings, at(22, 12, 30))}
    assert planned["芦草沟镇"].notice.returned.violations == [R1_VIOLATION]


def test_reminder_to_unit_address(database, settings):
    planned = {item.unit: item for item in plan(database, settings, at(22, 12, 30))}
    assert planned["惠远镇"].recipients == ("huiyuan_kx@example.test",)


def test_reminder_key(database, settings):
    planned = {item.unit: item for item in plan(database, settings, at(22, 12, 30))}
    assert planned["惠远镇"].key == "reminder; week=3; unit=惠远镇"


def test_no_reminder_after_deadline(database, settings):
    planned = plan(database, settings, at(22, 18, 1))
    assert summary(planned) == set()


def test_overdue_after_deadline(database, settings):
    planned = plan(database, settings, at(22, 18, 45))
    assert summary(planned) == {("overdue", "清水河镇"), ("overdue", "芦草沟镇"), ("overdue", "惠远镇")}


def test_no_overdue_once_late_report_accepted(database, settings):
    planned = plan(database, settings, at(22, 19, 45))
    assert ("overdue", "清水河镇") not in summary(planned)


def test_overdue_says_returned(database, settings):
    planned = {item.unit: item for item in plan(database, settings, at(22, 18, 45))}
    assert planned["芦草沟镇"].notice.returned is not None


def test_second_overdue_replaces_first(database, settings):
    planned = plan(database, settings, at(25, 10, 30))
    assert summary(planned) == {("overdue-2", "芦草沟镇"), ("overdue-2", "惠远镇"), ("digest", None)}


def test_queued_notice_left_out(database, settings):
    with database.session() as session:
        repository.enqueue_mail(session, message=None, kind="overdue; week=3",
                                recipient="huiyuan_kx@example.test", subject="逾期未报通知",
                                mail_message_id="<o1@example.test>", raw=b"x", now=at(22, 18, 30),
                                notice_key="overdue; week=3; to=huiyuan_kx@example.test")
    planned = plan(database, settings, at(22, 18, 45))
    assert ("overdue", "惠远镇") not in summary(planned)


def test_queued_other_week_not_counted(database, settings):
    with database.session() as session:
        repository.enqueue_mail(session, message=None, kind="overdue; week=2",
                                recipient="huiyuan_kx@example.test", subject="逾期未报通知",
                                mail_message_id="<o2@example.test>", raw=b"x", now=at(15, 18, 30),
                                notice_key="overdue; week=2; to=huiyuan_kx@example.test")
    planned = plan(database, settings, at(22, 18, 45))
    assert ("overdue", "惠远镇") in summary(planned)


# --- the digest ----------------------------------------------------------------------------------


def digest(database: Database, settings: Settings, now: dt.datetime):
    return next(item for item in plan(database, settings, now) if item.kind is ScheduledNotice.DIGEST)


def test_digest_to_admin(database, settings):
    assert digest(database, settings, at(22, 19, 5)).recipients == (ADMIN,)


def test_digest_missing(database, settings):
    assert digest(database, settings, at(22, 19, 5)).notice.missing == ["清水河镇", "惠远镇"]


def test_digest_counts_late(database, settings):
    late = digest(database, settings, at(22, 20)).notice.late
    assert [item.unit for item in late] == ["清水河镇"]


def test_digest_returned(database, settings):
    returned = digest(database, settings, at(22, 20)).notice.returned
    assert [item.unit for item in returned] == ["芦草沟镇"]


def test_digest_week_totals(database, settings):
    totals = digest(database, settings, at(22, 20)).notice.week_totals
    assert totals[6] == 12


def test_digest_key(database, settings):
    assert digest(database, settings, at(22, 20)).key == "digest; week=3"


def test_digest_queued_left_out(database, settings):
    with database.session() as session:
        repository.enqueue_mail(session, message=None, kind="digest; week=3", recipient=ADMIN,
                                subject="每周汇总", mail_message_id="<d3@example.test>", raw=b"x",
                                now=at(22, 19), notice_key=f"digest; week=3; to={ADMIN.lower()}")
    assert summary(plan(database, settings, at(22, 20))) == {("overdue", "芦草沟镇"), ("overdue", "惠远镇")}


# --- a skipped week ------------------------------------------------------------------------------


def test_skipped_week_has_no_reminder(database, settings):
    assert summary(plan(database, settings, at(26, 12, 30, month=1, year=2024)), week=8) == set()


def test_skipped_week_has_no_overdue(database, settings):
    assert plan(database, settings, at(26, 19, 30, month=1, year=2024)) == []


def test_skipped_week_has_no_second_overdue(database, settings):
    assert plan(database, settings, at(29, 10, 30, month=1, year=2024)) == []


def test_skipped_week_status_empty(database, settings):
    with database.session() as session:
        assert week_status(settings, session, 8, at(26, 19, month=1, year=2024)) == []


def test_digest_running_total_finding(database, settings):
    submit(database, 5, "水定镇", at(15, 10), week=2)
    findings = digest(database, settings, at(22, 20)).notice.findings
    assert [(item.unit, str(item.finding.check)) for item in findings] == [("水定镇", "C1"), ("水定镇", "C2")]


def test_digest_campaign_totals(database, settings):
    submit(database, 5, "水定镇", at(15, 10), week=2)
    totals = digest(database, settings, at(22, 20)).notice.campaign_totals
    assert totals[6] == 18


def test_second_overdue_first_sent_at(database, settings):
    with database.session() as session:
        mail = repository.enqueue_mail(session, message=None, kind="overdue; week=3",
                                       recipient="huiyuan_kx@example.test", subject="逾期未报通知",
                                       mail_message_id="<o3@example.test>", raw=b"x", now=at(22, 18, 30))
        repository.mark_sent(session, mail, at(22, 18, 31))
    planned = {item.unit: item for item in plan(database, settings, at(25, 10, 30)) if item.week == 3}
    assert planned["惠远镇"].notice.first_sent_at == at(22, 18, 31)


@pytest.mark.parametrize("moment", [at(22, 12, 30), at(22, 18, 45), at(25, 10, 30)],
                         ids=["reminder", "overdue", "overdue-2"])
def test_planned_notices_render(database, settings, moment):
    submit(database, 5, "水定镇", at(15, 10), week=2)
    for item in plan(database, settings, moment):
        rendered = render_notice(item.notice, signature="霍城县科协")
        assert item.unit is None or item.unit in rendered.text


def test_digest_lists_held_mail(database, settings):
    with database.session() as session:
        message = repository.archive_message(
            session, mailbox=settings.mailbox.key, uid_validity=1, uid=9, raw=b"mail 9", internal_date=at(21, 9),
            received_at=at(21, 9), message_id_header="<m9@example.test>",
            sender="stranger@example.test", subject="统计表",
        )
        repository.mark_processed(session, message, MessageOutcome.HELD, at(21, 9), error="发件地址未登记")
    held = digest(database, settings, at(22, 20)).notice.held_mails
    assert [(item.sender, item.reason) for item in held] == [("stranger@example.test", "发件地址未登记")]


# --- the outbox keeps each notice once -----------------------------------------------------------


def test_same_notice_key_refused(database):
    # GIVEN an overdue notice queued for one address
    with database.session() as session:
        repository.enqueue_mail(session, message=None, kind="overdue; week=3", recipient=ADMIN,
                                subject="逾期未报通知", mail_message_id="<k1@example.test>", raw=b"x",
                                now=at(22, 18, 30), notice_key=f"overdue; week=3; to={ADMIN}")

    # WHEN a second planner queues the same notice to the same address
    # THEN the database refuses the second row
    with pytest.raises(IntegrityError), database.session() as session:
        repository.enqueue_mail(session, message=None, kind="overdue; week=3", recipient=ADMIN,
                                subject="逾期未报通知", mail_message_id="<k2@example.test>", raw=b"x",
                                now=at(22, 18, 31), notice_key=f"overdue; week=3; to={ADMIN}")


def test_queue_notices_twice_queues_once(database, settings):
    with database.session() as session:
        first = queue_notices(session, settings, at(22, 18, 45))
    with database.session() as session:
        second = queue_notices(session, settings, at(22, 18, 50))

    assert first > 0
    assert second == 0


# --- addresses that bounce -----------------------------------------------------------------------


def bounce(database: Database, address: str, moment: dt.datetime) -> None:
    with database.session() as session:
        repository.record_bounce(session, address, "5.1.1 550 User not found", moment)


def test_bouncing_address_not_chased(database, settings):
    bounce(database, "huiyuan_kx@example.test", at(21, 9))

    planned = plan(database, settings, at(22, 12, 30))

    assert ("reminder", "惠远镇") not in summary(planned)
    assert ("reminder", "清水河镇") in summary(planned)


def test_mail_after_bounce_clears_it(database, settings):
    bounce(database, "huiyuan_kx@example.test", at(20, 9))
    submit(database, 7, "惠远镇", at(21, 10), week=2)

    planned = plan(database, settings, at(22, 12, 30))

    assert ("reminder", "惠远镇") in summary(planned)


def test_digest_lists_bouncing_unit(database, settings):
    bounce(database, "huiyuan_kx@example.test", at(21, 9))

    listed = digest(database, settings, at(22, 20)).notice.bouncing

    assert [(item.address, item.unit) for item in listed] == [("huiyuan_kx@example.test", "惠远镇")]
