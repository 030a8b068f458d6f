"""The zhoubao command line as an admin uses it: exit codes and Chinese messages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import build_zip
from service.samples.tables import SAMPLE_ROWS, build_demand_docx, build_docx, build_xlsx
from tests.fixtures.service import config_text


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def config_path(tmp_path, database_url):
    """A config whose servers are never contacted: only database commands run against it."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                smtp_port=1025, database_url=database_url), encoding="utf-8")
    return path


def test_check_valid_file_exits_zero(tmp_path):
    table = tmp_path / "水定镇.xlsx"
    table.write_bytes(build_xlsx([SAMPLE_ROWS["valid"]]))
    result = invoke("check", str(table))
    assert result.exit_code == 0
    assert "检查结果：通过" in result.stdout


def test_check_violations_exit_one(tmp_path):
    table = tmp_path / "兰干乡.docx"
    table.write_bytes(build_docx([SAMPLE_ROWS["r2_r5_broken"]], unit="兰干乡"))
    result = invoke("check", str(table))
    assert result.exit_code == 1
    assert "7栏=10+12+14+16+18+20" in result.stdout
    assert "8栏<7栏" in result.stdout


def test_check_unreadable_exits_two(tmp_path):
    table = tmp_path / "photo.xlsx"
    table.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    result = invoke("check", str(table))
    assert result.exit_code == 2
    assert "无法读取 photo.xlsx" in result.stderr


def test_missing_config_named(tmp_path):
    missing = tmp_path / "none.toml"
    result = invoke("--config", str(missing), "submissions")
    assert result.exit_code == 1
    assert "none.toml" in result.stderr


def test_now_without_zone_rejected(tmp_path):
    result = invoke("--now", "2023-12-22T18:30:00", "check", str(tmp_path))
    assert result.exit_code == 2
    assert "缺少时区" in result.stderr


def test_db_upgrade_creates_database(config_path):
    result = invoke("--config", str(config_path), "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("已创建数据库，当前版本")


def test_db_upgrade_twice_says_current(config_path):
    invoke("--config", str(config_path), "db", "upgrade")
    result = invoke("--config", str(config_path), "db", "upgrade")
    assert result.stdout.startswith("数据库已是当前版本")


def test_submissions_empty_database(config_path):
    result = invoke("--config", str(config_path), "submissions")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "数据库中还没有报表。"


def test_submissions_json_empty_array(config_path):
    result = invoke("--config", str(config_path), "submissions", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "[]"


def test_check_reads_zip_member(tmp_path):
    archive = tmp_path / "统计表.zip"
    archive.write_bytes(build_zip([("兰干乡.docx", build_docx([SAMPLE_ROWS["r2_r5_broken"]], unit="兰干乡"))]))
    result = invoke("check", str(archive))
    assert result.exit_code == 1
    assert "8栏<7栏" in result.stdout


def test_check_demand_form_not_a_bad_table(tmp_path):
    form = tmp_path / "需求征集表.docx"
    form.write_bytes(build_demand_docx([("农业专家2名", "果农", "12月", "线下", "林果修剪", "挂图")]))
    result = invoke("check", str(form))
    assert result.exit_code == 0
    assert "附件1 活动需求征集表" in result.stdout
