"""``zhoubao findings`` and ``zhoubao explain``: 核实性 items listed, marked explained, shown in the digest."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import load_settings
from service.notices import build_digest
from tests.test_notice_planner import at, submit, write_config

NOW = "2023-12-22T20:00:00+08:00"


@pytest.fixture
def config_path(tmp_path, database, database_url):
    # Week 3 repeats week 2's running totals, so 4 = 4′ + 6 (C1) and 5 = 5′ + 7 (C2) fail.
    submit(database, 1, "水定镇", at(15, 10), week=2)
    submit(database, 2, "水定镇", at(22, 10), week=3)
    return write_config(tmp_path, database_url)


def invoke(config_path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config_path), "--now", NOW, *args])


def finding_lines(config_path) -> list[str]:
    output = invoke(config_path, "findings", "--week", "3").output
    return [" ".join(line.split()) for line in output.splitlines()[1:]]


def test_findings_lists_both_checks(config_path):
    lines = finding_lines(config_path)
    assert [line.split()[:5] for line in lines] == [["#2", "水定镇", "第3周", "C1", "待核实"],
                                                    ["#2", "水定镇", "第3周", "C2", "待核实"]]


def test_explain_one_check(config_path):
    result = invoke(config_path, "explain", "2", "C1", "--note", "已电话核实")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "已把报表 #2（水定镇第3周）的 C1 标为已说明。"
    assert [line.split()[4] for line in finding_lines(config_path)] == ["已说明", "待核实"]


def test_explain_all_checks(config_path):
    invoke(config_path, "explain", "2")
    assert [line.split()[4] for line in finding_lines(config_path)] == ["已说明", "已说明"]


def test_explain_unknown_check(config_path):
    result = invoke(config_path, "explain", "2", "C3")

    assert result.exit_code == 1
    assert "该报表需要核实的是：C1、C2" in result.output


def test_explain_report_without_findings(config_path):
    result = invoke(config_path, "explain", "1")

    assert result.exit_code == 1
    assert "报表 #1 没有需要核实的数据" in result.output


def test_findings_none(tmp_path, database, database_url):
    submit(database, 1, "水定镇", at(22, 10), week=3)
    output = invoke(write_config(tmp_path, database_url), "findings").output
    assert output.strip() == "没有需要核实的数据。"


def test_digest_marks_explained(config_path, database):
    invoke(config_path, "explain", "2", "C2")
    settings = load_settings(config_path)

    with database.session() as session:
        digest = build_digest(settings, session, 3, at(22, 20))

    assert [(str(item.finding.check), item.explained) for item in digest.findings] == [("C1", False), ("C2", True)]


def test_findings_show_note(config_path):
    invoke(config_path, "explain", "2", "C1", "--note", "已电话核实")
    assert finding_lines(config_path)[0].endswith("已电话核实")
