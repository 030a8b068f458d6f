"""Rendering notices: subjects, Chinese text and HTML for each reply kind.

Rejections are built from real .xlsx bytes through the readers and rules, so the reply prints
what a clerk who sent that table would read.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest.locate import locate_tables
from ingest.readers import read_grids
from ingest.rules import RULES, check_table
from ingest.table import CheckedReport, RuleId
from notify.notices import HeldNotice, ReceiptNotice, RejectionNotice, UnreadableNotice
from notify.render import format_datetime, render_notice
from service.samples.tables import SAMPLE_ROWS, build_xlsx

BEIJING = ZoneInfo("Asia/Shanghai")
DEADLINE_WEEK_3 = dt.datetime(2023, 12, 22, 18, 0, tzinfo=BEIJING)


def checked(rows: list[tuple], unit: str = "三道河乡") -> CheckedReport:
    tables = locate_tables(read_grids(build_xlsx(rows, unit=unit), "xlsx"))
    return check_table(tables[0], first_week=False)


def receipt(**changes) -> ReceiptNotice:
    report = checked([SAMPLE_ROWS["valid"]], unit="水定镇")
    fields = dict(
        unit="水定镇",
        week=3,
        deadline=DEADLINE_WEEK_3,
        late=False,
        received_at=dt.datetime(2023, 12, 22, 8, 42, tzinfo=dt.timezone.utc),
        file_name="水定镇第3周科技之冬周统计表.xlsx",
        source=report.table.source,
        reporter="李明",
        rows=[dict(row) for row in report.values],
        totals=report.totals(),
    )
    fields.update(changes)
    return ReceiptNotice(**fields)


def rejection(rows: list[tuple], **changes) -> RejectionNotice:
    report = checked(rows)
    fields = dict(
        unit="三道河乡",
        week=3,
        deadline=DEADLINE_WEEK_3,
        late=True,
        received_at=dt.datetime(2023, 12, 22, 18, 47, tzinfo=BEIJING),
        file_name="三道河乡周统计表.xlsx",
        source=report.table.source,
        reporter="刘建国",
        violations=report.violations,
    )
    fields.update(changes)
    return RejectionNotice(**fields)


# --- receipt -----------------------------------------------------------------------------------


def test_receipt_subject():
    assert render_notice(receipt()).subject == "回执：水定镇第3周科技之冬周统计表已收到"


def test_receipt_deadline_in_beijing_time():
    assert "截止时间 2023年12月22日 18:00（北京时间）" in render_notice(receipt()).text


def test_receipt_received_time_converted():
    # 08:42 UTC is 16:42 in Beijing.
    assert "收到时间：2023年12月22日 16:42（北京时间），按时报送" in render_notice(receipt()).text


def test_receipt_totals_by_column_name():
    text = render_notice(receipt()).text

    assert "7栏（本周合计人次）：892" in text


def test_receipt_lists_every_column():
    text = render_notice(receipt()).text

    assert all(f"{column}栏（" in text for column in range(2, 21))


def test_receipt_several_rows_say_totals():
    notice = receipt(rows=[{}, {}, {}])

    assert "各栏合计（表中共3行数据）" in render_notice(notice).text


def test_receipt_late():
    notice = receipt(received_at=dt.datetime(2023, 12, 22, 18, 47, tzinfo=BEIJING), late=True)

    assert "已超过截止时间，记为迟报" in render_notice(notice).text


def test_receipt_duplicate_says_already_received():
    text = render_notice(receipt(duplicate=True)).text

    assert "此前已收到。本次发来的是同一份文件" in text


def test_receipt_html_total_cell():
    html = render_notice(receipt()).html

    assert ">7栏（本周合计人次）</td><td" in html


def test_receipt_signature():
    assert "霍城县科协" in render_notice(receipt(), signature="霍城县科协").text


def test_receipt_other_zone_named_by_offset():
    notice = receipt(tz=ZoneInfo("Asia/Urumqi"))

    assert "截止时间 2023年12月22日 16:00（UTC+06:00）" in render_notice(notice).text


# --- rejection ---------------------------------------------------------------------------------


def test_rejection_subject():
    rendered = render_notice(rejection([SAMPLE_ROWS["r1_broken"]]))

    assert rendered.subject == "退回通知：三道河乡第3周统计表未通过校验，请修改后重新报送"


def test_rejection_prints_rule():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "校验规则：6栏=9+11+13+15+17+19" in text


def test_rejection_explains_and_fixes():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert RULES[RuleId.R1].explanation in text
    assert RULES[RuleId.R1].fix in text


def test_rejection_values_found():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "6栏（本周合计场次）：填写为 10" in text
    assert "9栏（开展政策宣讲场次）：填写为 3" in text


def test_rejection_expected_value():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "要求：应等于9" in text


def test_rejection_cell_and_row():
    # Row 8 of the Excel rebuild is the first data row, and 6栏 is its column E.
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "位置：第1行数据（单元格 Sheet1!E8）" in text


def test_rejection_every_violation_listed():
    text = render_notice(rejection([SAMPLE_ROWS["r2_r5_broken"]])).text

    assert "共发现2处问题" in text
    assert "校验规则：7栏=10+12+14+16+18+20" in text
    assert "校验规则：8栏<7栏" in text


def test_rejection_asks_to_resend():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "请修改后尽快重新发送到本邮箱" in text


def test_rejection_late_noted():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]])).text

    assert "18:47（北京时间），已超过截止时间" in text


def test_rejection_duplicate_noted():
    text = render_notice(rejection([SAMPLE_ROWS["r1_broken"]], duplicate=True)).text

    assert "上次指出的问题尚未修改" in text


def test_rejection_text_value_quoted():
    row = list(SAMPLE_ROWS["valid"])
    row[7] = "四场"  # column 9
    text = render_notice(rejection([tuple(row)])).text

    assert "9栏（开展政策宣讲场次）：填写为 “四场”" in text


def test_rejection_html_escapes_cell_text():
    row = list(SAMPLE_ROWS["valid"])
    row[7] = "<b>4</b>"
    html = render_notice(rejection([tuple(row)])).html

    assert "“&lt;b&gt;4&lt;/b&gt;”" in html


def test_rejection_text_not_escaped():
    row = list(SAMPLE_ROWS["valid"])
    row[7] = "<b>4</b>"
    text = render_notice(rejection([tuple(row)])).text

    assert "“<b>4</b>”" in text


def test_rejection_empty_table_location():
    report = checked([])
    notice = rejection([], violations=report.violations)

    assert "位置：Sheet1\n" in render_notice(notice).text


# --- unreadable --------------------------------------------------------------------------------


def unreadable(**changes) -> UnreadableNotice:
    fields = dict(
        received_subject="三宫回族乡第3周科技之冬周统计表",
        received_at=dt.datetime(2023, 12, 22, 17, 58, tzinfo=BEIJING),
        unit="三宫回族乡",
    )
    fields.update(changes)
    return UnreadableNotice(**fields)


def test_unreadable_no_attachment_subject():
    assert render_notice(unreadable()).subject == "退回通知：三宫回族乡来信未附周统计表，请补发附件"


def test_unreadable_no_attachment_said():
    assert "邮件中没有附件。" in render_notice(unreadable()).text


def test_unreadable_echoes_subject():
    assert "（主题：“三宫回族乡第3周科技之冬周统计表”）" in render_notice(unreadable()).text


def test_unreadable_names_each_attachment():
    notice = unreadable(attachments=[("周报.jpg", "这是图片，无法读取。"), ("周报.pdf", "这是 PDF 文件。")])
    text = render_notice(notice).text

    assert "附件1：周报.jpg\n原因：这是图片，无法读取。" in text
    assert "附件2：周报.pdf\n原因：这是 PDF 文件。" in text


def test_unreadable_attachment_subject():
    notice = unreadable(attachments=[("周报.jpg", "这是图片，无法读取。")])

    assert render_notice(notice).subject == "退回通知：三宫回族乡来信附件无法读取，请重新报送"


def test_unreadable_says_what_is_needed():
    assert "附件二周统计表（Excel .xlsx 或 Word .docx 文件）" in render_notice(unreadable()).text


def test_unreadable_unknown_unit_greeting():
    assert render_notice(unreadable(unit=None)).text.startswith("您好：")


def test_unreadable_html_lists_attachment():
    notice = unreadable(attachments=[("周报.jpg", "这是图片，无法读取。")])

    assert ">周报.jpg</td>" in render_notice(notice).html


# --- held --------------------------------------------------------------------------------------


def held(**changes) -> HeldNotice:
    fields = dict(
        reason="发件地址 new_clerk@example.test 未在配置中登记为任何填报单位。",
        unit_text="水定镇",
        sender="new_clerk@example.test",
        received_subject="水定镇第3周科技之冬周统计表",
        received_at=dt.datetime(2023, 12, 22, 17, 0, tzinfo=BEIJING),
        file_names=["水定镇第3周.xlsx"],
    )
    fields.update(changes)
    return HeldNotice(**fields)


def test_held_subject():
    assert render_notice(held()).subject == "回执：水定镇周统计表已收到，待人工核对"


def test_held_gives_reason():
    assert "原因：发件地址 new_clerk@example.test 未在配置中登记" in render_notice(held()).text


def test_held_nothing_needed():
    assert "您暂时不需要做任何事情，也无需重新发送" in render_notice(held()).text


def test_held_names_county():
    text = render_notice(held(), signature="霍城县科协").text

    assert "已转霍城县科协人工核对" in text


def test_held_without_unit_text_subject():
    assert render_notice(held(unit_text=None)).subject == "回执：周统计表已收到，待人工核对"


# --- all kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["receipt", "rejection", "unreadable", "held"])
def test_render_html_is_document(kind):
    notices = {
        "receipt": receipt(),
        "rejection": rejection([SAMPLE_ROWS["r1_broken"]]),
        "unreadable": unreadable(),
        "held": held(),
    }
    html = render_notice(notices[kind]).html

    assert html.startswith("<!DOCTYPE html>")
    assert 'name="viewport"' in html


def test_format_datetime_no_zero_padding():
    moment = dt.datetime(2023, 12, 8, 9, 5, tzinfo=BEIJING)

    assert format_datetime(moment) == "2023年12月8日 09:05（北京时间）"


def test_render_custom_template_dir(tmp_path):
    (tmp_path / "held.subject.j2").write_text("自定义：{{ notice.sender }}", encoding="utf-8")
    (tmp_path / "held.txt.j2").write_text("正文", encoding="utf-8")
    (tmp_path / "held.html.j2").write_text("<p>{{ notice.reason }}</p>", encoding="utf-8")

    rendered = render_notice(held(reason="<原因>"), tmp_path)

    assert rendered.subject == "自定义：new_clerk@example.test"
    assert rendered.html == "<p>&lt;原因&gt;</p>"


def test_receipt_lists_ignored_files():
    rendered = render_notice(receipt(ignored_files=["照片1.jpg", "说明.pdf"]))
    assert "未予处理：照片1.jpg、说明.pdf" in rendered.text
    assert "照片1.jpg、说明.pdf" in rendered.html


def test_rejection_lists_ignored_files():
    rendered = render_notice(rejection([SAMPLE_ROWS["r1_broken"]], ignored_files=["照片1.jpg"]))
    assert "未予处理：照片1.jpg" in rendered.text
