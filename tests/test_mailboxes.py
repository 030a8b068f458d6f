"""Several [[mailbox]] entries in one deployment, and two service processes on one database.

The private Dovecot has one user, so the two counties read two folders of it (INBOX and
伊宁县); each entry is still a mailbox of its own to zhoubao, with its own units, sender
address, outbox share and lease.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import subprocess
import sys
from email import policy

import pytest
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import build_mail_with_files
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store import repository
from store.session import Database
from tests.fixtures.smtp import SINK_PASSWORD, SINK_USER

pytestmark = pytest.mark.dovecot

BEIJING = dt.timezone(dt.timedelta(hours=8))
HUOCHENG_FROM = "huocheng-kexie@example.cn"
YINING_FROM = "yining-kexie@example.cn"


def mailbox_entry(account, sink_port: int, name: str, folder: str, sender: str, units: list[tuple[str, str]]) -> str:
    unit_text = "".join(f'\n[[mailbox.units]]\nname = "{unit}"\nemails = ["{address}"]\n' for unit, address in units)
    return f"""
[[mailbox]]
name = "{name}"
host = "127.0.0.1"
port = {account.port}
security = "none"
username = "{account.username}"
password = "{account.password}"
folder = "{folder}"
processed_folder = "{folder}-已处理"
poll_interval = 60
idle = false

[mailbox.smtp]
host = "127.0.0.1"
port = {sink_port}
security = "none"
username = "{SINK_USER}"
password = "{SINK_PASSWORD}"
from = "{sender}"
from_name = "{name}科协"
daily_cap_per_recipient = 100
rate_per_minute = 1000

[mailbox.admin]
emails = ["admin-{sender}"]
{unit_text}"""


def config_text(account, sink_port: int, database_url: str) -> str:
    return f"""
[database]
url = "{database_url}"

[campaign]
name = "科技之冬"
first_deadline = 2023-12-08T18:00:00
last_deadline = 2024-03-15T18:00:00
""" + mailbox_entry(account, sink_port, "霍城县", "INBOX", HUOCHENG_FROM,
                    [("水定镇", "shuiding@example.cn"), ("清水河镇", "qingshuihe@example.cn")]) \
        + mailbox_entry(account, sink_port, "伊宁县", "伊宁县", YINING_FROM,
                        [("吉里于孜镇", "jiliyuzi@example.cn")])


@pytest.fixture
def prefecture(tmp_path, imap_account, smtp_sink_auth, database_url):
    path = tmp_path / "config.toml"
    path.write_text(config_text(imap_account, smtp_sink_auth.port, database_url), encoding="utf-8")
    with imap_account.server.connect() as client:
        client.create_folder("伊宁县")
    return path


def report_mail(sender: str, unit: str, day: int, hour: int, subject: str | None = None,
                reporter: str = "李明") -> bytes:
    table = build_xlsx([SAMPLE_ROWS["valid"]], unit=unit, reporter=reporter)
    return build_mail_with_files([(f"{unit}.xlsx", table)], sender=sender, sender_name=f"{unit}科协",
                                 subject=subject or f"{unit}第3周科技之冬周统计表",
                                 date=dt.datetime(2023, 12, day, hour, tzinfo=BEIJING))


def deliver(account, raw: bytes, folder: str = "INBOX") -> None:
    sent = email.message_from_bytes(raw, policy=policy.default)["Date"].datetime
    account.append(raw, folder=folder, internal_date=sent)


def run_once(config_path, now: str = "2023-12-22T17:30:00+08:00", *options: str):
    return CliRunner().invoke(main, ["--config", str(config_path), *options, "--now", now, "run", "--once"])


def sent(sink) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(item.raw, policy=policy.default) for item in sink.messages]


def stored_units(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        with database.session() as session:
            return sorted(item.unit.name for item in repository.list_submissions(session))
    finally:
        database.dispose()


# --- one process, two mailboxes -------------------------------------------------------------------


@pytest.fixture
def both_read(prefecture, imap_account, smtp_sink_auth):
    deliver(imap_account, report_mail("shuiding@example.cn", "水定镇", 22, 10))
    deliver(imap_account, report_mail("jiliyuzi@example.cn", "吉里于孜镇", 22, 11), folder="伊宁县")
    result = run_once(prefecture)
    assert result.exit_code == 0, result.output
    return prefecture


def test_both_mailboxes_read(both_read, database_url):
    assert stored_units(database_url) == ["吉里于孜镇", "水定镇"]


def test_reply_from_own_county(both_read, smtp_sink_auth):
    senders = {mail["To"]: mail["From"].addresses[0].addr_spec for mail in sent(smtp_sink_auth)
               if mail["X-Zhoubao-Notice"] == "receipt"}
    assert senders == {"shuiding@example.cn": HUOCHENG_FROM, "jiliyuzi@example.cn": YINING_FROM}


def test_each_folder_emptied(both_read, imap_account):
    assert imap_account.uids("INBOX") == []
    assert imap_account.uids("伊宁县") == []


def test_digest_lists_own_units_only(both_read, smtp_sink_auth):
    run_once(both_read, "2023-12-22T19:05:00+08:00")

    digests = {mail["To"]: mail.get_body(("plain",)).get_content() for mail in sent(smtp_sink_auth)
               if mail["X-Zhoubao-Notice"] == "digest; week=3"}

    assert set(digests) == {f"admin-{HUOCHENG_FROM}", f"admin-{YINING_FROM}"}
    assert "应报送2个单位" in digests[f"admin-{HUOCHENG_FROM}"]
    assert "吉里于孜镇" not in digests[f"admin-{HUOCHENG_FROM}"]
    assert "应报送1个单位" in digests[f"admin-{YINING_FROM}"]


def test_mailbox_option_runs_one(prefecture, imap_account, database_url):
    deliver(imap_account, report_mail("shuiding@example.cn", "水定镇", 22, 10))
    deliver(imap_account, report_mail("jiliyuzi@example.cn", "吉里于孜镇", 22, 11), folder="伊宁县")

    assert run_once(prefecture, "2023-12-22T17:30:00+08:00", "--mailbox", "伊宁县").exit_code == 0

    assert stored_units(database_url) == ["吉里于孜镇"]


# --- leases --------------------------------------------------------------------------------------


def hold_lease(database_url: str, mailbox: str, holder: str) -> None:
    database = Database(database_url)
    try:
        database.upgrade()
        with database.session() as session:
            repository.acquire_lease(session, mailbox, holder, dt.datetime.now(dt.timezone.utc),
                                     dt.timedelta(minutes=10))
    finally:
        database.dispose()


def test_held_lease_skips_intake(prefecture, imap_account, smtp_sink_auth, database_url):
    # GIVEN another host's process holds the lease of the 霍城县 mailbox
    hold_lease(database_url, f"{imap_account.username}@127.0.0.1/INBOX", "other-host:4242:abcd1234")
    deliver(imap_account, report_mail("shuiding@example.cn", "水定镇", 22, 10))
    deliver(imap_account, report_mail("jiliyuzi@example.cn", "吉里于孜镇", 22, 11), folder="伊宁县")

    # WHEN run --once runs
    result = run_once(prefecture)

    # THEN it exits 0, leaves 霍城县's mail alone and reads 伊宁县's
    assert result.exit_code == 0, result.output
    assert len(imap_account.uids("INBOX")) == 1
    assert stored_units(database_url) == ["吉里于孜镇"]


def test_held_lease_still_sends_outbox(prefecture, imap_account, smtp_sink_auth, database_url):
    # GIVEN a reply of 霍城县 waiting in the outbox while another process holds its lease
    key = f"{imap_account.username}@127.0.0.1/INBOX"
    hold_lease(database_url, key, "other-host:4242:abcd1234")
    database = Database(database_url)
    try:
        with database.session() as session:
            raw = (f"From: {HUOCHENG_FROM}\r\nTo: shuiding@example.cn\r\nSubject: waiting\r\n"
                   "Message-ID: <waiting@example.cn>\r\n\r\nbody\r\n").encode()
            repository.enqueue_mail(session, message=None, kind="receipt", recipient="shuiding@example.cn",
                                    subject="waiting", mail_message_id="<waiting@example.cn>", raw=raw,
                                    now=dt.datetime(2023, 12, 22, 9, tzinfo=BEIJING), mailbox=key)
    finally:
        database.dispose()

    # WHEN run --once runs THEN the reply goes out although intake was skipped
    assert run_once(prefecture).exit_code == 0
    assert "<waiting@example.cn>" in [mail["Message-ID"] for mail in sent(smtp_sink_auth)]


def test_lease_of_dead_local_process_taken(prefecture, imap_account, database_url):
    # GIVEN a lease left by a process of this host that no longer runs
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = f"{os.uname().nodename}:{finished.stdout.strip()}:deadbeef"
    hold_lease(database_url, f"{imap_account.username}@127.0.0.1/INBOX", dead)
    deliver(imap_account, report_mail("shuiding@example.cn", "水定镇", 22, 10))

    assert run_once(prefecture).exit_code == 0

    assert stored_units(database_url) == ["水定镇"]


# --- two processes ---------------------------------------------------------------------------------


def test_two_processes_process_each_mail_once(prefecture, imap_account, smtp_sink_auth, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("two service processes need PostgreSQL; SQLite allows one writer at a time")
    # GIVEN twelve reports waiting in each county's folder
    units = [("水定镇", "shuiding@example.cn"), ("清水河镇", "qingshuihe@example.cn")]
    for number in range(12):
        unit, address = units[number % 2]
        # Each file differs by its 填报人, so none is a resend of another.
        deliver(imap_account, report_mail(address, unit, 22, 8, subject=f"{unit}第3周统计表（第{number}次）",
                                          reporter=f"填报人{number}"))
        deliver(imap_account, report_mail("jiliyuzi@example.cn", "吉里于孜镇", 22, 9, reporter=f"填报人{number}",
                                          subject=f"吉里于孜镇第3周统计表（第{number}次）"), folder="伊宁县")

    # WHEN two service processes run a cycle at the same time, twice
    command = [sys.executable, "-c", "from service.cli import main; main()", "--config", str(prefecture),
               "--now", "2023-12-22T19:05:00+08:00", "run", "--once"]
    for _ in range(2):
        processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(2)]
        outputs = [process.communicate(timeout=300)[0].decode() for process in processes]
        assert [process.returncode for process in processes] == [0, 0], "\n".join(outputs)

    # THEN every mail is stored once and answered once, and each notice went out once
    assert len(stored_units(database_url)) == 24
    mails = sent(smtp_sink_auth)
    receipts = [mail for mail in mails if mail["X-Zhoubao-Notice"] == "receipt"]
    assert len(receipts) == 24
    assert len({mail["In-Reply-To"] for mail in receipts}) == 24
    notices = [(mail["To"], mail["X-Zhoubao-Notice"]) for mail in mails if mail["X-Zhoubao-Notice"] != "receipt"]
    assert len(notices) == len(set(notices))
    assert imap_account.uids("INBOX") == [] and imap_account.uids("伊宁县") == []


# --- health and doctor over every mailbox -------------------------------------------------------------


def test_health_reports_every_mailbox(both_read):
    result = CliRunner().invoke(main, ["--config", str(both_read), "--now", "2023-12-22T17:31:00+08:00",
                                       "health", "--json"])

    assert result.exit_code == 0, result.output
    mailboxes = [item["mailbox"] for item in json.loads(result.stdout)]
    assert [name.rsplit("/", 1)[1] for name in mailboxes] == ["INBOX", "伊宁县"]


def test_doctor_logs_in_to_every_mailbox(both_read, imap_account):
    result = CliRunner().invoke(main, ["--config", str(both_read), "doctor"])

    assert "2 个邮箱" in result.output
    assert "✓ 霍城县 收信登录" in result.output, result.output
    assert "✓ 伊宁县 收信登录" in result.output


def test_mailbox_option_scopes_submissions(both_read):
    result = CliRunner().invoke(main, ["--config", str(both_read), "--mailbox", "伊宁县", "submissions", "--json"])
    assert [item["unit"] for item in json.loads(result.stdout)] == ["吉里于孜镇"]


def test_health_json_when_database_down(both_read, tmp_path):
    text = both_read.read_text(encoding="utf-8")
    start = text.index('url = "') + len('url = "')
    broken = text[:start] + "postgresql+psycopg://postgres@127.0.0.1:1/nothing" + text[text.index('"', start):]
    both_read.write_text(broken, encoding="utf-8")

    result = CliRunner().invoke(main, ["--config", str(both_read), "health", "--json"])

    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == ["database"]
