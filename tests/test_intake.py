"""End to end: township mails in a real Dovecot inbox become stored reports and replies.

Each test writes mails as Chinese clients send them into the test account, runs
``zhoubao run --once`` through the CLI, and reads the database, the SMTP sink and the mailbox.
"""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy

import pytest
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx
from store import repository
from store.models import MessageOutcome
from store.session import Database
from tests.fixtures.smtp import free_port

pytestmark = pytest.mark.dovecot

BEIJING = dt.timezone(dt.timedelta(hours=8))
NOW = "2023-12-29T20:00:00+08:00"
COLUMNS = [str(column) for column in range(2, 21)]


def at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2023, 12, day, hour, minute, tzinfo=BEIJING)


def deliver(account, raw: bytes) -> None:
    """Put a mail into the inbox with the INTERNALDATE of its Date header, as a server would."""
    sent = email.message_from_bytes(raw, policy=policy.default)["Date"].datetime
    account.append(raw, internal_date=sent)


def run_once(setup, now: str = NOW):
    result = CliRunner().invoke(main, ["--config", str(setup.config_path), "--now", now, "run", "--once"])
    return result


def submissions(setup) -> list[dict]:
    result = CliRunner().invoke(main, ["--config", str(setup.config_path), "submissions", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def outcomes(setup) -> dict[MessageOutcome, int]:
    database = Database(setup.database_url)
    try:
        with database.session() as session:
            return {k: v for k, v in repository.message_counts(session).items() if v}
    finally:
        database.dispose()


def replies(setup) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(item.raw, policy=policy.default) for item in setup.sink.messages]


def season_mails() -> list[bytes]:
    """The twelve mails of the county's sample week, built the way each client writes them."""
    shuiding = build_xlsx([SAMPLE_ROWS["valid"]])
    sandaohe = build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡", reporter="刘建国")
    return [
        build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
                   attachment=shuiding, filename="水定镇第3周科技之冬周统计表.xlsx", date=at(22, 16, 42),
                   message_id="<m01@shuiding.example.test>"),
        build_mail(MailStyle.THUNDERBIRD, sender="qingshuihe_kx@163.com",
                   subject="清水河镇“科技之冬”活动开展周统计表（第3周）",
                   attachment=build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇"),
                   filename="清水河镇“科技之冬”活动开展周统计表（第3周）.docx", date=at(22, 17, 5)),
        build_mail(MailStyle.OUTLOOK_EXPRESS, sender="lucaogou_kx@126.com", subject="芦草沟镇科技之冬周报表（12月22日）",
                   attachment=build_xlsx([SAMPLE_ROWS["valid"]], unit="芦草沟镇人民政府", date_text="2023.12.22"),
                   filename="芦草沟镇科技之冬周报表12.22.xlsx", date=at(22, 12, 18)),
        build_mail(MailStyle.RAW_UTF8, sender="huiyuan_kx@163.com", subject="惠远镇第三周科技之冬统计表",
                   attachment=build_xlsx([SAMPLE_ROWS["blanks"]], unit="惠远镇", as_text=True),
                   filename="惠远镇第三周统计表.xlsx", date=at(22, 17, 51)),
        build_mail(MailStyle.OUTLOOK_GBK, sender="saerbulake_kx@163.com", subject="萨尔布拉克镇第4周科技之冬周统计表",
                   attachment=build_docx([SAMPLE_ROWS["valid"]], unit="萨尔布拉克镇", reporter="赵喆",
                                         date_text="2023年12月29日"),
                   filename="萨尔布拉克镇科技之冬第4周统计表.docx", date=at(29, 11, 26)),
        build_mail(MailStyle.ANDROID, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表",
                   attachment=sandaohe, filename="三道河乡周统计表.xlsx", date=at(22, 18, 47)),
        build_mail(MailStyle.FOXMAIL, sender="langan_kx@qq.com", subject="兰干乡第4周科技之冬周统计表",
                   attachment=build_docx([SAMPLE_ROWS["r2_r5_broken"]], unit="兰干乡", date_text="2023年12月29日"),
                   filename="附件二：兰干乡2023-2024科技之冬周统计表(12.29).docx", date=at(29, 17, 12)),
        build_mail(MailStyle.QQMAIL, sender="daxigou_kx@qq.com", subject="大西沟乡第3周科技之冬周统计表",
                   attachment=build_xlsx([SAMPLE_ROWS["r3_r4_broken"]], unit="大西沟乡", date_text="2023-12-22"),
                   filename="大西沟乡第3周.xlsx", date=at(22, 15, 30)),
        build_mail(MailStyle.MAILMASTER, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表（重发）",
                   attachment=shuiding, filename="水定镇第3周科技之冬周统计表.xlsx", date=at(22, 17, 20)),
        build_mail(MailStyle.WEBMAIL_163, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表（再发）",
                   attachment=sandaohe, filename="三道河乡周统计表.xlsx", date=at(22, 19, 35)),
        build_mail(MailStyle.AUTOREPLY, sender="huiyuan_kx@163.com", subject="自动回复: 惠远镇第三周科技之冬统计表",
                   date=at(22, 17, 52)),
        build_mail(MailStyle.NO_ATTACHMENT, sender="sangong_kx@163.com", subject="三宫回族乡第3周科技之冬周统计表",
                   date=at(22, 17, 58)),
    ]


@pytest.fixture
def season(service_setup):
    """GIVEN the twelve sample mails in the inbox WHEN one cycle runs."""
    for raw in season_mails():
        deliver(service_setup.account, raw)
    result = run_once(service_setup)
    assert result.exit_code == 0, result.output
    return service_setup


def by_unit(items: list[dict]) -> dict[tuple[str, int], dict]:
    return {(item["unit"], item["week"]): item for item in items}


def test_season_stores_one_submission_per_file(season):
    stored = submissions(season)
    assert sorted((item["unit"], item["week"], item["status"]) for item in stored) == sorted([
        ("水定镇", 3, "accepted"),
        ("清水河镇", 3, "accepted"),
        ("芦草沟镇", 3, "accepted"),
        ("惠远镇", 3, "accepted"),
        ("萨尔布拉克镇", 4, "accepted"),
        ("三道河乡", 3, "rejected"),
        ("兰干乡", 4, "rejected"),
        ("大西沟乡", 3, "rejected"),
    ])


@pytest.mark.parametrize(("unit", "week", "rules"), [
    ("三道河乡", 3, ["R1"]),
    ("兰干乡", 4, ["R2", "R5"]),
    ("大西沟乡", 3, ["R3", "R4"]),
    ("水定镇", 3, []),
])
def test_season_rules_violated(season, unit, week, rules):
    assert by_unit(submissions(season))[(unit, week)]["rules"] == rules


def test_season_values_as_read(season):
    stored = by_unit(submissions(season))
    valid = dict(zip(COLUMNS, SAMPLE_ROWS["valid"]))
    assert {key: stored[("清水河镇", 3)]["rows"][0][key] for key in COLUMNS} == valid


def test_season_blank_cells_stored_as_zero(season):
    row = by_unit(submissions(season))[("惠远镇", 3)]["rows"][0]
    assert (row["15"], row["16"]) == (0, 0)


def test_season_late_report_marked(season):
    stored = by_unit(submissions(season))
    assert stored[("三道河乡", 3)]["late"] is True
    assert stored[("水定镇", 3)]["late"] is False


def test_season_message_id_kept(season):
    assert by_unit(submissions(season))[("水定镇", 3)]["message_id"] == "<m01@shuiding.example.test>"


def test_season_outcomes(season):
    assert outcomes(season) == {
        MessageOutcome.ACCEPTED: 6,
        MessageOutcome.REJECTED: 4,
        MessageOutcome.UNREADABLE: 1,
        MessageOutcome.IGNORED: 1,
    }


def test_season_reply_kinds(season):
    kinds = sorted((mail["To"], mail["X-Zhoubao-Notice"]) for mail in replies(season))
    assert kinds == sorted([
        ("shuiding_kx@163.com", "receipt"),
        ("shuiding_kx@163.com", "receipt"),
        ("qingshuihe_kx@163.com", "receipt"),
        ("lucaogou_kx@126.com", "receipt"),
        ("huiyuan_kx@163.com", "receipt"),
        ("saerbulake_kx@163.com", "receipt"),
        ("sandaohe_kx@163.com", "rejection"),
        ("sandaohe_kx@163.com", "rejection"),
        ("langan_kx@qq.com", "rejection"),
        ("daxigou_kx@qq.com", "rejection"),
        ("sangong_kx@163.com", "unreadable"),
    ])


def test_season_reply_threads_under_mail(season):
    first = next(mail for mail in replies(season) if mail["In-Reply-To"] == "<m01@shuiding.example.test>")
    assert first["Auto-Submitted"] == "auto-replied"
    assert first["Date"].datetime == dt.datetime.fromisoformat(NOW)


def test_season_rejection_names_cell(season):
    rejection = next(mail for mail in replies(season) if mail["To"] == "langan_kx@qq.com")
    text = rejection.get_body(("plain",)).get_content()
    assert "7栏=10+12+14+16+18+20" in text
    assert "应等于640" in text


def test_season_inbox_emptied(season):
    assert season.account.uids("INBOX") == []
    assert len(season.account.uids("已处理")) == 12


def test_second_cycle_changes_nothing(season):
    before = (submissions(season), outcomes(season), len(season.sink.messages))

    result = run_once(season)

    assert result.exit_code == 0, result.output
    assert (submissions(season), outcomes(season), len(season.sink.messages)) == before


def test_resent_correction_supersedes(service_setup):
    """GIVEN a rejected report WHEN the corrected table follows THEN only the correction counts."""
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡"), filename="三道河乡.xlsx",
        date=at(22, 16, 0)))
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表（修改）",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]], unit="三道河乡"), filename="三道河乡.xlsx",
        date=at(22, 17, 0)))
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表（再次修改）",
        attachment=build_xlsx([SAMPLE_ROWS["blanks"]], unit="三道河乡"), filename="三道河乡.xlsx",
        date=at(22, 17, 30)))

    assert run_once(service_setup).exit_code == 0

    statuses = [item["status"] for item in submissions(service_setup)]
    assert sorted(statuses) == ["accepted", "rejected", "superseded"]


def test_unknown_sender_held(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="stranger@example.test", subject="第3周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]], unit="水定镇"), filename="统计表.xlsx",
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert submissions(service_setup) == []
    assert outcomes(service_setup) == {MessageOutcome.HELD: 1}


def test_table_naming_other_unit_held(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="第3周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]], unit="清水河镇"), filename="统计表.xlsx",
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert outcomes(service_setup) == {MessageOutcome.HELD: 1}
    assert [mail["X-Zhoubao-Notice"] for mail in replies(service_setup)] == ["held"]
    assert "清水河镇" in replies(service_setup)[0]["Subject"]


def test_own_address_not_answered(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="hckexie-county@example.test", subject="回执：水定镇第3周",
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert outcomes(service_setup) == {MessageOutcome.IGNORED: 1}
    assert replies(service_setup) == []


def test_week_from_fill_date(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇科技之冬统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]], date_text="2023年12月15日"), filename="统计表.xlsx",
        date=at(22, 16, 0)))

    assert run_once(service_setup).exit_code == 0

    assert [item["week"] for item in submissions(service_setup)] == [2]


def test_week_from_arrival(service_setup):
    """GIVEN week 3 reported WHEN an undated table arrives before week 4's deadline THEN it is week 4."""
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="统计表.xlsx", date=at(22, 10, 0)))
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇科技之冬统计表",
        attachment=build_xlsx([SAMPLE_ROWS["blanks"]], date_text=""), filename="统计表.xlsx",
        date=at(29, 10, 0)))

    assert run_once(service_setup).exit_code == 0

    assert [item["week"] for item in submissions(service_setup)] == [3, 4]


def test_late_undated_table_fills_missed_week(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇科技之冬统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]], date_text=""), filename="统计表.xlsx",
        date=at(25, 10, 0)))

    assert run_once(service_setup).exit_code == 0

    assert [(item["week"], item["late"]) for item in submissions(service_setup)] == [(3, True)]


def test_second_copy_not_recorded_again(service_setup):
    """GIVEN a processed mail WHEN the same bytes arrive again (a copy, or a UIDVALIDITY reset)."""
    raw = build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
                     attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="水定镇.xlsx", date=at(22, 16, 0))
    deliver(service_setup.account, raw)
    assert run_once(service_setup).exit_code == 0

    deliver(service_setup.account, raw)
    assert run_once(service_setup).exit_code == 0

    assert outcomes(service_setup) == {MessageOutcome.ACCEPTED: 1}
    assert len(service_setup.sink.messages) == 1
    assert service_setup.account.uids("INBOX") == []


def test_once_fails_while_smtp_down(service_setup):
    """GIVEN an SMTP server that refuses connections WHEN a cycle runs THEN it exits 1 and keeps the reply."""
    config = service_setup.config_path.read_text(encoding="utf-8")
    closed_port = free_port()
    service_setup.config_path.write_text(
        config.replace(f"port = {service_setup.sink.port}", f"port = {closed_port}"), encoding="utf-8")
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="水定镇.xlsx", date=at(22, 16, 0)))

    result = run_once(service_setup)

    assert result.exit_code == 1
    assert [item["status"] for item in submissions(service_setup)] == ["accepted"]
    assert pending_replies(service_setup) == 1


def pending_replies(setup) -> int:
    database = Database(setup.database_url)
    try:
        with database.session() as session:
            return sum(1 for mail in repository.list_outbox(session) if mail.status == "pending")
    finally:
        database.dispose()


def test_held_mail_listed_for_admin(service_setup):
    deliver(service_setup.account, build_mail(
        MailStyle.WEBMAIL_163, sender="stranger@example.test", subject="第3周统计表",
        attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="统计表.xlsx", date=at(22, 16, 0)))
    assert run_once(service_setup).exit_code == 0

    result = CliRunner().invoke(main, ["--config", str(service_setup.config_path), "messages"])

    assert result.exit_code == 0, result.output
    assert "stranger@example.test" in result.stdout
    assert "未在配置中登记" in result.stdout
