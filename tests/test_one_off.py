"""One-off deadlines: the demand form (附件1) and the summary (总结材料) are chased like a week."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.calendar import NoticeSchedule, ScheduledNotice, due_one_off_notices, one_off_moments
from ingest.errors import ConfigError
from ingest.summary import SummaryFile, SummaryPlan
from service.config import load_settings
from notify.render import render_notice
from service.notices import format_plan, plan_notices
from store import repository
from tests.test_notice_planner import ADMIN, UNITS, config_text

BEIJING = dt.timezone(dt.timedelta(hours=8))
DEADLINES = "demand_form_deadline = 2023-12-04T18:00:00\nsummary_deadline = \"2024-03-20 18:00\"\n"


def moment(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture
def settings(tmp_path, database_url):
    text = config_text(database_url).replace("skipped_weeks = [8]\n", "skipped_weeks = [8]\n" + DEADLINES)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def plan(database, settings, now):
    with database.session() as session:
        return plan_notices(settings, session, now)


def one_off_kinds(planned) -> set[tuple[str, str | None]]:
    """The header value and unit of each one-off notice to a unit; digests are left out."""
    return {(item.header_kind, item.unit) for item in planned if item.week is None and item.unit}


def send_summary(database, unit: str, received_at: dt.datetime) -> None:
    with database.session() as session:
        units = repository.sync_units(session, [(name, []) for name, _ in UNITS])
        message = repository.archive_message(
            session, mailbox="INBOX", uid_validity=1, uid=99, raw=b"summary", internal_date=received_at,
            received_at=received_at, message_id_header="<s1@example.test>", sender=dict(UNITS)[unit],
            subject="活动总结材料")
        plan = SummaryPlan(unit, [SummaryFile("总结.docx", 2048, "a" * 64)], [])
        repository.record_summary(session, message=message, unit=units[unit], plan=plan,
                                  received_at=received_at)


# --- the calendar --------------------------------------------------------------------------------


def test_config_reads_both_deadlines(settings):
    assert settings.campaign.one_off == {"demand-form": moment(2023, 12, 4, 18),
                                         "summary": moment(2024, 3, 20, 18)}


def test_one_off_moments_keep_distance_from_deadline(settings):
    calendar = settings.campaign.calendar()
    moments = one_off_moments(calendar, NoticeSchedule(), {"summary": moment(2024, 3, 20, 18)})
    assert [(str(item.kind), item.moment) for item in moments] == [
        ("reminder", moment(2024, 3, 20, 12)),
        ("overdue", moment(2024, 3, 20, 18, 30)),
        ("digest", moment(2024, 3, 20, 19)),
        ("overdue-2", moment(2024, 3, 23, 10)),
    ]


def test_one_off_reminder_stale_after_deadline(settings):
    calendar = settings.campaign.calendar()
    due = due_one_off_notices(calendar, NoticeSchedule(), {"summary": moment(2024, 3, 20, 18)},
                              moment(2024, 3, 20, 18, 1))
    assert ScheduledNotice.REMINDER not in {item.kind for item in due}


# --- the planner ---------------------------------------------------------------------------------


def test_demand_form_reminder_to_every_unit(database, settings):
    planned = plan(database, settings, moment(2023, 12, 4, 12, 30))
    assert one_off_kinds(planned) == {("reminder; deadline=demand-form", name) for name, _ in UNITS}


def test_summary_overdue_skips_unit_that_sent(database, settings):
    send_summary(database, "水定镇", moment(2024, 3, 19, 10))

    planned = plan(database, settings, moment(2024, 3, 20, 18, 45))

    assert one_off_kinds(planned) == {("overdue; deadline=summary", name) for name, _ in UNITS[1:]}


def test_summary_sent_after_now_not_counted(database, settings):
    send_summary(database, "水定镇", moment(2024, 3, 21, 10))

    planned = plan(database, settings, moment(2024, 3, 20, 18, 45))

    assert ("overdue; deadline=summary", "水定镇") in one_off_kinds(planned)


def test_one_off_notice_names_document(database, settings):
    planned = [item for item in plan(database, settings, moment(2024, 3, 20, 18, 45)) if item.week is None]
    assert "总结材料" in format_plan(settings, planned)


def test_second_one_off_overdue_replaces_first(database, settings):
    planned = plan(database, settings, moment(2024, 3, 23, 10, 30))
    assert {kind for kind, _ in one_off_kinds(planned)} == {"overdue-2; deadline=summary"}


# --- the digest ------------------------------------------------------------------------------------


def digest_one_off(database, settings, now):
    digest = next(item for item in plan(database, settings, now) if item.kind is ScheduledNotice.DIGEST)
    return {str(item.deadline_name): (item.received, item.missing) for item in digest.notice.one_off}


def test_first_digest_lists_demand_form_only(database, settings):
    assert digest_one_off(database, settings, moment(2023, 12, 8, 19, 30)) == {
        "demand-form": ([], [name for name, _ in UNITS])}


def test_last_digest_lists_coming_summary(database, settings):
    send_summary(database, "惠远镇", moment(2024, 3, 14, 10))

    listed = digest_one_off(database, settings, moment(2024, 3, 15, 19, 30))

    assert listed["summary"] == (["惠远镇"], ["水定镇", "清水河镇", "芦草沟镇"])


def test_digest_goes_to_admin(database, settings):
    digest = next(item for item in plan(database, settings, moment(2023, 12, 8, 19, 30))
                  if item.kind is ScheduledNotice.DIGEST)
    assert digest.recipients == (ADMIN,)


# --- the admin's own templates ---------------------------------------------------------------------


def with_templates(tmp_path, database_url, folder: str):
    text = config_text(database_url) + f'\n[notices]\ntemplates = "{folder}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_template_folder_overrides_subject(tmp_path, database, database_url):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "reminder.subject.j2").write_text("请今天报送：{{ notice.unit }}\n", encoding="utf-8")
    settings = with_templates(tmp_path, database_url, "mine")

    planned = [item for item in plan(database, settings, moment(2023, 12, 22, 12, 30)) if item.week == 3]

    assert "请今天报送：水定镇" in format_plan(settings, planned)


def test_missing_template_folder_is_config_error(tmp_path, database_url):
    with pytest.raises(ConfigError, match="找不到文件夹"):
        with_templates(tmp_path, database_url, "no-such-folder")


# --- the digest after a one-off deadline -----------------------------------------------------------


def one_off_digest(database, settings, now):
    return next(item for item in plan(database, settings, now)
                if item.kind is ScheduledNotice.DIGEST and item.week is None)


def test_summary_digest_after_deadline(database, settings):
    send_summary(database, "惠远镇", moment(2024, 3, 19, 10))

    planned = one_off_digest(database, settings, moment(2024, 3, 20, 19, 5))

    assert planned.header_kind == "digest; deadline=summary"
    assert planned.recipients == (ADMIN,)
    assert planned.notice.status.missing == ["水定镇", "清水河镇", "芦草沟镇"]


def test_summary_digest_renders_counts(database, settings):
    send_summary(database, "惠远镇", moment(2024, 3, 19, 10))
    rendered = render_notice(one_off_digest(database, settings, moment(2024, 3, 20, 19, 5)).notice)

    assert rendered.subject == "汇总：科技之冬总结材料应报4个，已报1个、未报3个"
    assert "截止时间为2024年3月20日（星期三）18:00（北京时间）" in rendered.text
    assert "未报送：水定镇、清水河镇、芦草沟镇" in rendered.text
    assert "水定镇、清水河镇、芦草沟镇" in rendered.html


def test_summary_digest_not_before_its_time(database, settings):
    planned = plan(database, settings, moment(2024, 3, 20, 18, 45))
    assert not [item for item in planned if item.kind is ScheduledNotice.DIGEST and item.week is None]


def test_broken_template_is_config_error(tmp_path, database_url):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "reminder.txt.j2").write_text("{{ notice.unit }：\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="reminder.txt.j2 第1行：模板语法有误"):
        with_templates(tmp_path, database_url, "mine")


def test_unknown_template_name_is_config_error(tmp_path, database_url):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "remider.txt.j2").write_text("{{ notice.unit }}\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="remider.txt.j2：系统没有这个名称的模板"):
        with_templates(tmp_path, database_url, "mine")


def test_failing_template_falls_back_to_packaged(tmp_path, database, database_url, caplog):
    # GIVEN a template that parses but names a field the notice does not have
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "reminder.subject.j2").write_text("{{ notice.township }}\n", encoding="utf-8")
    settings = with_templates(tmp_path, database_url, "mine")

    planned = [item for item in plan(database, settings, moment(2023, 12, 22, 12, 30)) if item.week == 3]
    rendered = render_notice(planned[0].notice, settings.template_dir)

    assert rendered.subject.startswith("报送提醒")
    assert "packaged templates used instead" in caplog.text
