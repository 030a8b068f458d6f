"""Health as the admin meets it: runs recorded by the service against the private Dovecot, the alert
and all-clear delivered to the SMTP sink, and ``zhoubao health`` on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store import health as store
from store.models import IntakeRun
from store.session import Database, sqlite_url
from tests.fixtures.service import COUNTY_ADDRESS, config_text
from tests.fixtures.smtp import free_port
# config_path: a config whose servers are never contacted, so only the database is read.
from tests.test_cli import config_path  # noqa: F401 - a pytest fixture
from tests.test_crash import run_service
from tests.test_demand import migrate
from tests.test_intake import BEIJING, at, deliver, run_once

# One run a minute: the test config polls every 60 s, so it goes stale only after three minutes.
TIMES = ["2023-12-29T20:00:00+08:00", "2023-12-29T20:01:00+08:00", "2023-12-29T20:02:00+08:00",
         "2023-12-29T20:03:00+08:00", "2023-12-29T20:04:00+08:00"]


def invoke(config_path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config_path), *args])


def recorded_runs(database_url: str) -> list[IntakeRun]:
    database = Database(database_url)
    try:
        with database.session() as session:
            return list(session.scalars(sa.select(IntakeRun).order_by(IntakeRun.id)))
    finally:
        database.dispose()


def sink_alerts(sink) -> list[email.message.EmailMessage]:
    mails = [email.message_from_bytes(item.raw, policy=policy.default) for item in sink.messages]
    return [mail for mail in mails if mail["X-Zhoubao-Notice"] == "alert"]


def township_mail() -> bytes:
    return build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
                      attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="水定镇.xlsx", date=at(22, 16, 0))


@pytest.fixture
def wrong_password(service_setup):
    """The service_setup with an IMAP password that Dovecot rejects."""
    text = service_setup.config_path.read_text(encoding="utf-8")
    service_setup.config_path.write_text(
        text.replace(f'password = "{service_setup.account.password}"', 'password = "wrong-code-42"', 1),
        encoding="utf-8")
    return service_setup


@pytest.fixture
def imap_down(service_setup):
    """Return the service_setup with its IMAP port replaced by a closed one, and a function that
    restores the port."""
    path = service_setup.config_path
    working = f"port = {service_setup.account.port}"
    closed = f"port = {free_port()}"
    path.write_text(path.read_text(encoding="utf-8").replace(working, closed, 1), encoding="utf-8")

    def restore() -> None:
        path.write_text(path.read_text(encoding="utf-8").replace(closed, working, 1), encoding="utf-8")

    return service_setup, restore


# --- runs recorded by the service --------------------------------------------------------------


@pytest.mark.dovecot
def test_successful_run_recorded(service_setup):
    deliver(service_setup.account, township_mail())

    assert run_once(service_setup).exit_code == 0

    [run] = recorded_runs(service_setup.database_url)
    assert run.ok is True
    assert run.error is None
    assert (run.seen, run.processed, run.moved, run.failed) == (1, 1, 1, 0)
    assert run.finished_at is not None


@pytest.mark.dovecot
def test_rejected_login_recorded(wrong_password):
    assert run_once(wrong_password).exit_code == 1

    [run] = recorded_runs(wrong_password.database_url)
    assert run.ok is False
    assert run.error.startswith("AuthenticationFailed: ")
    assert "wrong-code-42" not in run.error


@pytest.mark.dovecot
def test_killed_run_left_unfinished(service_setup):
    # GIVEN a service killed while it processes a mail
    deliver(service_setup.account, township_mail())
    assert run_service(service_setup.config_path, failpoint="after-archive").returncode != 0

    # THEN its run has no end, and six minutes later health reports it as cut short
    [run] = recorded_runs(service_setup.database_url)
    assert run.finished_at is None
    result = invoke(service_setup.config_path, "--now", "2023-12-29T20:06:00+08:00", "health")
    assert "开始，未结束（进程可能已中断）" in result.stdout


@pytest.mark.dovecot
def test_alert_mailed_once_after_three_failures(imap_down):
    setup, _ = imap_down
    for now in TIMES[:2]:
        run_once(setup, now)
    assert sink_alerts(setup.sink) == []

    for now in TIMES[2:]:
        run_once(setup, now)

    [alert] = sink_alerts(setup.sink)
    assert alert["To"] == COUNTY_ADDRESS
    assert alert["Subject"].startswith("系统提示：收信已连续失败 3 次")
    assert "MailboxError" in alert.get_body(("plain",)).get_content()


@pytest.mark.dovecot
def test_all_clear_mailed_after_recovery(imap_down):
    setup, restore = imap_down
    for now in TIMES[:3]:
        run_once(setup, now)
    restore()

    assert run_once(setup, TIMES[3]).exit_code == 0
    run_once(setup, TIMES[4])

    subjects = [mail["Subject"] for mail in sink_alerts(setup.sink)]
    assert subjects[1:] == ["系统提示：收信已恢复正常"]
    assert len(subjects) == 2


@pytest.mark.dovecot
def test_rejected_login_alerted_once(wrong_password):
    # The login alert of service.alerts covers a rejected login, so the health alert stays out.
    for now in TIMES:
        run_once(wrong_password, now)

    [alert] = sink_alerts(wrong_password.sink)
    assert "拒绝登录" in alert["Subject"]


# --- zhoubao health ----------------------------------------------------------------------------


def record_runs(database_url: str, *outcomes: bool) -> None:
    """Record one finished run per outcome, a minute apart from 20:00 Beijing time on 29 December."""
    database = Database(database_url)
    database.upgrade()
    key = "county@example.test@127.0.0.1/INBOX"
    start = dt.datetime(2023, 12, 29, 20, 0, tzinfo=BEIJING)
    try:
        for index, ok in enumerate(outcomes):
            with database.session() as session:
                run = store.start_run(session, key, start + dt.timedelta(minutes=index))
                store.finish_run(session, run.id, start + dt.timedelta(minutes=index, seconds=20),
                                 store.RunCounts(1, 1, 1, 0), None if ok else "MailboxError: connect failed")
    finally:
        database.dispose()


def test_health_ok_exits_zero(config_path, database_url):
    record_runs(database_url, False, True)

    result = invoke(config_path, "--now", "2023-12-29T20:02:00+08:00", "health")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("收信状态：正常\n")
    assert "最近一次成功：2023年12月29日 20:01（北京时间）" in result.stdout
    assert "发送队列：待发送 0 封，发送失败 0 封" in result.stdout


def test_health_failing_exits_one(config_path, database_url):
    record_runs(database_url, True, False, False, False)

    result = invoke(config_path, "--now", "2023-12-29T20:04:00+08:00", "health")

    assert result.exit_code == 1
    assert result.stdout.startswith("收信状态：异常\n")
    assert "连续失败：3 次" in result.stdout
    assert "最近一次错误：MailboxError: connect failed" in result.stdout


def test_health_stale_exits_one(config_path, database_url):
    record_runs(database_url, True)

    result = invoke(config_path, "--now", "2023-12-29T20:10:00+08:00", "health")

    assert result.exit_code == 1
    assert "问题：已有 9 分钟没有完成一轮收信" in result.stdout


def test_health_without_runs_exits_one(config_path, database_url):
    record_runs(database_url)

    result = invoke(config_path, "health")

    assert result.exit_code == 1
    assert "还没有任何收信记录" in result.stdout


def test_health_json(config_path, database_url):
    record_runs(database_url, True, False)

    result = invoke(config_path, "--now", "2023-12-29T20:02:00+08:00", "health", "--json")

    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert data["healthy"] is True
    assert data["consecutive_failures"] == 1
    assert data["last_run"]["error"] == "MailboxError: connect failed"
    assert data["mailbox"] == "county@example.test@127.0.0.1/INBOX"
    assert data["outbox"] == {"pending": 0, "sent": 0, "failed": 0}


def test_health_json_unhealthy_exits_one(config_path, database_url):
    record_runs(database_url, False, False, False)

    result = invoke(config_path, "--now", "2023-12-29T20:03:00+08:00", "health", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == ["failing"]


def test_health_old_database_not_migrated(config_path, database_url):
    # GIVEN a database still at revision 0004
    database = Database(database_url)
    migrate(database, command.upgrade, "0004")

    # WHEN zhoubao health runs
    result = invoke(config_path, "health")

    # THEN it fails with the upgrade command and leaves the schema as it was
    assert result.exit_code == 1
    assert "数据库版本为 0004，本程序需要 0006" in result.stderr
    assert "db upgrade" in result.stderr
    assert database.revision() == "0004"
    database.dispose()


def test_health_missing_sqlite_file(tmp_path):
    path = tmp_path / "config.toml"
    missing = tmp_path / "data" / "zhoubao.sqlite3"
    path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                smtp_port=1025, database_url=sqlite_url(missing)), encoding="utf-8")

    result = invoke(path, "health")

    assert result.exit_code == 1
    assert f"数据库文件 {missing} 不存在" in result.stderr
    assert not missing.exists()


def test_health_unreachable_database(tmp_path):
    path = tmp_path / "config.toml"
    url = "postgresql+psycopg://postgres@127.0.0.1:1/zhoubao"
    path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                smtp_port=1025, database_url=url), encoding="utf-8")

    result = invoke(path, "health")

    assert result.exit_code == 1
    assert "无法打开数据库" in result.stderr
