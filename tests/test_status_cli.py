"""``zhoubao status`` and ``zhoubao remind`` with a fixed clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.cli import main
from store import repository
from tests.fixtures.smtp import SINK_PASSWORD, SINK_USER
from tests.test_notice_planner import populate_week_3, write_config


@pytest.fixture
def config_path(tmp_path, database, database_url):
    populate_week_3(database)
    return write_config(tmp_path, database_url)


def invoke(config_path, now: str, *args: str):
    return CliRunner().invoke(main, ["--config", str(config_path), "--now", now, *args])


def line_of(output: str, *words: str) -> str:
    """Return the first line of ``output`` that contains every one of ``words``, else ""."""
    return next((line for line in output.splitlines() if all(word in line for word in words)), "")


# --- status --------------------------------------------------------------------------------------


def test_status_exits_zero(config_path):
    assert invoke(config_path, "2023-12-22T20:00:00+08:00", "status").exit_code == 0


def test_status_on_time(config_path):
    output = invoke(config_path, "2023-12-22T20:00:00+08:00", "status").output
    assert "已按时报送" in line_of(output, "水定镇")


def test_status_late(config_path):
    output = invoke(config_path, "2023-12-22T20:00:00+08:00", "status").output
    assert "逾期报送" in line_of(output, "清水河镇")


def test_status_returned_rules(config_path):
    output = invoke(config_path, "2023-12-22T20:00:00+08:00", "status").output
    assert "已退回未更正" in line_of(output, "芦草沟镇")
    assert "R1" in line_of(output, "芦草沟镇")


def test_status_missing(config_path):
    output = invoke(config_path, "2023-12-22T20:00:00+08:00", "status").output
    assert "未报送" in line_of(output, "惠远镇")


def test_status_received_time(config_path):
    output = invoke(config_path, "2023-12-22T20:00:00+08:00", "status").output
    assert "2023年12月22日 19:30" in line_of(output, "清水河镇")


def test_status_default_week_closed(config_path):
    output = invoke(config_path, "2023-12-23T09:00:00+08:00", "status").output
    assert output.startswith("第3周")


def test_status_default_week_current(config_path):
    output = invoke(config_path, "2023-12-01T09:00:00+08:00", "status").output
    assert output.startswith("第1周")


def test_status_before_late_report(config_path):
    output = invoke(config_path, "2023-12-22T19:00:00+08:00", "status", "--week", "3").output
    assert "未报送" in line_of(output, "清水河镇")


def test_status_skipped_week(config_path):
    output = invoke(config_path, "2024-02-01T09:00:00+08:00", "status", "--week", "8").output
    assert "停报" in output


def test_status_week_out_of_range(config_path):
    result = invoke(config_path, "2023-12-22T20:00:00+08:00", "status", "--week", "40")
    assert result.exit_code == 1
    assert "1 到 15" in result.output

# --- remind --------------------------------------------------------------------------------------


def test_remind_dry_run_lists_reminder(config_path):
    output = invoke(config_path, "2023-12-22T12:30:00+08:00", "remind", "--dry-run").output
    assert "huiyuan_kx@example.test" in line_of(output, "第3周", "截止前提醒", "惠远镇")


def test_remind_dry_run_leaves_on_time_unit(config_path):
    output = invoke(config_path, "2023-12-22T12:30:00+08:00", "remind", "--dry-run").output
    assert line_of(output, "截止前提醒", "水定镇") == ""


def test_remind_dry_run_lists_digest(config_path):
    output = invoke(config_path, "2023-12-22T19:05:00+08:00", "remind", "--dry-run").output
    assert "kexie-admin@example.test" in line_of(output, "第3周", "每周汇总")


def test_remind_dry_run_shows_subject(config_path):
    output = invoke(config_path, "2023-12-22T18:45:00+08:00", "remind", "--dry-run").output
    assert "逾期未报通知" in line_of(output, "第3周", "逾期通知", "惠远镇")


def test_remind_dry_run_writes_nothing(config_path, database):
    invoke(config_path, "2023-12-22T19:05:00+08:00", "remind", "--dry-run")
    with database.session() as session:
        assert repository.list_outbox(session) == []


def test_remind_dry_run_nothing_due(config_path):
    output = invoke(config_path, "2024-01-26T19:30:00+08:00", "remind", "--dry-run").output
    assert output.strip() == "当前没有需要发送的通知。"


@pytest.fixture
def sink_config(config_path, smtp_sink_auth):
    smtp = f'port = {smtp_sink_auth.port}\nusername = "{SINK_USER}"\npassword = "{SINK_PASSWORD}"'
    text = config_path.read_text(encoding="utf-8").replace("port = 1025", smtp)
    config_path.write_text(text, encoding="utf-8")
    return config_path


def test_remind_sends_due_notices(sink_config, smtp_sink_auth):
    result = invoke(sink_config, "2023-12-22T19:05:00+08:00", "remind")

    assert result.exit_code == 0, result.output
    assert "以上通知已发送。" in result.output
    assert "kexie-admin@example.test" in [item.rcpt_tos[0] for item in smtp_sink_auth.messages]


def test_remind_twice_sends_once(sink_config, smtp_sink_auth):
    invoke(sink_config, "2023-12-22T19:05:00+08:00", "remind")
    sent = len(smtp_sink_auth.messages)

    result = invoke(sink_config, "2023-12-22T19:10:00+08:00", "remind")

    assert result.output.strip() == "当前没有需要发送的通知。"
    assert len(smtp_sink_auth.messages) == sent


def test_remind_smtp_down_keeps_queue(config_path, database):
    result = invoke(config_path, "2023-12-22T19:05:00+08:00", "remind")

    assert result.exit_code == 1
    assert "已留在发送队列中" in result.output
    with database.session() as session:
        assert {str(mail.status) for mail in repository.list_outbox(session)} == {"pending"}
