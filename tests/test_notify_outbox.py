"""Outbox delivery against real databases (SQLite, PostgreSQL) and a real SMTP sink."""

from __future__ import annotations

import datetime as dt
import logging
from email import message_from_bytes, policy

import pytest

from notify.compose import compose_mail
from notify.outbox import deliver_outbox
from notify.smtp import SmtpSender
from store.models import OutboxStatus
from store.repository import enqueue_mail, list_outbox
from tests.fixtures.smtp import SINK_PASSWORD, SINK_USER, free_port

NOW = dt.datetime(2023, 12, 22, 10, 0, tzinfo=dt.timezone.utc)
COUNTY = "hckexie2023@example.test"


def queue(database, recipient: str = "shuiding_kx@example.test", now: dt.datetime = NOW) -> str:
    """Compose a receipt to ``recipient``, queue it and return its Message-ID."""
    mail = compose_mail(
        from_address=COUNTY,
        from_name="霍城县科协",
        to=recipient,
        subject="回执：水定镇第3周科技之冬周统计表已收到",
        text="水定镇：\n你单位第3周周统计表已收到。\n",
        html="<p>水定镇：你单位第3周周统计表已收到。</p>",
        kind="receipt",
        now=now,
        in_reply_to="<m01@example.test>",
        references=[],
    )
    with database.session() as session:
        enqueue_mail(
            session,
            message=None,
            kind="receipt",
            recipient=recipient,
            subject=mail["Subject"],
            mail_message_id=mail["Message-ID"],
            raw=bytes(mail),
            now=now,
        )
    return mail["Message-ID"]


def outbox(database):
    with database.session() as session:
        return list_outbox(session)


def plain_sender(sink):
    return lambda: SmtpSender(sink.host, sink.port, "none", None, None, timeout=5)


def unreachable_sender():
    port = free_port()
    return lambda: SmtpSender("127.0.0.1", port, "none", None, None, timeout=5)


def arrived_ids(sink) -> list[str]:
    return [message_from_bytes(item.raw, policy=policy.default)["Message-ID"] for item in sink.messages]


def test_outbox_sends_due_mail(database, smtp_sink):
    queue(database)

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert report.sent == 1
    assert len(smtp_sink.messages) == 1


def test_outbox_marks_sent(database, smtp_sink):
    queue(database)

    deliver_outbox(database, plain_sender(smtp_sink), NOW)

    [mail] = outbox(database)
    assert mail.status == OutboxStatus.SENT
    assert mail.sent_at == NOW


def test_outbox_sends_stored_bytes(database, smtp_sink):
    message_id = queue(database)

    deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert arrived_ids(smtp_sink) == [message_id]


def test_outbox_envelope_from_header(database, smtp_sink):
    queue(database)

    deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert smtp_sink.messages[0].mail_from == COUNTY


def test_outbox_server_down_no_exception(database):
    queue(database)
    queue(database, "qingshuihe_kx@example.test")

    report = deliver_outbox(database, unreachable_sender(), NOW)

    assert (report.sent, report.retried, report.failed) == (0, 2, 0)


def test_outbox_server_down_backs_off(database):
    queue(database)

    deliver_outbox(database, unreachable_sender(), NOW)

    [mail] = outbox(database)
    assert mail.status == OutboxStatus.PENDING
    assert mail.attempts == 1
    assert mail.next_attempt_at == NOW + dt.timedelta(minutes=1)


def test_outbox_server_down_records_error(database):
    queue(database)

    deliver_outbox(database, unreachable_sender(), NOW)

    [mail] = outbox(database)
    assert "connect or login failed" in mail.last_error


def test_outbox_second_outage_waits_longer(database):
    queue(database)

    deliver_outbox(database, unreachable_sender(), NOW)
    deliver_outbox(database, unreachable_sender(), NOW + dt.timedelta(minutes=1))

    [mail] = outbox(database)
    assert mail.next_attempt_at == NOW + dt.timedelta(minutes=3)


def test_outbox_resend_keeps_message_id(database, smtp_sink):
    # GIVEN a reply that could not be sent while the server was down
    message_id = queue(database)
    deliver_outbox(database, unreachable_sender(), NOW)

    # WHEN the server is back and the retry is due
    report = deliver_outbox(database, plain_sender(smtp_sink), NOW + dt.timedelta(minutes=1))

    # THEN the mail arrives with the Message-ID it was composed with
    assert report.sent == 1
    assert arrived_ids(smtp_sink) == [message_id]


def test_outbox_retry_not_due_yet(database, smtp_sink):
    queue(database)
    deliver_outbox(database, unreachable_sender(), NOW)

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW + dt.timedelta(seconds=30))

    assert report.sent == 0
    assert smtp_sink.messages == []


def test_outbox_idle_does_not_connect(database):
    def must_not_connect():
        raise AssertionError("no mail is due, so no SMTP connection should be made")

    report = deliver_outbox(database, must_not_connect, NOW)

    assert (report.sent, report.retried, report.failed) == (0, 0, 0)


def test_outbox_5xx_marks_failed(database, smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"
    queue(database, "gone@example.test")

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    [mail] = outbox(database)
    assert report.failed == 1
    assert mail.status == OutboxStatus.FAILED


def test_outbox_5xx_does_not_stop_others(database, smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"
    queue(database, "gone@example.test")
    queue(database, "shuiding_kx@example.test")

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert (report.sent, report.failed) == (1, 1)
    assert [item.rcpt_tos for item in smtp_sink.messages] == [["shuiding_kx@example.test"]]


def test_outbox_4xx_retried(database, smtp_sink):
    smtp_sink.reject["busy@example.test"] = "451 4.3.0 try again later"
    queue(database, "busy@example.test")

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    [mail] = outbox(database)
    assert report.retried == 1
    assert mail.status == OutboxStatus.PENDING


def test_outbox_wrong_password_retried(database, smtp_sink_ssl):
    queue(database)

    def sender():
        return SmtpSender(
            smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, "wrong-code",
            timeout=5, ssl_context=smtp_sink_ssl.client_context,
        )

    report = deliver_outbox(database, sender, NOW)

    assert report.retried == 1


def test_outbox_respects_limit(database, smtp_sink):
    for recipient in ("a@example.test", "b@example.test", "c@example.test"):
        queue(database, recipient)

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW, limit=2)

    assert report.sent == 2


def test_outbox_oldest_first(database, smtp_sink):
    queue(database, "later@example.test", now=NOW - dt.timedelta(minutes=1))
    queue(database, "earlier@example.test", now=NOW - dt.timedelta(minutes=5))

    deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert [item.rcpt_tos[0] for item in smtp_sink.messages] == ["earlier@example.test", "later@example.test"]


def test_outbox_logs_each_sent_mail(database, smtp_sink_ssl, caplog):
    first = queue(database, "a@example.test")
    second = queue(database, "b@example.test")

    def sender():
        return SmtpSender(
            smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, SINK_PASSWORD,
            timeout=5, ssl_context=smtp_sink_ssl.client_context,
        )

    with caplog.at_level(logging.DEBUG):
        deliver_outbox(database, sender, NOW)

    sent_lines = [record.getMessage() for record in caplog.records if " sent receipt to " in record.getMessage()]
    assert len(sent_lines) == 2
    assert first in sent_lines[0]
    assert second in sent_lines[1]


def test_outbox_logs_no_password(database, smtp_sink_ssl, caplog):
    queue(database)

    def sender():
        return SmtpSender(
            smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, SINK_PASSWORD,
            timeout=5, ssl_context=smtp_sink_ssl.client_context,
        )

    with caplog.at_level(logging.DEBUG):
        deliver_outbox(database, sender, NOW)

    assert SINK_PASSWORD not in caplog.text


@pytest.mark.parametrize("attempts", [1, 2])
def test_outbox_sent_mail_not_resent(database, smtp_sink, attempts):
    queue(database)

    for run in range(attempts):
        deliver_outbox(database, plain_sender(smtp_sink), NOW + dt.timedelta(hours=run))

    assert len(smtp_sink.messages) == 1


def test_outbox_421_defers_remaining_mails(database, smtp_sink):
    # smtplib closes the connection after a 421 reply (RFC 5321 section 3.8), so the run stops.
    smtp_sink.reject["first@example.test"] = "421 4.3.2 service shutting down"
    queue(database, "first@example.test", now=NOW - dt.timedelta(minutes=1))
    queue(database, "second@example.test")

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert (report.sent, report.retried) == (0, 2)
    assert smtp_sink.messages == []
