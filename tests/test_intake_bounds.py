"""End to end against Dovecot: the size limit, the LibreOffice alert and the demand form receipt."""

from __future__ import annotations

import os

import pytest

from service.samples.mails import MailStyle, build_mail, build_mail_with_files
from store import repository
from store.session import Database
from service.samples.tables import SAMPLE_ROWS, build_demand_docx, build_xlsx
from store.models import MessageOutcome
from tests.test_intake import at, deliver, outcomes, replies, run_once, submissions

pytestmark = pytest.mark.dovecot


def add_to_config(setup, text: str) -> None:
    setup.config_path.write_text(text + "\n" + setup.config_path.read_text(encoding="utf-8"), encoding="utf-8")


def test_oversized_mail_answered_from_header(service_setup):
    """GIVEN a 1 MB limit WHEN a 2 MB mail arrives THEN only its header is archived and the clerk gets a reply."""
    add_to_config(service_setup, "[limits]\nmax_message_mb = 1\n")
    deliver(service_setup.account, build_mail_with_files(
        [("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]])), ("活动视频.mp4", os.urandom(2 * 1024 * 1024))],
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert outcomes(service_setup) == {MessageOutcome.UNREADABLE: 1}
    reply = replies(service_setup)[0]
    assert reply["X-Zhoubao-Notice"] == "unreadable"
    text = reply.get_body(("plain",)).get_content()
    assert "1 MB" in text
    assert "无文件名" not in text
    assert service_setup.account.uids("INBOX") == []


def test_libreoffice_missing_told_once(service_setup):
    """GIVEN no LibreOffice WHEN two .doc files arrive THEN each sender gets a reply and the admin one alert."""
    add_to_config(service_setup, '[admin]\nemails = ["kexie-admin@example.test"]\n'
                                 '[libreoffice]\npath = "/nonexistent/soffice"\n')
    word_97 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096)
    for minute in (1, 2):
        deliver(service_setup.account, build_mail_with_files([("水定镇.doc", word_97)], date=at(22, 16, minute),
                                                             subject=f"水定镇第3周统计表{minute}"))

    assert run_once(service_setup).exit_code == 0

    kinds = sorted((mail["To"], mail["X-Zhoubao-Notice"]) for mail in replies(service_setup))
    assert kinds == [("kexie-admin@example.test", "alert"), ("shuiding_kx@163.com", "unreadable"),
                     ("shuiding_kx@163.com", "unreadable")]
    alert = next(mail for mail in replies(service_setup) if mail["X-Zhoubao-Notice"] == "alert")
    assert alert["Subject"] == "系统提示：请在服务器上安装 LibreOffice，以便读取旧版 Word 和 WPS 文件"
    assert "/nonexistent/soffice" in alert.get_body(("plain",)).get_content()


def test_demand_form_receipt(service_setup):
    deliver(service_setup.account, build_mail_with_files(
        [("水定镇活动需求征集表.docx",
          build_demand_docx([("农业专家2名", "果农", "12月上旬", "线下，各村", "林果冬季修剪", "挂图50份")]))],
        subject="水定镇科技之冬活动需求征集表", date=at(1, 11, 0)))

    assert run_once(service_setup).exit_code == 0

    assert submissions(service_setup) == []
    assert outcomes(service_setup) == {MessageOutcome.ACCEPTED: 1}
    assert [mail["X-Zhoubao-Notice"] for mail in replies(service_setup)] == ["demand-receipt"]




def test_other_unit_table_held_own_table_recorded(service_setup):
    """GIVEN a mail with the sender's table and another unit's WHEN processed THEN the own one counts."""
    deliver(service_setup.account, build_mail_with_files(
        [("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]])),
         ("清水河镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]], unit="清水河镇"))], date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert [(item["unit"], item["status"]) for item in submissions(service_setup)] == [("水定镇", "accepted")]
    text = replies(service_setup)[0].get_body(("plain",)).get_content()
    assert "清水河镇.xlsx" in text
    assert "人工核对" in text


def test_receipt_lists_attachments_without_table(service_setup):
    deliver(service_setup.account, build_mail_with_files(
        [("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]])), ("活动照片.jpg", b"\xff\xd8\xff\xe0" + bytes(300))],
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert "未予处理：活动照片.jpg" in replies(service_setup)[0].get_body(("plain",)).get_content()


def test_earlier_file_sent_again_counts_again(service_setup):
    """GIVEN file A then a corrected file B WHEN A is sent once more THEN A is the current report."""
    first = build_xlsx([SAMPLE_ROWS["valid"]])
    second = build_xlsx([SAMPLE_ROWS["blanks"]])
    for minute, data in ((1, first), (2, second), (3, first)):
        deliver(service_setup.account, build_mail_with_files([("水定镇.xlsx", data)], date=at(22, 16, minute),
                                                             subject=f"水定镇第3周统计表（{minute}）"))

    assert run_once(service_setup).exit_code == 0

    stored = submissions(service_setup)
    current = [item for item in stored if item["status"] == "accepted"]
    assert len(stored) == 2
    assert current[0]["rows"][0]["15"] == 2
    assert "已通过校验并登记" in replies(service_setup)[-1].get_body(("plain",)).get_content()


def test_bounce_marks_address(service_setup):
    # The bounce of a receipt the service sent to 水定镇.
    deliver(service_setup.account, build_mail(MailStyle.BOUNCE, to="shuiding_kx@163.com", date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert outcomes(service_setup) == {MessageOutcome.IGNORED: 1}
    assert replies(service_setup) == []
    database = Database(service_setup.database_url)
    try:
        with database.session() as session:
            assert [item.address for item in repository.list_bouncing(session)] == ["shuiding_kx@163.com"]
    finally:
        database.dispose()


def test_receipt_asks_to_confirm_running_totals(service_setup):
    """GIVEN week 3's totals WHEN week 4 repeats the same 累计 THEN the receipt requests confirmation."""
    for day, subject in ((22, "水定镇第3周统计表"), (29, "水定镇第4周统计表")):
        deliver(service_setup.account, build_mail_with_files(
            [("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]]))], subject=subject, date=at(day, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    first, second = [mail.get_body(("plain",)).get_content() for mail in replies(service_setup)]
    assert "请核实" not in first
    assert "请核实" in second
    assert [item["status"] for item in submissions(service_setup)] == ["accepted", "accepted"]
