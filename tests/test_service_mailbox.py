"""The running service and its mailbox: IDLE, polling, a rejected login and a server that dies.

Each test runs ``zhoubao run`` as a process against the private Dovecot and the SMTP sink. The
service's log goes to a file, because a full stderr pipe would block it.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store.models import MessageOutcome
from tests.fixtures.service import UNITS
from tests.test_intake import at, deliver
from tests.test_service import WAIT, accepted_so_far, counts, township_mail, wait_until

pytestmark = pytest.mark.dovecot


class Service:
    """``zhoubao run`` as a process, logging to a file."""

    def __init__(self, config_path: Path, log_path: Path):
        self.log_path = log_path
        environment = {key: value for key, value in os.environ.items() if key != "ZHOUBAO_FAILPOINT"}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from service.cli import main; main()", "--config", str(config_path), "run"],
                env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT)


@pytest.fixture
def run_service(tmp_path):
    started: list[Service] = []

    def start(setup) -> Service:
        service = Service(setup.config_path, tmp_path / f"service-{len(started)}.log")
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()


def sink_mails(sink) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(item.raw, policy=policy.default) for item in sink.messages]


def alerts(sink) -> list[email.message.EmailMessage]:
    return [mail for mail in sink_mails(sink) if mail["X-Zhoubao-Notice"] == "alert"]


# --- IDLE and polling --------------------------------------------------------------------------


def test_idle_wakes_intake_before_poll(service_setup, run_service):
    """GIVEN a poll interval of 10 minutes WHEN mail arrives THEN IDLE gets it a reply within seconds."""
    service_setup.rewrite(poll_interval=600)
    deliver(service_setup.account, township_mail(1))
    service = run_service(service_setup)
    try:
        wait_until(lambda: len(service_setup.sink.messages) == 1)
        # The watcher wakes intake when it connects, so mail sent before it waits in IDLE would be
        # read without IDLE reporting it.
        wait_until(lambda: "waiting for new mail with IDLE" in service.log())
        deliver(service_setup.account, township_mail(2))
        # With a 600 s poll interval, only the watcher can wake intake this soon: through IDLE's
        # report, or through the wake-up of its connection when that raced the mail.
        wait_until(lambda: len(service_setup.sink.messages) == 2, timeout=30)
    finally:
        returncode = service.stop()
    assert returncode == 0, service.log()


def test_polling_serves_without_idle(service_setup, run_service):
    """GIVEN idle = false WHEN mail arrives after the first cycle THEN the next poll replies to it."""
    service_setup.rewrite(poll_interval=30, mailbox_options="idle = false")
    deliver(service_setup.account, township_mail(1))
    service = run_service(service_setup)
    try:
        wait_until(lambda: len(service_setup.sink.messages) == 1)
        deliver(service_setup.account, township_mail(2))
        wait_until(lambda: len(service_setup.sink.messages) == 2)
    finally:
        returncode = service.stop()
    log = service.log()
    assert returncode == 0, log
    assert "IDLE turned off in [mailbox], polling only" in log
    assert "IDLE" not in log.replace("IDLE turned off in [mailbox], polling only", "")


def test_sigterm_stops_while_idle(service_setup, run_service):
    service_setup.rewrite(poll_interval=600)
    service = run_service(service_setup)
    wait_until(lambda: "waiting for new mail with IDLE" in service.log())
    returncode = service.stop()
    log = service.log()
    assert returncode == 0, log
    assert "IDLE: stopped" in log
    assert "service: stopped" in log


# --- a rejected login --------------------------------------------------------------------------


def run_once(setup) -> int:
    return CliRunner().invoke(main, ["--config", str(setup.config_path), "run", "--once"]).exit_code


def test_rejected_login_alerts_once(service_setup, run_service):
    """GIVEN a wrong authorization code WHEN the service runs, restarts and is fixed
    THEN the admin gets one alert, then one notice that the login works again."""
    service_setup.rewrite(imap_password="expired-code")
    service = run_service(service_setup)
    try:
        wait_until(lambda: len(alerts(service_setup.sink)) == 1)
        wait_until(lambda: "login rejected, next attempt in 1800 s" in service.log())
    finally:
        returncode = service.stop()
    assert returncode == 0, service.log()

    assert run_once(service_setup) == 1  # a restart while the code is still wrong
    assert len(alerts(service_setup.sink)) == 1

    service_setup.rewrite()
    assert run_once(service_setup) == 0
    subjects = [mail["Subject"] for mail in alerts(service_setup.sink)]
    assert subjects == ["系统提示：收信邮箱拒绝登录，请更新授权码", "系统提示：收信邮箱已恢复登录"]


def test_rejected_login_alert_to_admin(service_setup, run_service):
    service_setup.rewrite(imap_password="expired-code")
    assert run_once(service_setup) == 1
    [alert] = alerts(service_setup.sink)
    assert alert["To"] == "hckexie-county@example.test"
    assert "county@example.test（服务器 127.0.0.1）" in alert.get_body(("plain",)).get_content()


# --- the server dies during a cycle ------------------------------------------------------------


def unit_mail(index: int) -> bytes:
    """A valid report of week 3 from each unit in turn, each with a Message-ID of its own."""
    unit, _aliases, (address,) = UNITS[index % len(UNITS)]
    return build_mail(MailStyle.WEBMAIL_163, sender=address, subject=f"{unit}第3周科技之冬周统计表（{index}）",
                      attachment=build_xlsx([SAMPLE_ROWS["valid"]], unit=unit, phone=f"138****{index:04d}"),
                      filename=f"{unit}第3周_{index}.xlsx", date=at(22, 16, index % 60),
                      message_id=f"<fault-{index}@example.cn>")


def in_reply_to(sink) -> list[str]:
    return [mail["In-Reply-To"] for mail in sink_mails(sink)]


def folder_message_ids(account, folder: str) -> list[str]:
    return [email.message_from_bytes(raw, policy=policy.default)["Message-ID"]
            for raw in account.fetch_raw(folder)]


def test_server_killed_mid_cycle_recovers(service_setup, run_service, dovecot):
    """GIVEN 30 mails WHEN Dovecot is killed while they are processed and started again
    THEN the service recovers alone, and replies to and stores every mail exactly once."""
    service_setup.rewrite(poll_interval=600, mailbox_options="reconnect_delay = 1\nreconnect_max_delay = 4",
                          smtp_options="rate_per_minute = 1000\ndaily_cap_per_recipient = 1000")
    before = [unit_mail(index) for index in range(30)]
    for raw in before:
        deliver(service_setup.account, raw)
    service = run_service(service_setup)
    try:
        wait_until(lambda: accepted_so_far(service_setup.database_url) >= 1)
        dovecot.stop()
        dovecot.start()
        wait_until(lambda: len(service_setup.sink.messages) == 30, timeout=120)
        # New mail after the restart is seen by the watcher's new IDLE connection.
        deliver(service_setup.account, unit_mail(30))
        wait_until(lambda: len(service_setup.sink.messages) == 31, timeout=30)
    finally:
        returncode = service.stop()

    log = service.log()
    assert returncode == 0, log
    expected = {f"<fault-{index}@example.cn>" for index in range(31)}
    stored = counts(service_setup.database_url)
    assert stored[MessageOutcome.ACCEPTED] == 31, log
    assert sum(stored.values()) == 31
    replies = in_reply_to(service_setup.sink)
    assert len(replies) == 31
    assert set(replies) == expected
    assert service_setup.account.uids("INBOX") == []
    assert set(folder_message_ids(service_setup.account, "已处理")) == expected
