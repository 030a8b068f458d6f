"""Scheduled notices go out through run --once: to the right units, once each, never stale."""

from __future__ import annotations

import pytest

from service.samples.mails import build_mail_with_files
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from tests.fixtures.service import UNITS, config_text
from tests.test_intake import at, deliver, replies, run_once

pytestmark = pytest.mark.dovecot

ALL_ADDRESSES = sorted(address for _, _, emails in UNITS for address in emails)


@pytest.fixture
def notices_on(service_setup):
    service_setup.config_path.write_text(config_text(
        imap_port=service_setup.account.port, imap_user=service_setup.account.username,
        imap_password=service_setup.account.password, smtp_port=service_setup.sink.port,
        database_url=service_setup.database_url, notices=True), encoding="utf-8")
    return service_setup


def sent(setup, header: str) -> list[str]:
    return sorted(mail["To"] for mail in replies(setup) if mail["X-Zhoubao-Notice"] == header)


def test_reminder_before_deadline_to_units_without_report(notices_on):
    deliver(notices_on.account, build_mail_with_files([("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]]))],
                                                      date=at(22, 11, 0)))

    assert run_once(notices_on, now="2023-12-22T12:30:00+08:00").exit_code == 0

    assert sent(notices_on, "reminder; week=3") == [a for a in ALL_ADDRESSES if a != "shuiding_kx@163.com"]


def test_reminder_sent_once(notices_on):
    assert run_once(notices_on, now="2023-12-22T12:30:00+08:00").exit_code == 0
    assert run_once(notices_on, now="2023-12-22T13:30:00+08:00").exit_code == 0

    assert sent(notices_on, "reminder; week=3") == ALL_ADDRESSES


def test_no_reminder_after_deadline(notices_on):
    assert run_once(notices_on, now="2023-12-22T18:40:00+08:00").exit_code == 0

    assert sent(notices_on, "reminder; week=3") == []
    assert sent(notices_on, "overdue; week=3") == ALL_ADDRESSES


def test_no_overdue_after_report(notices_on):
    deliver(notices_on.account, build_mail_with_files([("水定镇.xlsx", build_xlsx([SAMPLE_ROWS["valid"]]))],
                                                      date=at(22, 17, 0)))

    assert run_once(notices_on, now="2023-12-22T18:40:00+08:00").exit_code == 0

    assert "shuiding_kx@163.com" not in sent(notices_on, "overdue; week=3")
