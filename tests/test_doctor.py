"""``zhoubao doctor`` against the private Dovecot, the aiosmtpd sink that checks AUTH, and SQLite and
PostgreSQL; the verdicts and the report's wording on their own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from click.testing import CliRunner

from ingest.calendar import Campaign
from service.checks import (
    DISK_FAIL_BYTES,
    DISK_WARN_BYTES,
    CheckResult,
    Status,
    disk_result,
    exit_code,
    format_report,
    revision_result,
    timezone_result,
)
from service.cli import main
from store.session import Database, sqlite_url
from tests.fixtures.service import config_text
from tests.fixtures.smtp import free_port
from tests.test_demand import migrate

BEIJING = ZoneInfo("Asia/Shanghai")
NOW = "2024-01-12T19:05:00+08:00"
CHECKS = ["配置文件", "数据库", "收信登录", "IMAP ID", "收件文件夹", "已处理文件夹", "发信登录", "磁盘空间",
          "LibreOffice", "时区"]


def doctor(config_path: Path, now: str = NOW):
    return CliRunner().invoke(main, ["--config", str(config_path), "--now", now, "doctor"])


def lines_of(output: str) -> dict[str, str]:
    """Map each check's name to its report line, without the symbol."""
    found = {}
    for line in output.splitlines():
        symbol, _, rest = line.partition(" ")
        if symbol in ("✓", "!", "✗"):
            found[rest.partition("：")[0]] = line
    return found


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise KeyError(old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def ready(service_setup):
    """A migrated database and a mailbox that already has its processed folder."""
    database = Database(service_setup.database_url)
    database.upgrade()
    database.dispose()
    service_setup.account.append(b"Subject: old\r\n\r\nprocessed\r\n", folder="已处理")
    return service_setup


# --- against the servers -----------------------------------------------------------------------


@pytest.mark.dovecot
def test_all_checks_pass(ready):
    result = doctor(ready.config_path)

    assert result.exit_code == 0, result.output
    assert list(lines_of(result.stdout)) == CHECKS
    assert "✗" not in result.stdout
    for name in CHECKS:
        if name not in ("磁盘空间", "LibreOffice"):  # these depend on the machine the tests run on
            assert lines_of(result.stdout)[name].startswith("✓"), result.stdout


@pytest.mark.dovecot
def test_id_sent_to_dovecot(ready):
    # imap_id_log = * makes Dovecot log the client's ID parameters; the log lasts the whole session.
    before = ready.account.server.log_text().count("name=zhoubao")

    result = doctor(ready.config_path)

    assert lines_of(result.stdout)["IMAP ID"] == "✓ IMAP ID：已发送，服务器已接受"
    assert ready.account.server.log_text().count("name=zhoubao") == before + 1


@pytest.mark.dovecot
def test_inbox_count_shown(ready):
    ready.account.append(b"Subject: a\r\n\r\nx\r\n")

    result = doctor(ready.config_path)

    assert lines_of(result.stdout)["收件文件夹"] == "✓ 收件文件夹：“INBOX”可以打开，现有 1 封邮件"


@pytest.mark.dovecot
def test_timezone_next_deadline(ready):
    line = lines_of(doctor(ready.config_path).stdout)["时区"]

    assert line == ("✓ 时区：Asia/Shanghai，当地时间 2024年1月12日 19:05（北京时间）；"
                    "下一个截止时间：第7周 2024年1月19日（星期五）18:00（北京时间）")


@pytest.mark.dovecot
def test_wrong_imap_password_fails(ready):
    edit(ready.config_path, f'password = "{ready.account.password}"', 'password = "wrong-code-42"')

    result = doctor(ready.config_path)

    assert result.exit_code == 1
    assert lines_of(result.stdout)["收信登录"].startswith("✗ 收信登录：127.0.0.1 拒绝了 county@example.test 的登录")
    assert "处理办法：请确认 [mailbox] username 是完整的邮箱地址，密码填写的是客户端授权码而不是网页登录密码" in result.stdout
    assert "wrong-code-42" not in result.stdout


@pytest.mark.dovecot
def test_wrong_imap_password_skips_folders(ready):
    edit(ready.config_path, f'password = "{ready.account.password}"', 'password = "wrong-code-42"')

    found = lines_of(doctor(ready.config_path).stdout)

    assert "收件文件夹" not in found
    assert found["发信登录"].startswith("✓")


@pytest.mark.dovecot
@pytest.mark.parametrize("server, check, fix", [
    ("account", "收信登录", "imap.163.com、993、ssl"),
    ("sink", "发信登录", "smtp.163.com、465、ssl"),
])
def test_refused_connection_fails(ready, server, check, fix):
    edit(ready.config_path, f"port = {getattr(ready, server).port}", f"port = {free_port()}")

    result = doctor(ready.config_path)

    assert result.exit_code == 1
    assert lines_of(result.stdout)[check].startswith(f"✗ {check}：无法连接 127.0.0.1:")
    assert fix in result.stdout


@pytest.mark.dovecot
def test_missing_inbox_folder_fails(ready):
    edit(ready.config_path, 'poll_interval = 60', 'poll_interval = 60\nfolder = "不存在的文件夹"')

    result = doctor(ready.config_path)

    assert result.exit_code == 1
    assert lines_of(result.stdout)["收件文件夹"].startswith("✗ 收件文件夹：无法打开“不存在的文件夹”")
    assert "已处理文件夹" not in lines_of(result.stdout)


@pytest.mark.dovecot
def test_missing_processed_folder_warns(service_setup):
    database = Database(service_setup.database_url)
    database.upgrade()
    database.dispose()

    result = doctor(service_setup.config_path)

    assert lines_of(result.stdout)["已处理文件夹"] == "! 已处理文件夹：“已处理”还不存在"
    assert "服务第一次收信时会自动创建该文件夹" in result.stdout
    assert result.exit_code == 0, result.output
    assert "已处理" not in service_setup.account.folders()


@pytest.mark.dovecot
def test_smtp_wrong_password_fails(ready):
    edit(ready.config_path, 'password = "sink-secret"', 'password = "wrong-smtp-code"')

    result = doctor(ready.config_path)

    assert result.exit_code == 1
    assert lines_of(result.stdout)["发信登录"].startswith("✗ 发信登录：127.0.0.1 拒绝了 county@example.test 的登录（535 ")
    assert "163 邮箱收信和发信使用同一个客户端授权码" in result.stdout


@pytest.mark.dovecot
def test_smtp_check_sends_nothing(ready):
    doctor(ready.config_path)

    assert ready.sink.messages == []


@pytest.mark.dovecot
def test_libreoffice_missing_warns_only(ready):
    edit(ready.config_path, "[campaign]", '[libreoffice]\npath = "/nonexistent/soffice"\n\n[campaign]')

    result = doctor(ready.config_path)

    assert result.exit_code == 0, result.output
    assert lines_of(result.stdout)["LibreOffice"].startswith(
        "! LibreOffice：[libreoffice] path 指定的 /nonexistent/soffice 不存在或不能执行")


# --- without the servers -----------------------------------------------------------------------


@pytest.fixture
def config_path(tmp_path, database_url):
    """A config whose mail servers refuse connections: closed ports on 127.0.0.1."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(imap_port=free_port(), imap_user="county@example.test", imap_password="x",
                                smtp_port=free_port(), database_url=database_url), encoding="utf-8")
    return path



def test_invalid_config_only_check(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[mailbox]\nhost = \n", encoding="utf-8")

    result = doctor(path)

    assert result.exit_code == 1
    assert list(lines_of(result.stdout)) == ["配置文件"]
    assert "不符合 TOML 格式" in result.stdout


def test_database_behind_head_fails(config_path, database_url):
    database = Database(database_url)
    migrate(database, command.upgrade, "0004")

    result = doctor(config_path)

    assert result.exit_code == 1
    line = lines_of(result.stdout)["数据库"]
    assert line.startswith("✗ 数据库：")
    assert line.endswith("的版本为 0004，低于本程序所需的 0006")
    assert f"请先备份数据库，再运行 zhoubao --config {config_path} db upgrade 升级" in result.stdout
    assert database.revision() == "0004"
    database.dispose()


def test_missing_sqlite_file_fails(tmp_path):
    path = tmp_path / "config.toml"
    missing = tmp_path / "data" / "zhoubao.sqlite3"
    path.write_text(config_text(imap_port=free_port(), imap_user="county@example.test", imap_password="x",
                                smtp_port=free_port(), database_url=sqlite_url(missing)), encoding="utf-8")

    result = doctor(path)

    assert lines_of(result.stdout)["数据库"] == f"✗ 数据库：数据库文件 {missing} 不存在"
    assert not missing.exists()


def test_empty_database_fails(config_path, database_url):
    missing = Database(database_url).missing_file()
    if missing is not None:
        missing.touch()

    result = doctor(config_path)

    assert lines_of(result.stdout)["数据库"].endswith("已连接，但其中还没有本系统的数据表")
    assert "db upgrade 建表" in result.stdout


def test_password_env_missing_fails_login(config_path):
    edit(config_path, 'password = "x"', 'password_env = "ZHOUBAO_DOCTOR_UNSET"')

    result = doctor(config_path)

    assert lines_of(result.stdout)["收信登录"] == "✗ 收信登录：county@example.test 的授权码无法读取"
    assert "ZHOUBAO_DOCTOR_UNSET" in result.stdout


# --- verdicts and wording ----------------------------------------------------------------------


@pytest.mark.parametrize("free, status", [
    (DISK_WARN_BYTES, Status.OK),
    (DISK_WARN_BYTES - 1, Status.WARNING),
    (DISK_FAIL_BYTES, Status.WARNING),
    (DISK_FAIL_BYTES - 1, Status.FAILED),
])
def test_disk_thresholds(free, status):
    assert disk_result(Path("/srv/zhoubao"), free).status is status


def test_disk_detail():
    result = disk_result(Path("/srv/zhoubao"), 500 * 1024 ** 2)

    assert result.detail == "/srv/zhoubao 所在磁盘可用 500 MiB，少于 1.0 GiB"
    assert "data_dir" in result.fix


def test_revision_current():
    result = revision_result("0005", "0005", ["0005", "0004"], "zhoubao db upgrade", "sqlite:///z")

    assert result == CheckResult("数据库", Status.OK, "sqlite:///z 已连接，版本 0005（最新）")


def test_revision_unknown_newer():
    result = revision_result("0009", "0005", ["0005", "0004"], "zhoubao db upgrade", "sqlite:///z")

    assert result.status is Status.FAILED
    assert "请安装与该数据库相应的新版 zhoubao" in result.fix


def test_timezone_after_campaign_warns():
    tz = BEIJING
    campaign = Campaign(dt.datetime(2023, 12, 8, 18, 0, tzinfo=tz), dt.datetime(2024, 3, 15, 18, 0, tzinfo=tz), tz)

    result = timezone_result(campaign, "Asia/Shanghai", dt.datetime(2024, 3, 16, 9, 0, tzinfo=tz))

    assert result.status is Status.WARNING
    assert "2024年3月15日（星期五）18:00（北京时间） 已过" in result.detail


def test_report_layout():
    results = [CheckResult("配置文件", Status.OK, "读取成功"),
               CheckResult("LibreOffice", Status.WARNING, "未安装", "安装它"),
               CheckResult("发信登录", Status.FAILED, "无法连接", "检查端口")]

    assert format_report(results).splitlines() == [
        "✓ 配置文件：读取成功",
        "! LibreOffice：未安装",
        "    处理办法：安装它",
        "✗ 发信登录：无法连接",
        "    处理办法：检查端口",
        "共 3 项检查，1 项未通过，1 项警告。请按上面的处理办法解决后，再运行 zhoubao doctor 检查。",
    ]


def test_warnings_exit_zero():
    assert exit_code([CheckResult("LibreOffice", Status.WARNING, "未安装", "安装它")]) == 0


def test_failure_exits_one():
    assert exit_code([CheckResult("数据库", Status.OK, "x"), CheckResult("时区", Status.FAILED, "y", "z")]) == 1
