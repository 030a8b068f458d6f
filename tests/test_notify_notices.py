"""Rendering the chasing notices, the admin's digest and alerts, in text and HTML.

Returned reports are built from real .xlsx bytes through the readers and rules, so a notice
repeats what the clerk's rejection said.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest.calendar import Campaign
from ingest.consistency import WeekTotals, check_consistency
from ingest.locate import locate_tables
from ingest.readers import read_grids
from ingest.rules import RULES, check_table
from ingest.table import RuleId, Violation
from notify.notices import (
    AlertNotice,
    BouncingRecipient,
    Contact,
    DigestNotice,
    FailedMail,
    HeldMail,
    OneOffDeadline,
    OneOffStatus,
    OverdueNotice,
    ReminderNotice,
    ReportedUnit,
    ReturnedReport,
    ReturnedUnit,
    SecondOverdueNotice,
    UnitFinding,
)
from notify.render import format_date, format_deadline, render_notice
from service.samples.tables import SAMPLE_ROWS, build_xlsx

BEIJING = ZoneInfo("Asia/Shanghai")
DEADLINE_WEEK_3 = dt.datetime(2023, 12, 22, 18, 0, tzinfo=BEIJING)
DEMAND_DEADLINE = dt.datetime(2023, 12, 4, 18, 0, tzinfo=BEIJING)
SUMMARY_DEADLINE = dt.datetime(2024, 3, 20, 18, 0, tzinfo=BEIJING)
BASIS = "关于开展2023-2024年“科技之冬”活动的通知"
CONTACT = Contact(name="贾老师", phone="0999-3021234", office="霍城县科协办公室")


def r1_violations() -> list[Violation]:
    tables = locate_tables(read_grids(build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡"), "xlsx"))
    return check_table(tables[0], first_week=False).violations


def returned_report() -> ReturnedReport:
    return ReturnedReport(received_at=dt.datetime(2023, 12, 22, 9, 30, tzinfo=BEIJING),
                          file_name="三道河乡周统计表.xlsx", violations=r1_violations())


def reminder(**changes) -> ReminderNotice:
    fields = dict(unit="水定镇", week=3, deadline=DEADLINE_WEEK_3,
                  as_of=dt.datetime(2023, 12, 22, 12, 0, tzinfo=BEIJING), basis=BASIS, contact=CONTACT)
    fields.update(changes)
    return ReminderNotice(**fields)


def overdue(**changes) -> OverdueNotice:
    fields = dict(unit="三道河乡", week=3, deadline=DEADLINE_WEEK_3,
                  as_of=dt.datetime(2023, 12, 22, 18, 30, tzinfo=BEIJING), basis=BASIS, contact=CONTACT,
                  new_deadline=dt.datetime(2023, 12, 25, 18, 0, tzinfo=BEIJING))
    fields.update(changes)
    return OverdueNotice(**fields)


def second_overdue(**changes) -> SecondOverdueNotice:
    fields = dict(unit="兰干乡", week=3, deadline=DEADLINE_WEEK_3,
                  as_of=dt.datetime(2023, 12, 25, 10, 0, tzinfo=BEIJING), contact=CONTACT,
                  first_sent_at=dt.datetime(2023, 12, 22, 18, 30, tzinfo=BEIJING))
    fields.update(changes)
    return SecondOverdueNotice(**fields)


# --- dates -------------------------------------------------------------------------------------


def test_format_date_signature_style():
    assert format_date(SUMMARY_DEADLINE) == "2024年3月20日"


def test_format_date_local_day():
    # 17:00 UTC on 19 March is already 20 March in Beijing.
    assert format_date(dt.datetime(2024, 3, 19, 17, 0, tzinfo=dt.timezone.utc)) == "2024年3月20日"


def test_format_deadline_weekday():
    assert format_deadline(DEADLINE_WEEK_3) == "2023年12月22日（星期五）18:00（北京时间）"


# --- reminder ----------------------------------------------------------------------------------


def test_reminder_subject():
    subject = render_notice(reminder()).subject
    assert subject == "报送提醒：水定镇第3周科技之冬周统计表尚未收到，2023年12月22日截止"


def test_reminder_greets_unit():
    assert render_notice(reminder()).text.startswith("水定镇：\n")


def test_reminder_basis_named():
    text = render_notice(reminder()).text
    assert "按照《关于开展2023-2024年“科技之冬”活动的通知》要求" in text


def test_reminder_basis_default():
    text = render_notice(reminder(basis="")).text
    assert "按照“科技之冬”活动通知要求" in text


def test_reminder_deadline_with_weekday():
    text = render_notice(reminder()).text
    assert "第3周统计表的截止时间为2023年12月22日（星期五）18:00（北京时间）。" in text


def test_reminder_status_as_of():
    text = render_notice(reminder()).text
    assert "截至2023年12月22日 12:00（北京时间），尚未收到你单位第3周“科技之冬”周统计表。" in text


def test_reminder_what_to_do():
    text = render_notice(reminder()).text
    assert "请于2023年12月22日 18:00（北京时间）前将填好的附件二周统计表" in text


def test_reminder_contact_lines():
    text = render_notice(reminder()).text
    assert "联系人：霍城县科协办公室 贾老师\n联系电话：0999-3021234\n" in text


def test_reminder_contact_phone_only():
    text = render_notice(reminder(contact=Contact(phone="0999-3021234"))).text
    assert "联系人" not in text
    assert "联系电话：0999-3021234" in text


def test_reminder_without_contact():
    text = render_notice(reminder(contact=Contact())).text
    assert "联系电话" not in text


def test_reminder_signature_and_date():
    text = render_notice(reminder(), signature="霍城县科协").text
    assert text.endswith("霍城县科协\n2023年12月22日\n（本邮件由系统自动发送。）\n")


def test_reminder_other_zone_named():
    text = render_notice(reminder(tz=ZoneInfo("Asia/Urumqi"))).text
    assert "截止时间为2023年12月22日（星期五）16:00（UTC+06:00）" in text


def test_reminder_html_contact_cell():
    html = render_notice(reminder()).html
    assert ">霍城县科协办公室 贾老师</td>" in html


def test_reminder_html_signed_on():
    html = render_notice(reminder(), signature="霍城县科协").html
    assert "霍城县科协<br>2023年12月22日<br>" in html


def test_reminder_html_escapes_unit():
    html = render_notice(reminder(unit="<水定镇>")).html
    assert "&lt;水定镇&gt;：" in html


def test_reminder_returned_subject():
    subject = render_notice(reminder(unit="三道河乡", returned=returned_report())).subject
    assert subject == "报送提醒：三道河乡第3周科技之冬周统计表已退回，请于2023年12月22日截止前更正重报"


def test_reminder_returned_says_so():
    text = render_notice(reminder(unit="三道河乡", returned=returned_report())).text
    assert ("你单位于2023年12月22日 09:30（北京时间）报送的第3周“科技之冬”周统计表"
            "（文件：三道河乡周统计表.xlsx）未通过校验，已退回，共1处问题") in text


def test_reminder_returned_repeats_rule():
    text = render_notice(reminder(unit="三道河乡", returned=returned_report())).text
    assert "问题1　校验规则：6栏=9+11+13+15+17+19" in text


def test_reminder_returned_repeats_fix():
    text = render_notice(reminder(unit="三道河乡", returned=returned_report())).text
    assert RULES[RuleId.R1].fix in text


def test_reminder_returned_values_found():
    text = render_notice(reminder(unit="三道河乡", returned=returned_report())).text
    assert "6栏（本周合计场次）：填写为 10" in text


def test_reminder_returned_asks_resend():
    text = render_notice(reminder(unit="三道河乡", returned=returned_report())).text
    assert "于2023年12月22日 18:00（北京时间）前将修改后的表格重新发送到本邮箱" in text


def test_reminder_returned_html_rule():
    html = render_notice(reminder(unit="三道河乡", returned=returned_report())).html
    assert ">6栏=9+11+13+15+17+19</td>" in html


def test_reminder_header_kind_week():
    assert reminder().header_kind == "reminder; week=3"


def test_reminder_needs_week_or_deadline():
    with pytest.raises(ValueError):
        reminder(week=None)


def test_reminder_not_both():
    with pytest.raises(ValueError):
        reminder(deadline_name=OneOffDeadline.SUMMARY)


# --- one-off deadlines -------------------------------------------------------------------------


def summary_reminder() -> ReminderNotice:
    return reminder(week=None, deadline_name=OneOffDeadline.SUMMARY, deadline=SUMMARY_DEADLINE,
                    as_of=dt.datetime(2024, 3, 19, 10, 0, tzinfo=BEIJING))


def test_summary_reminder_subject():
    subject = render_notice(summary_reminder()).subject
    assert subject == "报送提醒：水定镇科技之冬总结材料尚未收到，2024年3月20日截止"


def test_summary_reminder_deadline():
    text = render_notice(summary_reminder()).text
    assert "应于2024年3月20日（星期三）18:00（北京时间）前报送总结材料。" in text


def test_summary_reminder_contents():
    text = render_notice(summary_reminder()).text
    assert "活动照片、视频和媒体报道等材料" in text


def test_summary_reminder_signed_on():
    text = render_notice(summary_reminder(), signature="霍城县科协").text
    assert "霍城县科协\n2024年3月19日\n" in text


def test_summary_header_kind():
    assert summary_reminder().header_kind == "reminder; deadline=summary"


def test_demand_overdue_subject():
    notice = overdue(week=None, deadline_name=OneOffDeadline.DEMAND_FORM, deadline=DEMAND_DEADLINE,
                     as_of=dt.datetime(2023, 12, 4, 18, 30, tzinfo=BEIJING), new_deadline=None)
    subject = render_notice(notice).subject
    assert subject == "逾期未报通知：三道河乡科技之冬活动需求征集表（附件1）未按时报送，请尽快补报"


def test_demand_overdue_header_kind():
    notice = overdue(week=None, deadline_name=OneOffDeadline.DEMAND_FORM, deadline=DEMAND_DEADLINE)
    assert notice.header_kind == "overdue; deadline=demand-form"


def test_demand_overdue_deadline_date():
    notice = overdue(week=None, deadline_name=OneOffDeadline.DEMAND_FORM, deadline=DEMAND_DEADLINE)
    assert "应于2023年12月4日（星期一）18:00（北京时间）前报送活动需求征集表（附件1）" in render_notice(notice).text


# --- overdue -----------------------------------------------------------------------------------


def test_overdue_subject():
    subject = render_notice(overdue()).subject
    assert subject == "逾期未报通知：三道河乡第3周科技之冬周统计表未按时报送，请于2023年12月25日前补报"


def test_overdue_status():
    text = render_notice(overdue()).text
    assert "截至2023年12月22日 18:30（北京时间），截止时间已过，尚未收到你单位第3周“科技之冬”周统计表" in text


def test_overdue_new_deadline():
    text = render_notice(overdue()).text
    assert "请于2023年12月25日 18:00（北京时间）前将填好的附件二周统计表" in text


def test_overdue_without_new_deadline():
    text = render_notice(overdue(new_deadline=None)).text
    assert "请尽快将填好的附件二周统计表" in text


def test_overdue_late_report_recorded():
    assert "补报的报表照常登记，记为迟报。" in render_notice(overdue()).text


def test_overdue_returned_subject():
    subject = render_notice(overdue(returned=returned_report())).subject
    assert subject.startswith("逾期未报通知：三道河乡第3周科技之冬周统计表已退回未更正")


def test_overdue_returned_counts_missing():
    text = render_notice(overdue(returned=returned_report())).text
    assert "退回的报表不予登记，按未报送计算。" in text


def test_overdue_returned_repeats_rule():
    text = render_notice(overdue(returned=returned_report())).text
    assert "校验规则：6栏=9+11+13+15+17+19" in text


def test_overdue_html_red_status():
    html = render_notice(overdue()).html
    assert "color:#b00000;font-weight:bold;\">截至2023年12月22日 18:30（北京时间）" in html


def test_overdue_header_kind():
    assert overdue().header_kind == "overdue; week=3"


# --- second overdue ----------------------------------------------------------------------------


def test_second_overdue_subject():
    subject = render_notice(second_overdue()).subject
    assert subject == "再次催报：兰干乡第3周科技之冬周统计表仍未报送，请尽快补报"


def test_second_overdue_names_first():
    text = render_notice(second_overdue()).text
    assert "2023年12月22日 18:30（北京时间）已向你单位发出逾期未报通知。" in text


def test_second_overdue_again():
    text = render_notice(second_overdue()).text
    assert "截至2023年12月25日 10:00（北京时间），仍未收到你单位第3周“科技之冬”周统计表，现再次通知。" in text


def test_second_overdue_without_first_claims_none():
    # The service was down when the first notice was due, so only this one goes out.
    text = render_notice(second_overdue(first_sent_at=None)).text
    assert "已向你单位发出逾期未报通知" not in text
    assert "截止时间已过，仍未收到你单位第3周“科技之冬”周统计表，记为逾期未报。" in text


def test_second_overdue_html_again():
    assert "现再次通知。" in render_notice(second_overdue()).html


def test_second_overdue_header_kind():
    assert second_overdue().header_kind == "overdue-2; week=3"


# --- digest ------------------------------------------------------------------------------------


def running_total_finding():
    campaign = Campaign(dt.datetime(2023, 12, 8, 18, 0, tzinfo=BEIJING), SUMMARY_DEADLINE - dt.timedelta(days=5),
                        BEIJING)
    previous = WeekTotals(2, {4: 31, 5: 1493, 6: 12, 7: 700})
    current = WeekTotals(3, {4: 50, 5: 2385, 6: 15, 7: 892})
    return check_consistency(current, previous, campaign, villages=None)[0]


def digest(**changes) -> DigestNotice:
    fields = dict(
        week=3,
        deadline=DEADLINE_WEEK_3,
        as_of=dt.datetime(2023, 12, 22, 19, 0, tzinfo=BEIJING),
        on_time=[ReportedUnit("水定镇", dt.datetime(2023, 12, 22, 16, 42, tzinfo=BEIJING)),
                 ReportedUnit("清水河镇", dt.datetime(2023, 12, 22, 17, 5, tzinfo=BEIJING))],
        late=[ReportedUnit("惠远镇", dt.datetime(2023, 12, 22, 18, 5, tzinfo=BEIJING))],
        returned=[ReturnedUnit("三道河乡", dt.datetime(2023, 12, 22, 18, 47, tzinfo=BEIJING),
                               r1_violations() * 2)],
        missing=["兰干乡", "大西沟乡"],
        week_totals={6: 44, 7: 2556},
        campaign_totals={6: 131, 7: 7420},
        findings=[UnitFinding("水定镇", 3, running_total_finding())],
        held_mails=[HeldMail(dt.datetime(2023, 12, 22, 17, 0, tzinfo=BEIJING), "new_clerk@example.test",
                       "水定镇第3周", "发件地址未在配置中登记。")],
        failed_mails=[FailedMail("gone@example.test", "回执：惠远镇第3周科技之冬周统计表已收到",
                                 "550 Mailbox not found", dt.datetime(2023, 12, 22, 18, 6, tzinfo=BEIJING))],
        one_off=[OneOffStatus(OneOffDeadline.DEMAND_FORM, DEMAND_DEADLINE, ["水定镇", "惠远镇"], ["兰干乡"])],
    )
    fields.update(changes)
    return DigestNotice(**fields)


def test_digest_subject_counts():
    subject = render_notice(digest()).subject
    assert subject == "每周汇总：第3周科技之冬周统计表应报6个，按时2个、迟报1个、退回未更正1个、未报2个"


def test_digest_summary_line():
    text = render_notice(digest()).text
    assert "应报送6个单位：按时报送2个，迟报1个，退回未更正1个，未报送2个。" in text


def test_digest_on_time_with_time():
    text = render_notice(digest()).text
    assert "  水定镇，2023年12月22日 16:42（北京时间）收到\n" in text


def test_digest_late_listed():
    text = render_notice(digest()).text
    assert "迟报（1个）：\n  惠远镇，2023年12月22日 18:05（北京时间）收到\n" in text


def test_digest_returned_rule_once():
    text = render_notice(digest()).text
    assert "三道河乡，2023年12月22日 18:47（北京时间）收到，未通过：6栏=9+11+13+15+17+19\n" in text


def test_digest_missing_listed():
    assert "未报送（2个）：兰干乡、大西沟乡" in render_notice(digest()).text


def test_digest_week_and_campaign_totals():
    text = render_notice(digest()).text
    assert "7栏（本周合计人次）：本周 2556，活动以来 7420" in text


def test_digest_unsummed_column_dash():
    text = render_notice(digest()).text
    assert "4栏（累计场次）：本周 0，活动以来 —" in text


def test_digest_finding_message():
    finding = running_total_finding()
    text = render_notice(digest()).text
    assert f"1. 水定镇第3周：{finding.summary}" in text


def test_digest_finding_explained():
    finding = UnitFinding("水定镇", 3, running_total_finding(), explained=True)
    text = render_notice(digest(findings=[finding])).text
    assert "（已说明）" in text


def test_digest_held_mail():
    text = render_notice(digest()).text
    assert "new_clerk@example.test 的邮件（主题：“水定镇第3周”）\n   原因：发件地址未在配置中登记。" in text


def test_digest_failed_mail():
    text = render_notice(digest()).text
    assert "发往 gone@example.test" in text
    assert "服务器回复：550 Mailbox not found" in text


def test_digest_one_off_line():
    text = render_notice(digest()).text
    assert "活动需求征集表（附件1），截止时间2023年12月4日 18:00（北京时间）：已报送2个，未报送1个：兰干乡。" in text


def test_digest_empty_sections_say_none():
    text = render_notice(digest(findings=[], held_mails=[], failed_mails=[], bouncing=[])).text
    assert text.count("无。") == 4


def test_digest_lists_bouncing_address():
    bounce = BouncingRecipient("huiyuan_kx@example.test", "惠远镇", dt.datetime(2023, 12, 20, 9, 5, tzinfo=BEIJING),
                               "5.1.1 550 User not found")
    rendered = render_notice(digest(bouncing=[bounce]))

    assert "1. huiyuan_kx@example.test（惠远镇），2023年12月20日 09:05（北京时间）退信" in rendered.text
    assert "5.1.1 550 User not found" in rendered.html


def test_digest_without_one_off():
    assert "其他报送事项" not in render_notice(digest(one_off=[])).text


def test_digest_signed_on():
    text = render_notice(digest(), signature="霍城县科协").text
    assert "霍城县科协\n2023年12月22日\n" in text


def test_digest_html_totals_row():
    html = render_notice(digest()).html
    assert ">7栏（本周合计人次）</td><td style=\"padding:6px 8px;border:1px solid #dddddd;text-align:right;\">2556</td>" in html


def test_digest_html_escapes_subject():
    held_mails = [HeldMail(dt.datetime(2023, 12, 22, 17, 0, tzinfo=BEIJING), "x@example.test", "<b>周报</b>", "未登记")]
    html = render_notice(digest(held_mails=held_mails)).html
    assert "“&lt;b&gt;周报&lt;/b&gt;”" in html


def test_digest_header_kind():
    assert digest().header_kind == "digest; week=3"


# --- alert -------------------------------------------------------------------------------------


def alert(**changes) -> AlertNotice:
    fields = dict(title="发信服务器拒绝登录",
                  lines=["smtp.163.com 回复 535 Error: authentication failed。", "请在邮箱设置中重新生成授权码。"],
                  as_of=dt.datetime(2023, 12, 22, 17, 1, tzinfo=BEIJING))
    fields.update(changes)
    return AlertNotice(**fields)


def test_alert_subject():
    assert render_notice(alert()).subject == "系统提示：发信服务器拒绝登录"


def test_alert_lines_as_paragraphs():
    text = render_notice(alert()).text
    assert "535 Error: authentication failed。\n\n请在邮箱设置中重新生成授权码。" in text


def test_alert_as_of():
    assert "以上情况截至2023年12月22日 17:01（北京时间）。" in render_notice(alert()).text


def test_alert_without_time_undated():
    text = render_notice(alert(as_of=None), signature="霍城县科协").text
    assert text.endswith("霍城县科协\n（本邮件由系统自动发送。）\n")


def test_alert_html_escapes_line():
    html = render_notice(alert(lines=["<script>"])).html
    assert "&lt;script&gt;" in html


# --- templates the admin overrides -------------------------------------------------------------


def test_override_subject_only(tmp_path):
    (tmp_path / "reminder.subject.j2").write_text("催报：{{ notice.unit }}", encoding="utf-8")
    rendered = render_notice(reminder(), tmp_path)
    assert rendered.subject == "催报：水定镇"
    assert "截至2023年12月22日 12:00（北京时间）" in rendered.text


def test_override_footer_used_by_packaged(tmp_path):
    (tmp_path / "_footer.txt.j2").write_text("\n霍城县科学技术协会（盖章）\n", encoding="utf-8")
    text = render_notice(reminder(), tmp_path).text
    assert text.endswith("霍城县科学技术协会（盖章）\n")


def test_override_html_autoescaped(tmp_path):
    (tmp_path / "alert.html.j2").write_text("<p>{{ notice.title }}</p>", encoding="utf-8")
    assert render_notice(alert(title="<b>"), tmp_path).html == "<p>&lt;b&gt;</p>"


def test_override_missing_folder_falls_back(tmp_path):
    rendered = render_notice(alert(), tmp_path / "absent")
    assert rendered.subject == "系统提示：发信服务器拒绝登录"


def test_summary_reminder_download_links():
    text = render_notice(summary_reminder()).text
    assert "链接过期后无法下载" in text


def test_summary_overdue_download_links():
    notice = overdue(week=None, deadline_name=OneOffDeadline.SUMMARY, deadline=SUMMARY_DEADLINE,
                     as_of=dt.datetime(2024, 3, 20, 18, 30, tzinfo=BEIJING), new_deadline=None)
    assert "链接过期后无法下载" in render_notice(notice).html


def test_weekly_reminder_no_link_advice():
    assert "超大附件" not in render_notice(reminder()).text


def test_digest_finding_leaves_out_clerk_request():
    assert "请回复说明情况" not in render_notice(digest()).text


def test_digest_finding_shows_admin_note():
    explained = UnitFinding("水定镇", 3, running_total_finding(), explained=True, note="已电话核实，上周漏报")
    assert "（已说明：已电话核实，上周漏报）" in render_notice(digest(findings=[explained])).text
