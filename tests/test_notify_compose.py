"""Composed replies as they arrive at a real SMTP sink: headers decoded, both alternatives intact."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from notify.compose import compose_mail
from notify.notices import UnreadableNotice
from notify.render import render_notice
from notify.smtp import SmtpSender

BEIJING = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2023, 12, 22, 17, 59, 30, tzinfo=BEIJING)
COUNTY = "hckexie2023@example.test"
TOWNSHIP = "sangong_kx@example.test"
ORIGINAL_ID = "<m12.sangong@example.test>"


def compose(**changes) -> EmailMessage:
    rendered = render_notice(
        UnreadableNotice(
            received_subject="三宫回族乡第3周科技之冬周统计表",
            received_at=dt.datetime(2023, 12, 22, 17, 58, tzinfo=BEIJING),
            unit="三宫回族乡",
        ),
        signature="霍城县科协",
    )
    fields = dict(
        from_address=COUNTY,
        from_name="霍城县科协",
        to=TOWNSHIP,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind="unreadable",
        now=NOW,
        in_reply_to=ORIGINAL_ID,
        references=["<m11.earlier@example.test>"],
    )
    fields.update(changes)
    return compose_mail(**fields)


@pytest.fixture
def arrived(smtp_sink) -> tuple[bytes, EmailMessage]:
    """Send one composed reply through the sink; return the raw bytes and the parsed mail."""
    with SmtpSender(smtp_sink.host, smtp_sink.port, "none", None, None, timeout=5) as sender:
        sender.send(bytes(compose()), COUNTY, [TOWNSHIP])
    raw = smtp_sink.messages[0].raw
    return raw, message_from_bytes(raw, policy=policy.default)


def raw_header(raw: bytes, name: str) -> str:
    """Return a header as it travelled, unfolded but not decoded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")
    return next(line.split(": ", 1)[1] for line in lines if line.lower().startswith(f"{name.lower()}: "))


def test_compose_from_address_outside_encoded_word(arrived):
    raw, _ = arrived

    assert re.fullmatch(r"(=\?utf-8\?b\?[A-Za-z0-9+/=]+\?= ?)+<hckexie2023@example\.test>", raw_header(raw, "From"))


def test_compose_from_name_decodes(arrived):
    _, mail = arrived

    assert mail["From"].addresses[0].display_name == "霍城县科协"


def test_compose_subject_decodes(arrived):
    _, mail = arrived

    assert mail["Subject"] == "退回通知：三宫回族乡来信未附周统计表，请补发附件"


def test_compose_headers_ascii_only(arrived):
    raw, _ = arrived
    head = raw.split(b"\r\n\r\n", 1)[0]

    assert head.isascii()


def test_compose_date_is_now(arrived):
    _, mail = arrived

    assert mail["Date"].datetime == NOW


def test_compose_message_id_from_domain(arrived):
    _, mail = arrived

    assert re.fullmatch(r"<[^<>@\s]+@example\.test>", mail["Message-ID"])


def test_compose_message_ids_unique():
    assert compose()["Message-ID"] != compose()["Message-ID"]


def test_compose_in_reply_to(arrived):
    _, mail = arrived

    assert mail["In-Reply-To"] == ORIGINAL_ID


def test_compose_references_chain(arrived):
    _, mail = arrived

    assert mail["References"] == f"<m11.earlier@example.test> {ORIGINAL_ID}"


def test_compose_references_without_brackets():
    mail = compose(in_reply_to="m12.sangong@example.test", references=[])

    assert mail["References"] == ORIGINAL_ID


def test_compose_no_reply_headers_when_new():
    mail = compose(in_reply_to=None, references=[])

    assert (mail["In-Reply-To"], mail["References"]) == (None, None)


def test_compose_auto_submitted(arrived):
    _, mail = arrived

    assert mail["Auto-Submitted"] == "auto-replied"


def test_compose_notice_auto_generated():
    # A reminder or digest answers no mail, so RFC 3834 calls it auto-generated.
    assert compose(in_reply_to=None, references=[])["Auto-Submitted"] == "auto-generated"


def test_compose_notice_kind_header(arrived):
    _, mail = arrived

    assert mail["X-Zhoubao-Notice"] == "unreadable"


def test_compose_multipart_alternative(arrived):
    _, mail = arrived

    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]


def test_compose_text_part_chinese(arrived):
    _, mail = arrived
    text = mail.get_body(preferencelist=("plain",)).get_content()

    assert "邮件中没有附件。" in text


def test_compose_html_part_chinese(arrived):
    _, mail = arrived
    html = mail.get_body(preferencelist=("html",)).get_content()

    assert "邮件中没有附件。" in html


def test_compose_parts_declare_utf8(arrived):
    _, mail = arrived

    assert [part.get_content_charset() for part in mail.iter_parts()] == ["utf-8", "utf-8"]


def test_compose_body_7bit_safe(arrived):
    raw, _ = arrived

    assert raw.isascii()


def test_compose_long_from_name_keeps_address():
    mail = compose(from_name="霍城县科学技术协会“科技之冬”活动办公室周统计表收取系统")
    raw = bytes(mail)

    assert raw_header(raw, "From").endswith(" <hckexie2023@example.test>")
    assert "@" not in raw_header(raw, "From").rsplit(" <", 1)[0]


def test_compose_naive_now_rejected():
    with pytest.raises(ValueError):
        compose(now=dt.datetime(2023, 12, 22, 18, 0))
