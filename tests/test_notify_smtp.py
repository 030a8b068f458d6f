"""SmtpSender against real aiosmtpd sinks on 127.0.0.1: plaintext, implicit TLS, STARTTLS."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest

from ingest.errors import ConfigError, DeliveryError
from notify.compose import compose_mail
from notify.smtp import SmtpSender
from tests.fixtures.smtp import SINK_PASSWORD, SINK_USER, free_port

COUNTY = "hckexie2023@example.test"
TOWNSHIP = "shuiding_kx@example.test"


def reply_bytes(subject: str = "回执：水定镇第3周科技之冬周统计表已收到") -> bytes:
    mail = compose_mail(
        from_address=COUNTY,
        from_name="霍城县科协",
        to=TOWNSHIP,
        subject=subject,
        text="水定镇：\n你单位第3周周统计表已收到。\n",
        html="<p>水定镇：你单位第3周周统计表已收到。</p>",
        kind="receipt",
        now=dt.datetime(2023, 12, 22, 16, 45, tzinfo=ZoneInfo("Asia/Shanghai")),
        in_reply_to="<m01@example.test>",
        references=[],
    )
    return bytes(mail)


def test_smtp_plaintext_delivers_bytes(smtp_sink):
    raw = reply_bytes()

    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        sender.send(raw, COUNTY, [TOWNSHIP])

    received = message_from_bytes(smtp_sink.messages[0].raw, policy=policy.default)
    assert received["Subject"] == "回执：水定镇第3周科技之冬周统计表已收到"


def test_smtp_envelope_addresses(smtp_sink):
    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    arrived = smtp_sink.messages[0]
    assert (arrived.mail_from, arrived.rcpt_tos) == (COUNTY, [TOWNSHIP])


def test_smtp_one_connection_several_mails(smtp_sink):
    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        for week in (3, 4, 5):
            sender.send(reply_bytes(f"回执：水定镇第{week}周科技之冬周统计表已收到"), COUNTY, [TOWNSHIP])

    assert len(smtp_sink.messages) == 3


def test_smtp_send_connects_on_first_use(smtp_sink):
    sender = SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5)

    sender.send(reply_bytes(), COUNTY, [TOWNSHIP])
    sender.close()

    assert len(smtp_sink.messages) == 1


def test_smtp_implicit_tls_with_auth(smtp_sink_ssl):
    sender = SmtpSender(
        smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, SINK_PASSWORD,
        timeout=5, ssl_context=smtp_sink_ssl.client_context,
    )

    with sender:
        sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert len(smtp_sink_ssl.messages) == 1


def test_smtp_starttls_with_auth(smtp_sink_starttls):
    sender = SmtpSender(
        smtp_sink_starttls.host, smtp_sink_starttls.port, "starttls", SINK_USER, SINK_PASSWORD,
        timeout=5, ssl_context=smtp_sink_starttls.client_context,
    )

    with sender:
        sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert len(smtp_sink_starttls.messages) == 1


def test_smtp_tls_unverified_certificate(smtp_sink_ssl):
    # The system's default context does not trust the sink's self-signed certificate.
    sender = SmtpSender(smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, SINK_PASSWORD, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        sender.connect()

    assert caught.value.permanent is False


def test_smtp_wrong_password_not_permanent(smtp_sink_ssl):
    sender = SmtpSender(
        smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, "wrong",
        timeout=5, ssl_context=smtp_sink_ssl.client_context,
    )

    with pytest.raises(DeliveryError) as caught:
        sender.connect()

    assert caught.value.permanent is False


def test_smtp_error_hides_password(smtp_sink_ssl):
    sender = SmtpSender(
        smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, "wrong-secret-code",
        timeout=5, ssl_context=smtp_sink_ssl.client_context,
    )

    with pytest.raises(DeliveryError) as caught:
        sender.connect()

    assert "wrong-secret-code" not in str(caught.value)


def test_smtp_repr_hides_password():
    sender = SmtpSender("127.0.0.1", 2525, "none", SINK_USER, "secret-code")

    assert "secret-code" not in repr(sender)


def test_smtp_5xx_recipient_permanent(smtp_sink):
    smtp_sink.reject[TOWNSHIP] = "550 5.1.1 mailbox unavailable"

    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        with pytest.raises(DeliveryError) as caught:
            sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert caught.value.permanent is True


def test_smtp_4xx_recipient_temporary(smtp_sink):
    smtp_sink.reject[TOWNSHIP] = "451 4.3.0 try again later"

    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        with pytest.raises(DeliveryError) as caught:
            sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert caught.value.permanent is False


def test_smtp_error_names_reply(smtp_sink):
    smtp_sink.reject[TOWNSHIP] = "550 5.1.1 mailbox unavailable"

    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        with pytest.raises(DeliveryError) as caught:
            sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert "550 5.1.1 mailbox unavailable" in str(caught.value)


def test_smtp_keeps_connection_after_5xx(smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"

    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        with pytest.raises(DeliveryError):
            sender.send(reply_bytes(), COUNTY, ["gone@example.test"])
        sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert [message.rcpt_tos for message in smtp_sink.messages] == [[TOWNSHIP]]


def test_smtp_server_down_temporary():
    sender = SmtpSender("127.0.0.1", free_port(), "none", None, None, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        sender.connect()

    assert caught.value.permanent is False


def test_smtp_plaintext_remote_host_rejected():
    with pytest.raises(ConfigError):
        SmtpSender("smtp.example.test", 25, "none", SINK_USER, "secret-code")


def test_smtp_plaintext_error_in_chinese():
    with pytest.raises(ConfigError) as caught:
        SmtpSender("smtp.example.test", 25, "none", SINK_USER, "secret-code")

    assert "只能用于本机" in str(caught.value)


def test_smtp_unknown_security_rejected():
    with pytest.raises(ConfigError):
        SmtpSender("127.0.0.1", 25, "tls", SINK_USER, "secret-code")


def test_smtp_421_drops_connection(smtp_sink):
    smtp_sink.reject[TOWNSHIP] = "421 4.3.2 service shutting down"
    sender = SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5)

    with pytest.raises(DeliveryError):
        sender.send(reply_bytes(), COUNTY, [TOWNSHIP])

    assert sender.connected is False


def test_smtp_wrong_password_names_reply(smtp_sink_ssl):
    sender = SmtpSender(
        smtp_sink_ssl.host, smtp_sink_ssl.port, "ssl", SINK_USER, "wrong",
        timeout=5, ssl_context=smtp_sink_ssl.client_context,
    )

    with pytest.raises(DeliveryError) as caught:
        sender.connect()

    assert "535" in str(caught.value)


def test_smtp_wrong_password_tried_once(smtp_sink_auth):
    # A refused code must count as one failed login, not one per mechanism the server offers.
    sender = SmtpSender(smtp_sink_auth.host, smtp_sink_auth.port, "none", SINK_USER, "wrong", timeout=5)

    with pytest.raises(DeliveryError):
        sender.connect()

    assert smtp_sink_auth.handler.logins == [("PLAIN", False)]


def test_smtp_right_password_logs_in(smtp_sink_auth):
    sender = SmtpSender(smtp_sink_auth.host, smtp_sink_auth.port, "none", SINK_USER, SINK_PASSWORD, timeout=5)

    sender.connect()
    sender.close()

    assert smtp_sink_auth.handler.logins == [("PLAIN", True)]
