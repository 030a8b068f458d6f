"""总结材料: recognised by subject or file name, kept as received, download links sent to the admin."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from docx import Document

from ingest.message import parse_message
from ingest.summary import download_links, is_summary_mail, plan_summary
from notify.notices import SummaryReceiptNotice
from notify.render import render_notice
from service.samples.mails import build_mail_with_files
from store import repository
from store.session import Database
from tests.fixtures.service import COUNTY_ADDRESS
from tests.test_intake import at, deliver, outcomes, replies, run_once

LINK_163 = "https://mail.163.com/large-attachment-download/index.html?p=X1aB2&file=活动视频.mp4"
LINK_QQ = "https://wx.mail.qq.com/ftn/download?func=3&k=5f2a&key=8c1d"
BEIJING = dt.timezone(dt.timedelta(hours=8))
FOOTER_AD = "https://mail.163.com/dashi/dlpro.html?from=mail88"

# The smallest bytes that sniff as a JPEG photo; enough for a file that is kept, not read.
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200 + b"\xff\xd9"


def summary_docx() -> bytes:
    document = Document()
    document.add_heading("水定镇2023-2024年“科技之冬”活动总结", level=1)
    document.add_paragraph("今冬以来，我镇共开展农业实用技术培训12场，受益群众900人次。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def summary_mail(*, links: tuple[str, ...] = (LINK_163,), subject: str = "水定镇科技之冬活动总结材料",
                 files: tuple[tuple[str, bytes], ...] | None = None, date: dt.datetime = at(29, 11, 0)) -> bytes:
    body = "您好：\n我镇活动总结及照片见附件，视频较大，以超大附件发送：\n" + "\n".join(links) + "\n"
    if files is None:
        files = (("水定镇活动总结.docx", summary_docx()), ("培训现场1.jpg", PHOTO))
    return build_mail_with_files(list(files), subject=subject, body=body, date=date)


# --- recognising the mail ------------------------------------------------------------------------


def test_subject_word_marks_summary():
    assert is_summary_mail(parse_message(summary_mail()))


def test_file_name_word_marks_summary():
    mail = parse_message(summary_mail(subject="水定镇材料", files=(("水定镇活动总结.docx", summary_docx()),)))
    assert is_summary_mail(mail)


def test_weekly_mail_not_summary():
    mail = parse_message(summary_mail(subject="水定镇第3周科技之冬周统计表", files=(("第3周.xlsx", b"x"),)))
    assert not is_summary_mail(mail)


def test_links_of_163_and_qq_found():
    text = f"视频一：{LINK_163}\n视频二：{LINK_QQ}\n"
    assert download_links(text, "") == [LINK_163, LINK_QQ]


def test_webmail_footer_link_left_out():
    assert download_links(f"网易邮箱大师 {FOOTER_AD}", "") == []


def test_link_in_html_found_once():
    html = f'<a href="{LINK_QQ.replace("&", "&amp;")}">活动视频.mp4</a>'
    assert download_links(LINK_QQ, html) == [LINK_QQ]


def test_plan_lists_files_with_sizes():
    plan = plan_summary(parse_message(summary_mail()), "水定镇")
    assert [(item.name, item.size) for item in plan.files] == [
        ("水定镇活动总结.docx", len(summary_docx())), ("培训现场1.jpg", len(PHOTO))]


def test_plan_none_without_files_or_links():
    assert plan_summary(parse_message(summary_mail(links=(), files=())), "水定镇") is None


# --- through the service ---------------------------------------------------------------------------



@pytest.fixture
def summary_sent(service_setup):
    deliver(service_setup.account, summary_mail())
    result = run_once(service_setup, now="2024-03-18T12:00:00+08:00")
    assert result.exit_code == 0, result.output
    return service_setup


def stored(setup):
    database = Database(setup.database_url)
    try:
        with database.session() as session:
            return [(item.unit.name, [file["name"] for file in item.files], item.links)
                    for item in repository.list_summaries(session)]
    finally:
        database.dispose()


@pytest.mark.dovecot
def test_summary_recorded(summary_sent):
    assert stored(summary_sent) == [("水定镇", ["水定镇活动总结.docx", "培训现场1.jpg"], [LINK_163])]


@pytest.mark.dovecot
def test_summary_outcome(summary_sent):
    assert {str(outcome): count for outcome, count in outcomes(summary_sent).items()} == {"summary": 1}


@pytest.mark.dovecot
def test_summary_receipt_lists_files_and_link(summary_sent):
    receipt = next(mail for mail in replies(summary_sent) if mail["X-Zhoubao-Notice"] == "summary-receipt")
    text = receipt.get_body(("plain",)).get_content()

    assert receipt["To"] == "shuiding_kx@163.com"
    assert "水定镇活动总结.docx" in text
    assert "培训现场1.jpg" in text
    assert LINK_163 in text


@pytest.mark.dovecot
def test_admin_told_of_links(summary_sent):
    alert = next(mail for mail in replies(summary_sent) if mail["X-Zhoubao-Notice"] == "alert")
    text = alert.get_body(("plain",)).get_content()

    assert alert["To"] == COUNTY_ADDRESS
    assert LINK_163 in text
    assert "水定镇" in alert["Subject"]


@pytest.mark.dovecot
def test_second_cycle_sends_no_second_alert(summary_sent):
    run_once(summary_sent, now="2024-03-18T13:00:00+08:00")

    kinds = [mail["X-Zhoubao-Notice"] for mail in replies(summary_sent)]
    assert kinds.count("alert") == 1
    assert kinds.count("summary-receipt") == 1


@pytest.mark.dovecot
def test_summary_without_links_no_alert(service_setup):
    deliver(service_setup.account, summary_mail(links=()))

    assert run_once(service_setup, now="2024-03-18T12:00:00+08:00").exit_code == 0

    assert [mail["X-Zhoubao-Notice"] for mail in replies(service_setup)] == ["summary-receipt"]


# --- the receipt's text ------------------------------------------------------------------------------


def rendered_receipt():
    notice = SummaryReceiptNotice(unit="水定镇", received_at=at(29, 11, 0),
                                  files=[("水定镇活动总结.docx", 36_864), ("培训现场1.jpg", 2_516_582)],
                                  links=[LINK_163], deadline=dt.datetime(2024, 3, 20, 18, tzinfo=BEIJING))
    return render_notice(notice, signature="霍城县科协")


def test_receipt_subject_names_unit():
    assert rendered_receipt().subject == "回执：水定镇科技之冬总结材料已收到"


def test_receipt_text_gives_sizes():
    text = rendered_receipt().text
    assert "1. 水定镇活动总结.docx（36 KB）" in text
    assert "2. 培训现场1.jpg（2.4 MB）" in text


def test_receipt_text_gives_deadline_as_office_writes():
    assert "2024年3月20日" in rendered_receipt().text


def test_receipt_html_escapes_link():
    html = rendered_receipt().html
    assert LINK_163.replace("&", "&amp;") in html
    assert "培训现场1.jpg（2.4 MB）" in html


# --- zhoubao materials -------------------------------------------------------------------------------


def materials(setup, *args: str):
    from click.testing import CliRunner

    from service.cli import main

    return CliRunner().invoke(main, ["--config", str(setup.config_path), "materials", *args])


@pytest.mark.dovecot
def test_materials_lists_files_and_link(summary_sent):
    output = materials(summary_sent).output
    assert "水定镇  2023年12月29日 11:00收到" in output
    assert "文件：培训现场1.jpg（1 KB）" in output
    assert f"下载链接：{LINK_163}" in output


@pytest.mark.dovecot
def test_materials_save_writes_files(summary_sent, tmp_path):
    result = materials(summary_sent, "--save", str(tmp_path / "材料"))

    assert "已保存 2 个文件" in result.output
    assert (tmp_path / "材料" / "水定镇" / "培训现场1.jpg").read_bytes() == PHOTO


@pytest.mark.dovecot
def test_materials_save_twice_writes_nothing_new(summary_sent, tmp_path):
    materials(summary_sent, "--save", str(tmp_path / "材料"))
    result = materials(summary_sent, "--save", str(tmp_path / "材料"))

    assert "已保存 0 个文件" in result.output
    assert sorted(path.name for path in (tmp_path / "材料" / "水定镇").iterdir()) == ["培训现场1.jpg", "水定镇活动总结.docx"]


@pytest.mark.dovecot
def test_admin_alert_link_clickable(summary_sent):
    alert = next(mail for mail in replies(summary_sent) if mail["X-Zhoubao-Notice"] == "alert")
    html = alert.get_body(("html",)).get_content()
    assert f'<a href="{LINK_163.replace("&", "&amp;")}"' in html
