"""The service's log: one line per message and per mail sent, and never a secret or a mail body.

One intake cycle and one rejected login run in this process at DEBUG level, so that imapclient's
protocol log is captured too. The test account's password is distinctive enough to search for.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pytest

from service.clock import Clock
from service.config import load_settings
from service.runtime import open_database, run_once
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_xlsx
from store import repository
from tests.fixtures.servers import PASSWORD
from tests.fixtures.service import config_text
from tests.fixtures.smtp import SINK_PASSWORD
from tests.test_intake import at

pytestmark = pytest.mark.dovecot

WRONG_PASSWORD = "Zb7-oldcode-K2m8"
BODY_MARKER = "BODY-MARKER-8d1f"
# The aiosmtpd sink runs in this process and logs what it receives: its lines are not zhoubao's.
SINK_LOGGER = "mail.log"


def settings_for(tmp_path, account, password: str, sink, database_url: str):
    path = tmp_path / "config.toml"
    path.write_text(config_text(imap_port=account.port, imap_user=account.username, imap_password=password,
                                smtp_port=sink.port, database_url=database_url), encoding="utf-8")
    return load_settings(path)


@dataclass
class Logged:
    """The UIDs appended, the outbox rows queued, the log records and the raw mails."""

    uids: list[int]
    outbox_ids: list[int]
    records: list[logging.LogRecord]
    mails: list[bytes]


@pytest.fixture
def logged(tmp_path, imap_account, smtp_sink_auth, database_url, caplog):
    """GIVEN two township mails WHEN one cycle runs and then a login is rejected, all at DEBUG."""
    mails = [
        build_mail(MailStyle.WEBMAIL_163, sender="shuiding_kx@163.com", attachment=build_xlsx([SAMPLE_ROWS["valid"]]),
                   date=at(22, 16, 1), body=f"附件为本周统计表。{BODY_MARKER}"),
        build_mail(MailStyle.WEBMAIL_163, sender="huiyuan_kx@163.com", subject="惠远镇周报", attachment=None,
                   date=at(22, 16, 2), body=f"忘了附件。{BODY_MARKER}"),
    ]
    uids = [imap_account.append(raw) for raw in mails]

    caplog.set_level(logging.DEBUG)
    settings = settings_for(tmp_path, imap_account, imap_account.password, smtp_sink_auth, database_url)
    database = open_database(settings)
    try:
        assert run_once(settings, database, Clock())
        wrong = settings_for(tmp_path, imap_account, WRONG_PASSWORD, smtp_sink_auth, database_url)
        run_once(wrong, database, Clock())
        with database.session() as session:
            outbox_ids = [mail.id for mail in repository.list_outbox(session)]
    finally:
        database.dispose()
    return Logged(uids, outbox_ids, list(caplog.records), mails)


def log_lines(records) -> list[str]:
    """Return every message and traceback that zhoubao and its libraries logged."""
    lines = []
    for record in records:
        if record.name.startswith(SINK_LOGGER):
            continue
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
    return lines


def body_lines(raw: bytes) -> set[str]:
    """Return the encoded lines of a mail's body: what a protocol log of FETCH would show."""
    _header, _, body = raw.decode("ascii").partition("\r\n\r\n")
    return {line for line in body.splitlines() if len(line) >= 16 and not line.startswith("--") and ":" not in line}


def test_logs_imap_protocol_captured(logged):
    """The checks below are only worth something if imapclient's protocol lines were logged."""
    assert any(record.name.startswith("imapclient") for record in logged.records)


def test_logs_no_password(logged):
    secrets = (PASSWORD, WRONG_PASSWORD, SINK_PASSWORD)
    assert [line for line in log_lines(logged.records) if any(secret in line for secret in secrets)] == []


def test_logs_no_decoded_body(logged):
    assert [line for line in log_lines(logged.records) if BODY_MARKER in line] == []


def test_logs_no_encoded_body(logged):
    encoded = set().union(*(body_lines(raw) for raw in logged.mails))
    assert len(encoded) >= 2
    assert [line for line in log_lines(logged.records) if any(chunk in line for chunk in encoded)] == []


def test_logs_one_line_per_uid(logged):
    moved = [int(match.group(1)) for line in log_lines(logged.records)
             if (match := re.search(r": UID (\d+) \(message #\d+\) moved to ", line))]
    assert moved == logged.uids


def test_logs_one_line_per_mail_sent(logged):
    sent = [int(match.group(1)) for line in log_lines(logged.records)
            if (match := re.match(r"outbox mail (\d+): sent ", line))]
    assert len(logged.outbox_ids) == 3  # a receipt, an unreadable notice and the login alert
    assert sorted(sent) == logged.outbox_ids


def test_logs_queued_with_outbox_id(logged):
    queued = [int(match.group(1)) for line in log_lines(logged.records)
              if (match := re.search(r"queued as outbox mail (\d+)", line))]
    assert sorted(queued) == logged.outbox_ids
