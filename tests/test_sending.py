"""Sending limits, failed mails for the admin, attachment names and the bytes a sink receives."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import textwrap
import threading
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from urllib.parse import unquote

import pytest

from ingest.errors import ConfigError
from ingest.filenames import attachment_filename
from notify.compose import compose_mail
from notify.outbox import DeliveryReport, SendLimits, deliver_outbox
from notify.smtp import SmtpSender
from service.config import load_settings
from store.models import OutboxStatus
from store.repository import enqueue_mail, failed_outbox, list_outbox
from store.session import Database

NOW = dt.datetime(2024, 1, 12, 10, 0, tzinfo=dt.timezone.utc)
COUNTY = "hckexie2023@example.test"
TOWNSHIP = "shuiding_kx@example.test"


def composed(recipient: str = TOWNSHIP, now: dt.datetime = NOW, **changes) -> EmailMessage:
    fields = dict(
        from_address=COUNTY,
        from_name="霍城县科协",
        to=recipient,
        subject="催报：请于今日18:00前报送第6周周统计表",
        text="水定镇：\n你单位第6周周统计表尚未收到。\n",
        html="<p>水定镇：你单位第6周周统计表尚未收到。</p>",
        kind="reminder; week=6",
        now=now,
        in_reply_to=None,
        references=[],
    )
    fields.update(changes)
    return compose_mail(**fields)


def queue(database: Database, recipient: str = TOWNSHIP, count: int = 1,
          now: dt.datetime = NOW) -> None:
    with database.session() as session:
        for _ in range(count):
            mail = composed(recipient, now)
            enqueue_mail(session, message=None, kind="reminder", recipient=recipient,
                         subject=mail["Subject"], mail_message_id=mail["Message-ID"],
                         raw=bytes(mail), now=now)


def plain_sender(sink):
    return lambda: SmtpSender(sink.host, sink.port, "none", None, None, timeout=5)


def deliver(database: Database, sink, now: dt.datetime = NOW, **limits) -> DeliveryReport:
    return deliver_outbox(database, plain_sender(sink), now, limits=SendLimits(**limits))


def statuses(database: Database) -> list[OutboxStatus]:
    with database.session() as session:
        return [mail.status for mail in list_outbox(session)]


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_stops_run(database, smtp_sink):
    queue(database, "a@example.test", count=3)

    report = deliver(database, smtp_sink, per_minute=2)

    assert report.sent == 2
    assert len(smtp_sink.messages) == 2


def test_rate_limit_keeps_rest_pending(database, smtp_sink):
    queue(database, "a@example.test", count=3)

    deliver(database, smtp_sink, per_minute=2)

    assert statuses(database).count(OutboxStatus.PENDING) == 1


def test_rate_limit_reported(database, smtp_sink):
    queue(database, "a@example.test", count=3)

    report = deliver(database, smtp_sink, per_minute=2)

    assert report.rate_limited is True


def test_rate_limit_logged(database, smtp_sink, caplog):
    queue(database, "a@example.test", count=3)

    with caplog.at_level(logging.WARNING):
        deliver(database, smtp_sink, per_minute=2)

    assert "rate limit of 2 mails a minute reached; 1 due mails wait" in caplog.text


def test_rate_limit_holds_across_runs(database, smtp_sink):
    # GIVEN two mails sent 30 seconds ago by an earlier run
    queue(database, "a@example.test", count=3)
    deliver(database, smtp_sink, per_minute=2)

    # WHEN another run starts within the same minute
    report = deliver(database, smtp_sink, NOW + dt.timedelta(seconds=30), per_minute=2)

    # THEN nothing more goes out
    assert report.sent == 0


def test_rate_limit_holds_across_processes(database_url, smtp_sink):
    # Two Database objects have separate engines and pools, as two service processes would.
    first, second = Database(database_url), Database(database_url)
    try:
        first.upgrade()
        queue(first, "a@example.test", count=3)
        deliver(first, smtp_sink, per_minute=2)

        report = deliver(second, smtp_sink, NOW + dt.timedelta(seconds=30), per_minute=2)
    finally:
        first.dispose()
        second.dispose()

    assert report.sent == 0


@pytest.mark.postgres
def test_rate_limit_concurrent_processes(postgres_databases, smtp_sink):
    # GIVEN five due mails and two service processes sharing one PostgreSQL database
    url = postgres_databases.create()
    databases = [Database(url) for _ in range(2)]
    databases[0].upgrade()
    for number in range(5):
        queue(databases[0], f"unit{number}@example.test")

    # WHEN both run the outbox at the same moment with a limit of three a minute
    reports: list[DeliveryReport] = []
    threads = [threading.Thread(target=lambda db=db: reports.append(deliver(db, smtp_sink, per_minute=3)))
               for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()

    # THEN the advisory lock lets exactly three mails out between them
    assert len(smtp_sink.messages) == 3


def test_rate_limit_next_minute_sends(database, smtp_sink):
    queue(database, "a@example.test", count=3)
    deliver(database, smtp_sink, per_minute=2)

    report = deliver(database, smtp_sink, NOW + dt.timedelta(minutes=1), per_minute=2)

    assert report.sent == 1


def test_rate_limit_default_twenty(database, smtp_sink):
    for number in range(25):
        queue(database, f"unit{number}@example.test")

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert report.sent == 20


def test_rate_limit_idle_no_log(database, smtp_sink, caplog):
    queue(database, "a@example.test", count=2)
    deliver(database, smtp_sink, per_minute=2)

    with caplog.at_level(logging.WARNING):
        deliver(database, smtp_sink, NOW + dt.timedelta(seconds=10), per_minute=2)

    assert "rate limit" not in caplog.text


# --- daily cap per recipient -----------------------------------------------------------------


def test_daily_cap_defers_mail(database, smtp_sink):
    queue(database, count=3)

    report = deliver(database, smtp_sink, per_recipient_per_day=2)

    assert (report.sent, report.deferred) == (2, 1)


def test_daily_cap_mail_stays_pending(database, smtp_sink):
    queue(database, count=3)

    deliver(database, smtp_sink, per_recipient_per_day=2)

    assert statuses(database) == [OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.PENDING]


def test_daily_cap_next_attempt(database, smtp_sink):
    queue(database, count=3)

    deliver(database, smtp_sink, per_recipient_per_day=2)

    with database.session() as session:
        assert list_outbox(session)[2].next_attempt_at == NOW + dt.timedelta(hours=24)


def test_daily_cap_counts_no_attempt(database, smtp_sink):
    queue(database, count=3)

    deliver(database, smtp_sink, per_recipient_per_day=2)

    with database.session() as session:
        assert list_outbox(session)[2].attempts == 0


def test_daily_cap_logged(database, smtp_sink, caplog):
    queue(database, count=3)

    with caplog.at_level(logging.WARNING):
        deliver(database, smtp_sink, per_recipient_per_day=2)

    assert f"{TOWNSHIP} got 2 mails within 24 hours (cap 2)" in caplog.text


def test_daily_cap_other_recipient_sent(database, smtp_sink):
    queue(database, count=2)
    queue(database, "qingshuihe_kx@example.test")

    deliver(database, smtp_sink, per_recipient_per_day=1)

    assert [item.rcpt_tos for item in smtp_sink.messages] == [[TOWNSHIP], ["qingshuihe_kx@example.test"]]


def test_daily_cap_ignores_case(database, smtp_sink):
    queue(database, TOWNSHIP)
    queue(database, TOWNSHIP.upper())

    report = deliver(database, smtp_sink, per_recipient_per_day=1)

    assert report.deferred == 1


def test_daily_cap_across_runs(database, smtp_sink):
    # GIVEN a mail sent to the township in the morning
    queue(database)
    deliver(database, smtp_sink, per_recipient_per_day=1)

    # WHEN another mail to it is queued and the outbox runs eight hours later
    later = NOW + dt.timedelta(hours=8)
    queue(database, now=later)
    report = deliver(database, smtp_sink, later, per_recipient_per_day=1)

    # THEN it waits for the day after the first one
    assert report.deferred == 1


def test_daily_cap_sent_next_day(database, smtp_sink):
    queue(database, count=2)
    deliver(database, smtp_sink, per_recipient_per_day=1)

    report = deliver(database, smtp_sink, NOW + dt.timedelta(hours=24), per_recipient_per_day=1)

    assert report.sent == 1


def test_daily_cap_not_due_before(database, smtp_sink):
    queue(database, count=2)
    deliver(database, smtp_sink, per_recipient_per_day=1)

    report = deliver(database, smtp_sink, NOW + dt.timedelta(hours=23), per_recipient_per_day=1)

    assert (report.sent, report.deferred) == (0, 0)


def test_daily_cap_default_ten(database, smtp_sink):
    queue(database, count=12)

    report = deliver_outbox(database, plain_sender(smtp_sink), NOW)

    assert (report.sent, report.deferred) == (10, 2)


# --- permanent failures for the admin --------------------------------------------------------


def test_failed_outbox_lists_5xx(database, smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"
    queue(database, "gone@example.test")
    queue(database)
    deliver(database, smtp_sink)

    with database.session() as session:
        assert [mail.recipient for mail in failed_outbox(session, NOW)] == ["gone@example.test"]


def test_failed_outbox_keeps_reply(database, smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"
    queue(database, "gone@example.test")
    deliver(database, smtp_sink)

    with database.session() as session:
        assert "550 5.1.1 mailbox unavailable" in failed_outbox(session, NOW)[0].last_error


def test_failed_outbox_since_excludes_older(database, smtp_sink):
    smtp_sink.reject["gone@example.test"] = "550 5.1.1 mailbox unavailable"
    queue(database, "gone@example.test")
    deliver(database, smtp_sink)

    with database.session() as session:
        assert failed_outbox(session, NOW + dt.timedelta(seconds=1)) == []


def test_failed_outbox_skips_retries(database, smtp_sink):
    smtp_sink.reject["busy@example.test"] = "451 4.3.0 try again later"
    queue(database, "busy@example.test")
    deliver(database, smtp_sink)

    with database.session() as session:
        assert failed_outbox(session, NOW - dt.timedelta(days=1)) == []


# --- configuration ---------------------------------------------------------------------------

CONFIG = textwrap.dedent("""\
    [mailbox]
    host = "127.0.0.1"
    security = "none"
    username = "county@example.test"
    password = "secret"

    [smtp]
    host = "127.0.0.1"
    security = "none"
    {smtp}

    [campaign]
    name = "2023-2024年“科技之冬”活动"
    first_deadline = "2023-12-08 18:00"
    last_deadline = "2024-03-15 18:00"

    [[units]]
    name = "水定镇"
    emails = ["shuiding_kx@example.test"]
    """)


def settings(tmp_path, smtp: str = ""):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(smtp=smtp), encoding="utf-8")
    return load_settings(path)


def test_config_rate_default(tmp_path):
    assert settings(tmp_path).smtp.rate_per_minute == 20


def test_config_daily_cap_default(tmp_path):
    assert settings(tmp_path).smtp.daily_cap_per_recipient == 10


def test_config_rate_set(tmp_path):
    assert settings(tmp_path, "rate_per_minute = 5").smtp.rate_per_minute == 5


def test_config_daily_cap_set(tmp_path):
    assert settings(tmp_path, "daily_cap_per_recipient = 3").smtp.daily_cap_per_recipient == 3


@pytest.mark.parametrize("value", ["0", "\"20\"", "2.5", "true"])
def test_config_rate_invalid(tmp_path, value):
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, f"rate_per_minute = {value}")

    assert "[smtp] rate_per_minute 的值" in str(raised.value)


def test_config_daily_cap_invalid_names_range(tmp_path):
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, "daily_cap_per_recipient = -1")

    assert "应为 1 到 1000 之间的整数" in str(raised.value)


# --- attachments as they reach the sink ------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHORT_NAME = "附件二.xlsx"
LONG_NAME = "霍城县2023-2024“科技之冬”活动开展周统计表（水定镇第6周汇总，含填表说明）.xlsx"
FILE_DATA = b"PK\x03\x04 stand-in for a workbook \x00\xff"


def arrive(sink, attachments=((SHORT_NAME, FILE_DATA, XLSX),)) -> bytes:
    """Send one composed mail with ``attachments`` through the sink; return the bytes received."""
    mail = composed(attachments=list(attachments))
    with SmtpSender(sink.host, sink.port, "none", None, None, timeout=5) as sender:
        sender.send(bytes(mail), COUNTY, [TOWNSHIP])
    return sink.messages[-1].raw


def parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)


def part_headers(raw: bytes, marker: bytes = b"Content-Disposition: attachment") -> dict[str, str]:
    """Return the unfolded, undecoded headers of the first MIME part whose head has ``marker``."""
    head = next(block for block in raw.split(b"\r\n\r\n") if marker in block)
    lines = re.sub(r"\r\n[ \t]+", " ", head.decode("ascii")).split("\r\n")
    return {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1] for line in lines if ": " in line}


def top_header(raw: bytes, name: str) -> str:
    return part_headers(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", b"Message-ID")[name.lower()]


def test_attachment_mail_is_mixed(smtp_sink):
    assert parsed(arrive(smtp_sink)).get_content_type() == "multipart/mixed"


def test_attachment_body_first(smtp_sink):
    mail = parsed(arrive(smtp_sink))

    assert [part.get_content_type() for part in mail.iter_parts()] == ["multipart/alternative", XLSX]


def test_attachment_body_keeps_alternatives(smtp_sink):
    body = next(parsed(arrive(smtp_sink)).iter_parts())

    assert [part.get_content_type() for part in body.iter_parts()] == ["text/plain", "text/html"]


def test_attachment_text_readable(smtp_sink):
    text = parsed(arrive(smtp_sink)).get_body(preferencelist=("plain",)).get_content()

    assert "尚未收到" in text


def test_attachment_data_intact(smtp_sink):
    [attachment] = parsed(arrive(smtp_sink)).iter_attachments()

    assert attachment.get_content() == FILE_DATA


def test_attachment_rfc2231_raw(smtp_sink):
    headers = part_headers(arrive(smtp_sink))

    assert headers["content-disposition"] == "attachment; filename*=UTF-8''%E9%99%84%E4%BB%B6%E4%BA%8C.xlsx"


def test_attachment_rfc2047_in_quotes_raw(smtp_sink):
    headers = part_headers(arrive(smtp_sink))

    assert headers["content-type"] == f'{XLSX}; name="=?UTF-8?B?6ZmE5Lu25LqMLnhsc3g=?="'


def test_attachment_name_python_reads(smtp_sink):
    [attachment] = parsed(arrive(smtp_sink)).iter_attachments()

    assert attachment.get_filename() == SHORT_NAME


def test_attachment_name_zhoubao_reads(smtp_sink):
    [attachment] = parsed(arrive(smtp_sink)).iter_attachments()

    assert attachment_filename(attachment) == SHORT_NAME


def test_attachment_long_name_python_reads(smtp_sink):
    [attachment] = parsed(arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)])).iter_attachments()

    assert attachment.get_filename() == LONG_NAME


def test_attachment_long_name_words_decode(smtp_sink):
    name = part_headers(arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)]))["content-type"]
    quoted = re.search(r'name="([^"]*)"', name).group(1)

    assert str(make_header(decode_header(quoted))) == LONG_NAME


def test_attachment_long_name_words_short(smtp_sink):
    name = part_headers(arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)]))["content-type"]
    words = re.findall(r"=\?UTF-8\?B\?[^?]*\?=", name)

    assert max(len(word) for word in words) <= 75


def test_attachment_long_name_words_whole_chars(smtp_sink):
    name = part_headers(arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)]))["content-type"]
    words = re.findall(r"=\?UTF-8\?B\?([^?]*)\?=", name)

    # Each word decodes alone, so no character is split between two words (RFC 2047 section 5).
    assert "".join(base64.b64decode(word).decode("utf-8") for word in words) == LONG_NAME


def test_attachment_long_name_sections_whole_chars(smtp_sink):
    disposition = part_headers(arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)]))["content-disposition"]
    sections = re.findall(r"filename\*\d+\*=([^;\s]+)", disposition)

    assert "".join(unquote(section.removeprefix("UTF-8''"), errors="strict") for section in sections) == LONG_NAME


def test_attachment_headers_ascii(smtp_sink):
    raw = arrive(smtp_sink, [(LONG_NAME, FILE_DATA, XLSX)])

    assert raw.isascii()


def test_attachment_ascii_name_plain(smtp_sink):
    headers = part_headers(arrive(smtp_sink, [("week6.pdf", FILE_DATA, "application/pdf")]))

    assert headers["content-disposition"] == 'attachment; filename="week6.pdf"'


def test_attachment_line_break_in_name_dropped(smtp_sink):
    [attachment] = parsed(arrive(smtp_sink, [("附件\r\n二.xlsx", FILE_DATA, XLSX)])).iter_attachments()

    assert attachment.get_filename() == "附件二.xlsx"


def test_attachment_two_files_in_order(smtp_sink):
    files = [(SHORT_NAME, FILE_DATA, XLSX), ("说明.pdf", b"%PDF-1.4", "application/pdf")]

    names = [part.get_filename() for part in parsed(arrive(smtp_sink, files)).iter_attachments()]

    assert names == [SHORT_NAME, "说明.pdf"]


def test_no_attachment_stays_alternative(smtp_sink):
    assert parsed(arrive(smtp_sink, [])).get_content_type() == "multipart/alternative"


def test_attachment_mail_from_outside_word(smtp_sink):
    raw = arrive(smtp_sink)

    assert re.fullmatch(r"(=\?utf-8\?b\?[A-Za-z0-9+/=]+\?= ?)+<hckexie2023@example\.test>",
                        top_header(raw, "From"))


def test_attachment_mail_date(smtp_sink):
    assert parsed(arrive(smtp_sink))["Date"].datetime == NOW


def test_attachment_mail_message_id(smtp_sink):
    assert re.fullmatch(r"<[^<>@\s]+@example\.test>", parsed(arrive(smtp_sink))["Message-ID"])


def test_attachment_mime_version_once(smtp_sink):
    assert arrive(smtp_sink).count(b"MIME-Version:") == 1


def test_outbox_sends_attachment_mail(database, smtp_sink):
    mail = composed(attachments=[(SHORT_NAME, FILE_DATA, XLSX)])
    with database.session() as session:
        enqueue_mail(session, message=None, kind="digest", recipient=TOWNSHIP,
                     subject=mail["Subject"], mail_message_id=mail["Message-ID"],
                     raw=bytes(mail), now=NOW)

    deliver(database, smtp_sink)

    [attachment] = parsed(smtp_sink.messages[0].raw).iter_attachments()
    assert attachment.get_filename() == SHORT_NAME
