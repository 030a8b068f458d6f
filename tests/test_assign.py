"""zhoubao assign: the admin moves a report to the week it belongs to."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import build_mail_with_files
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from tests.test_intake import at, deliver, run_once, submissions

pytestmark = pytest.mark.dovecot


def assign(setup, *args: str):
    return CliRunner().invoke(main, ["--config", str(setup.config_path), "assign", *args])


@pytest.fixture
def two_in_week_3(service_setup):
    """GIVEN week 3's report and then next week's, mislabelled 第3周 by the clerk."""
    for minute, rows in ((1, SAMPLE_ROWS["valid"]), (2, SAMPLE_ROWS["blanks"])):
        deliver(service_setup.account, build_mail_with_files(
            [("水定镇.xlsx", build_xlsx([rows]))], subject=f"水定镇第3周统计表{minute}", date=at(22, 16, minute)))
    assert run_once(service_setup).exit_code == 0
    return service_setup


def states(setup) -> list[tuple[int, int, str]]:
    return [(item["id"], item["week"], item["status"]) for item in submissions(setup)]


def test_assign_moves_report_and_restores_previous(two_in_week_3):
    first, second = [item["id"] for item in submissions(two_in_week_3)]

    result = assign(two_in_week_3, str(second), "4")

    assert result.exit_code == 0, result.output
    assert "第3周改记到第4周" in result.stdout
    assert states(two_in_week_3) == [(first, 3, "accepted"), (second, 4, "accepted")]


def test_assign_unknown_submission(two_in_week_3):
    result = assign(two_in_week_3, "999", "4")
    assert result.exit_code == 1
    assert "找不到编号为 999 的报表" in result.stderr


def test_assign_week_outside_campaign(two_in_week_3):
    result = assign(two_in_week_3, "1", "40")
    assert result.exit_code == 1
    assert "第40周" in result.stderr


def test_assign_to_earlier_week_marks_late(two_in_week_3):
    # Received 2023年12月22日 16:02, so on time for week 3 but after week 2's deadline.
    second = submissions(two_in_week_3)[1]["id"]

    result = assign(two_in_week_3, str(second), "2")

    assert "（逾期报送）" in result.stdout
    assert [item["late"] for item in submissions(two_in_week_3) if item["id"] == second] == [True]


def test_assign_outside_unit_weeks(two_in_week_3):
    # GIVEN 水定镇 reports only until week 8
    text = two_in_week_3.config_path.read_text(encoding="utf-8")
    two_in_week_3.config_path.write_text(
        text.replace('name = "水定镇"\n', 'name = "水定镇"\nuntil_week = 8\n', 1), encoding="utf-8")

    result = assign(two_in_week_3, str(submissions(two_in_week_3)[1]["id"]), "9")

    assert result.exit_code == 1
    assert "水定镇第9周不需要报送（配置中该单位从第1周报送到第8周）" in result.stderr
