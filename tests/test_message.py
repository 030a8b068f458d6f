"""parse_message on mails built as the township clients write them, and on broken input."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.message import IncomingMail, parse_message
from service.samples.mails import CRLF, MailStyle, build_mail, encoded_word
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx

XLSX = build_xlsx([SAMPLE_ROWS["valid"]])
DOCX = build_docx([SAMPLE_ROWS["valid"]], unit="萨尔布拉克镇", reporter="赵喆")
FILENAME = "萨尔布拉克镇第4周“科技之冬”统计表（赵喆）.xlsx"
SUBJECT = "萨尔布拉克镇第4周科技之冬周统计表（赵喆）"
SENDER = "saerbulake_kx@163.com"
SENDER_NAME = "萨尔布拉克镇科协"
CST = dt.timezone(dt.timedelta(hours=8))
DATE = dt.datetime(2023, 12, 29, 11, 26, 40, tzinfo=CST)

CARRYING_STYLES = [
    MailStyle.WEBMAIL_163,
    MailStyle.THUNDERBIRD,
    MailStyle.OUTLOOK_EXPRESS,
    MailStyle.RAW_UTF8,
    MailStyle.OUTLOOK_GBK,
    MailStyle.ANDROID,
    MailStyle.FOXMAIL,
    MailStyle.QQMAIL,
    MailStyle.MAILMASTER,
]


def township_mail(style: MailStyle, attachment: bytes | None = XLSX, filename: str = FILENAME) -> IncomingMail:
    raw = build_mail(
        style,
        sender=SENDER,
        sender_name=SENDER_NAME,
        subject=SUBJECT,
        attachment=attachment,
        filename=filename,
        date=DATE,
        message_id=f"<{style}.1@163.com>",
    )
    return parse_message(raw)


def plain_mail(*headers: str, body: str = "hello") -> bytes:
    lines = [
        "From: 水定镇 <shuiding_kx@163.com>",
        "To: hckexie-county@example.test",
        "Subject: test",
        "Date: Fri, 22 Dec 2023 16:42:10 +0800",
        "Message-ID: <plain.1@163.com>",
        "MIME-Version: 1.0",
        *headers,
        "Content-Type: text/plain; charset=UTF-8",
        "",
        body,
    ]
    return CRLF.join(lines).encode("utf-8")


def multipart_mail(content_type: str, *parts: str) -> bytes:
    boundary = "b0undary"
    head = [
        "From: shuiding_kx@163.com",
        "Subject: test",
        "MIME-Version: 1.0",
        f'Content-Type: {content_type}; boundary="{boundary}"',
        "",
    ]
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    return (CRLF.join(head) + CRLF + body).encode("utf-8")


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_attachment_filename(style):
    assert [item.filename for item in township_mail(style).attachments] == [FILENAME]


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_attachment_bytes(style):
    assert township_mail(style).attachments[0].data == XLSX


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_attachment_kind_xlsx(style):
    assert township_mail(style).attachments[0].kind == "xlsx"


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_attachment_kind_docx(style):
    mail = township_mail(style, attachment=DOCX, filename="萨尔布拉克镇第4周统计表.docx")
    assert mail.attachments[0].kind == "docx"


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_sender_address(style):
    assert township_mail(style).sender == SENDER


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_sender_name(style):
    assert township_mail(style).sender_name == SENDER_NAME


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_subject(style):
    assert township_mail(style).subject == SUBJECT


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_date(style):
    assert township_mail(style).date == DATE


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_message_id(style):
    assert township_mail(style).message_id == f"<{style}.1@163.com>"


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_body_text(style):
    assert "请查收" in township_mail(style).body_text


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_township_mail_not_automatic(style):
    assert township_mail(style).automatic is False


@pytest.mark.parametrize("style", CARRYING_STYLES)
def test_township_mail_not_bounce(style):
    assert township_mail(style).bounce is False


def test_phone_content_type_kept():
    assert township_mail(MailStyle.ANDROID).attachments[0].content_type == "application/octet-stream"


def test_phone_octet_stream_sniffed_as_xlsx():
    assert township_mail(MailStyle.ANDROID).attachments[0].kind == "xlsx"


def test_declared_content_type():
    mail = township_mail(MailStyle.WEBMAIL_163)
    assert mail.attachments[0].content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_gbk_quoted_printable_body():
    raw = build_mail(MailStyle.OUTLOOK_GBK, attachment=XLSX, body="萨尔布拉克镇 赵喆\n电话：136****0005")
    assert "赵喆" in parse_message(raw).body_text


def test_body_line_ends_are_newlines():
    raw = build_mail(MailStyle.ANDROID, attachment=XLSX, body="第一行\n第二行")
    assert parse_message(raw).body_text == "第一行\n第二行"


def test_no_attachment_mail():
    assert township_mail(MailStyle.NO_ATTACHMENT).attachments == []


def test_no_attachment_mail_body():
    assert "请查收" in township_mail(MailStyle.NO_ATTACHMENT).body_text


def test_style_without_file():
    assert township_mail(MailStyle.WEBMAIL_163, attachment=None).attachments == []


def test_autoreply_automatic():
    assert township_mail(MailStyle.AUTOREPLY).automatic is True


def test_autoreply_has_no_attachment():
    assert township_mail(MailStyle.AUTOREPLY).attachments == []


def test_autoreply_references():
    assert township_mail(MailStyle.AUTOREPLY).references == (
        "<1703238662.9981.huiyuan@mail.example.test>",
        "<receipt-20231222-0007@hckexie.example.test>",
    )


def test_in_reply_to_when_no_references():
    raw = plain_mail("In-Reply-To: <receipt-1@hckexie.example.test>")
    assert parse_message(raw).references == ("<receipt-1@hckexie.example.test>",)


def test_no_references():
    assert parse_message(plain_mail()).references == ()


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-replied; owner-email=clerk@example.test",
        "X-Autoreply: yes",
        "X-Autorespond: 我不在办公室",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Precedence: auto_reply",
        "X-Auto-Response-Suppress: All",
    ],
)
def test_automatic_header(header):
    assert parse_message(plain_mail(header)).automatic is True


def test_auto_submitted_no():
    assert parse_message(plain_mail("Auto-Submitted: no")).automatic is False


def test_auto_submitted_no_case_insensitive():
    assert parse_message(plain_mail("Auto-Submitted: No")).automatic is False


def test_precedence_first_class():
    assert parse_message(plain_mail("Precedence: first-class")).automatic is False


def test_autoreply_subject_alone_not_automatic():
    raw = plain_mail().replace(b"Subject: test", f"Subject: {encoded_word('自动回复：水定镇第3周', 'UTF-8')}".encode())
    assert parse_message(raw).automatic is False


def test_bounce_report():
    assert township_mail(MailStyle.BOUNCE).bounce is True


def test_bounce_returned_file_not_attachment():
    assert township_mail(MailStyle.BOUNCE).attachments == []


def test_bounce_body_is_notice():
    assert "550 Mailbox not found" in township_mail(MailStyle.BOUNCE).body_text


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@163.com", "postmaster@qq.com", "Mailer-Daemon"])
def test_bounce_sender(sender):
    raw = plain_mail().replace("From: 水定镇 <shuiding_kx@163.com>".encode(), f"From: {sender}".encode())
    assert parse_message(raw).bounce is True


def test_bounce_null_return_path():
    assert parse_message(plain_mail("Return-Path: <>")).bounce is True


def test_normal_return_path_not_bounce():
    assert parse_message(plain_mail("Return-Path: <shuiding_kx@163.com>")).bounce is False


def test_sender_lower_cased():
    raw = plain_mail().replace(b"shuiding_kx@163.com", b"ShuiDing_KX@163.COM")
    assert parse_message(raw).sender == "shuiding_kx@163.com"


def test_raw_utf8_sender_name():
    assert parse_message(plain_mail()).sender_name == "水定镇"


def test_date_minus_zero_is_utc():
    raw = plain_mail().replace(b"+0800", b"-0000")
    assert parse_message(raw).date == dt.datetime(2023, 12, 22, 16, 42, 10, tzinfo=dt.timezone.utc)


def test_invalid_date_is_none():
    raw = plain_mail().replace(b"Fri, 22 Dec 2023 16:42:10 +0800", "2023年12月22日".encode())
    assert parse_message(raw).date is None


def test_missing_message_id_is_none():
    raw = plain_mail().replace(b"Message-ID: <plain.1@163.com>\r\n", b"")
    assert parse_message(raw).message_id is None


def test_message_id_without_brackets_kept():
    raw = plain_mail().replace(b"<plain.1@163.com>", b"plain.1@163.com")
    assert parse_message(raw).message_id == "plain.1@163.com"


def test_forwarded_mail_attachment_found():
    inner = build_mail(MailStyle.WEBMAIL_163, attachment=XLSX, filename=FILENAME).decode("utf-8")
    raw = multipart_mail(
        "multipart/mixed",
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n转发统计表",
        "Content-Type: message/rfc822\r\n\r\n" + inner,
    )
    assert [item.filename for item in parse_message(raw).attachments] == [FILENAME]


def test_forwarded_mail_body_not_used():
    inner = build_mail(MailStyle.WEBMAIL_163, attachment=XLSX, body="原邮件正文").decode("utf-8")
    raw = multipart_mail(
        "multipart/mixed",
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n转发统计表",
        "Content-Type: message/rfc822\r\n\r\n" + inner,
    )
    assert parse_message(raw).body_text == "转发统计表"


def test_inline_image_not_attachment():
    raw = multipart_mail(
        "multipart/related",
        'Content-Type: text/html; charset=UTF-8\r\n\r\n<p>见附件</p><img src="cid:logo">',
        "Content-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=",
    )
    assert parse_message(raw).attachments == []


def test_html_only_body_text():
    raw = multipart_mail("multipart/mixed", "Content-Type: text/html; charset=UTF-8\r\n\r\n<p>见附件</p>")
    assert parse_message(raw).body_text == "见附件"


def test_nameless_octet_stream_is_attachment():
    raw = multipart_mail(
        "multipart/mixed",
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n见附件",
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK",
    )
    assert parse_message(raw).attachments[0].filename == "未命名附件.pdf"


def test_named_text_part_is_attachment():
    raw = multipart_mail(
        "multipart/mixed",
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n见附件",
        'Content-Type: text/csv; charset=UTF-8; name="week3.csv"\r\n\r\n乡镇,村\r\n1,12',
    )
    assert [item.filename for item in parse_message(raw).attachments] == ["week3.csv"]


def test_two_attachments_in_order():
    raw = multipart_mail(
        "multipart/mixed",
        'Content-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK',
        'Content-Type: application/pdf; name="b.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK',
    )
    assert [item.filename for item in parse_message(raw).attachments] == ["a.pdf", "b.pdf"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"garbage without headers",
        b"\xff\xfe\x00\x01" * 50,
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: application/pdf; name="=?utf-8?B?!!!?="\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%',
        b"From: <<<@@@>>>\r\nDate: 99 Foo 99999 99:99:99 +9999\r\nSubject: =?utf-8?B?5rC0?=\xff\r\n\r\n",
        b"Content-Type: text/plain; charset=\"base64\"\r\n\r\nabc",
        b"Content-Type: text/plain; charset*=''%ZZ\r\n\r\nabc",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n",
    ],
)
def test_malformed_input_returns_mail(raw):
    assert isinstance(parse_message(raw), IncomingMail)


def test_report_without_boundary_keeps_sender():
    raw = b"From: MAILER-DAEMON@163.com\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\nx"
    assert parse_message(raw).sender == "mailer-daemon@163.com"


def test_legacy_policy_fallback_keeps_sender():
    # The modern policy's header parser raises IndexError on a parameter name ending in "*".
    raw = b"From: shuiding_kx@163.com\r\nContent-Type: text/plain; charset*\r\n\r\nhello"
    assert parse_message(raw).sender == "shuiding_kx@163.com"


def test_legacy_policy_fallback_keeps_body():
    raw = b"From: shuiding_kx@163.com\r\nContent-Type: text/plain; charset*\r\n\r\nhello"
    assert parse_message(raw).body_text == "hello"


def test_truncated_mail_keeps_fields():
    raw = build_mail(MailStyle.WEBMAIL_163, attachment=XLSX)
    assert parse_message(raw[: len(raw) // 2]).sender == "shuiding_kx@163.com"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(raw):
    assert isinstance(parse_message(raw), IncomingMail)


BUILT = build_mail(MailStyle.OUTLOOK_EXPRESS, attachment=b"PK\x03\x04" + bytes(200), filename="赵喆.xlsx")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BUILT) - 1), st.binary(min_size=1, max_size=8))
def test_fuzz_corrupted_mail(position, noise):
    raw = BUILT[:position] + noise + BUILT[position + len(noise):]
    assert isinstance(parse_message(raw), IncomingMail)
