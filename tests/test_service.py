"""The long-running service: it processes mail on its schedule and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.exc import SQLAlchemyError

from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store import repository
from store.models import MessageOutcome
from store.session import Database
from tests.test_intake import at, deliver

pytestmark = pytest.mark.dovecot

WAIT = 60.0


def start_service(config_path) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if key != "ZHOUBAO_FAILPOINT"}
    return subprocess.Popen(
        [sys.executable, "-c", "from service.cli import main; main()", "--config", str(config_path), "run"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def counts(database_url: str) -> dict[MessageOutcome, int]:
    database = Database(database_url)
    try:
        with database.session() as session:
            return repository.message_counts(session)
    finally:
        database.dispose()


def accepted_so_far(database_url: str) -> int:
    """Count accepted messages, or 0 while the service has not created the schema yet."""
    try:
        return counts(database_url)[MessageOutcome.ACCEPTED]
    except SQLAlchemyError:
        return 0


def wait_until(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stderr


def township_mail(index: int) -> bytes:
    return build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com",
                      subject=f"水定镇第3周科技之冬周统计表（第{index}次发送）",
                      attachment=build_xlsx([SAMPLE_ROWS["valid"]], phone=f"138****{index:04d}"),
                      filename=f"水定镇第3周_{index}.xlsx", date=at(22, 16, index))


def test_service_replies_then_stops(service_setup):
    deliver(service_setup.account, township_mail(1))
    process = start_service(service_setup.config_path)
    try:
        wait_until(lambda: len(service_setup.sink.messages) == 1)
    finally:
        returncode, stderr = stop(process)
    assert returncode == 0, stderr
    assert "service: stopped" in stderr


def test_sigterm_finishes_current_message(service_setup):
    """GIVEN many mails WHEN SIGTERM arrives mid-cycle THEN no mail is left half processed."""
    for index in range(1, 21):
        deliver(service_setup.account, township_mail(index))
    process = start_service(service_setup.config_path)
    try:
        wait_until(lambda: accepted_so_far(service_setup.database_url) >= 1)
    finally:
        returncode, stderr = stop(process)

    assert returncode == 0, stderr
    stored = counts(service_setup.database_url)
    assert stored[MessageOutcome.PENDING] == 0
    assert len(service_setup.account.uids("已处理")) == stored[MessageOutcome.ACCEPTED]
    assert len(service_setup.account.uids("INBOX")) == 20 - stored[MessageOutcome.ACCEPTED]
