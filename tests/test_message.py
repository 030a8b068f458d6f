"""parse_message on mails built as the township clients write them, and on broken input."""

import base64
import datetime as dt
import os

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.mailbox import FetchedMessage, Mailbox
from ingest.message import (
    MAX_MESSAGE_DEPTH,
    MAX_PART_DEPTH,
    TOO_DEEP_REASON,
    IncomingMail,
    encode_html,
    html_body_file,
    parse_message,
)
from ingest.table import FileProblem
from service.samples.mails import (
    CRLF,
    MailStyle,
    build_mail,
    build_mail_with_files,
    build_single_part_mail,
    encoded_word,
)
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


# Forwarded mails, several files, HTML bodies and mails that are the file.

TABLE_HTML = "<p>见下表</p><table><tr><td>乡镇（个）</td><td>村（个）</td></tr><tr><td>1</td><td>12</td></tr></table>"


def forwarded_mail(inner: bytes, **options) -> bytes:
    return build_mail_with_files(forwarded=[inner], subject="转发：水定镇第3周统计表", body="转发", **options)


def nested_forwards(levels: int, attachment: bytes = XLSX) -> bytes:
    raw = build_mail(MailStyle.QQMAIL, attachment=attachment, filename=FILENAME)
    for _ in range(levels):
        raw = forwarded_mail(raw)
    return raw


def nested_multiparts(levels: int) -> bytes:
    head, tail = "", ""
    for level in range(levels):
        head += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'
        tail = f"\r\n--b{level}--\r\n" + tail
    return ("From: shuiding_kx@163.com\r\nSubject: deep\r\n" + head + "Content-Type: text/plain\r\n\r\nhi" + tail).encode()


def test_several_attachments_in_order():
    raw = build_mail_with_files([("第3周.xlsx", XLSX), ("第3周.docx", DOCX), ("活动照片.pdf", b"%PDF-1.4\n")])
    assert [item.filename for item in parse_message(raw).attachments] == ["第3周.xlsx", "第3周.docx", "活动照片.pdf"]


def test_several_attachments_kinds():
    raw = build_mail_with_files([("第3周.xlsx", XLSX), ("第3周.docx", DOCX)])
    assert [item.kind for item in parse_message(raw).attachments] == ["xlsx", "docx"]


def test_body_html_holds_pasted_table():
    raw = build_mail_with_files(html=TABLE_HTML)
    assert "<td>村（个）</td>" in parse_message(raw).body_html


def test_body_html_empty_for_plain_mail():
    assert parse_message(plain_mail()).body_html == ""


def test_body_html_gbk_decoded():
    assert "请查收" in township_mail(MailStyle.FOXMAIL).body_html


def test_body_html_leaves_out_forwarded_body():
    inner = build_mail_with_files(html=TABLE_HTML, subject="水定镇第3周统计表")
    assert "<table>" not in parse_message(forwarded_mail(inner)).body_html


def test_forwarded_attachment_found():
    raw = forwarded_mail(build_mail(MailStyle.FOXMAIL, attachment=XLSX, filename=FILENAME))
    assert [item.filename for item in parse_message(raw).attachments] == [FILENAME]


def test_forwarded_attachment_bytes():
    raw = forwarded_mail(build_mail(MailStyle.FOXMAIL, attachment=XLSX, filename=FILENAME))
    assert parse_message(raw).attachments[0].data == XLSX


def test_forwarded_html_table_becomes_file():
    inner = build_mail_with_files(html=TABLE_HTML, subject="水定镇第3周统计表")
    names = [item.filename for item in parse_message(forwarded_mail(inner)).attachments]
    assert names == ["水定镇第3周统计表（正文）.html"]


def test_forwarded_html_table_kind():
    inner = build_mail_with_files(html=TABLE_HTML, subject="水定镇第3周统计表")
    assert parse_message(forwarded_mail(inner)).attachments[0].kind == "html"


def test_forwarded_html_table_readable():
    inner = build_mail_with_files(html=TABLE_HTML, subject="水定镇第3周统计表")
    data = parse_message(forwarded_mail(inner)).attachments[0].data
    assert "村（个）" in lxml.html.fromstring(data).text_content()


def test_forwarded_html_without_table_ignored():
    inner = build_mail_with_files(subject="水定镇第3周统计表")
    assert parse_message(forwarded_mail(inner)).attachments == []


def test_forwarded_subject_slash_removed():
    inner = build_mail_with_files(html=TABLE_HTML, subject="水定镇/第3周")
    assert parse_message(forwarded_mail(inner)).attachments[0].filename == "水定镇 第3周（正文）.html"


def test_base64_attached_mail_opened():
    inner = build_mail(MailStyle.FOXMAIL, attachment=XLSX, filename=FILENAME)
    raw = multipart_mail(
        "multipart/mixed",
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n转发",
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner).decode("ascii"),
    )
    assert [item.filename for item in parse_message(raw).attachments] == [FILENAME]


def test_forwards_within_depth_read():
    mail = parse_message(nested_forwards(MAX_MESSAGE_DEPTH))
    assert [item.filename for item in mail.attachments] == [FILENAME]


def test_forwards_within_depth_no_problem():
    assert parse_message(nested_forwards(MAX_MESSAGE_DEPTH)).problems == []


def test_forwards_beyond_depth_skipped():
    assert parse_message(nested_forwards(MAX_MESSAGE_DEPTH + 1)).attachments == []


def test_forwards_beyond_depth_problem():
    mail = parse_message(nested_forwards(MAX_MESSAGE_DEPTH + 1))
    assert mail.problems == [FileProblem("转发的邮件", TOO_DEEP_REASON)]


def test_max_depth_argument():
    assert parse_message(nested_forwards(2), max_depth=1).attachments == []


def test_too_many_mime_levels_problem():
    mail = parse_message(nested_multiparts(MAX_PART_DEPTH + 5))
    assert mail.problems == [FileProblem("转发的邮件", TOO_DEEP_REASON)]


def test_mime_levels_within_cap_read():
    assert parse_message(nested_multiparts(MAX_PART_DEPTH - 1)).body_text == "hi"


def test_parser_recursion_limit_keeps_sender():
    # Python 3.11's parser raises RecursionError near 1000 levels.
    assert parse_message(nested_multiparts(1500)).sender == "shuiding_kx@163.com"


def test_parser_recursion_limit_problem():
    assert parse_message(nested_multiparts(1500)).problems == [FileProblem("转发的邮件", TOO_DEEP_REASON)]


def test_single_part_mail_is_file():
    mail = parse_message(build_single_part_mail(XLSX, FILENAME))
    assert [item.filename for item in mail.attachments] == [FILENAME]


def test_single_part_mail_bytes():
    assert parse_message(build_single_part_mail(XLSX, FILENAME)).attachments[0].data == XLSX


def test_single_part_mail_no_body_text():
    assert parse_message(build_single_part_mail(XLSX, FILENAME)).body_text == ""


def test_single_part_nameless_octet_stream():
    mail = parse_message(build_single_part_mail(XLSX, None, content_type="application/octet-stream"))
    assert [item.filename for item in mail.attachments] == ["未命名附件.xlsx"]


def test_single_part_file_labelled_text():
    mail = parse_message(build_single_part_mail(DOCX, None, content_type="text/plain"))
    assert [item.kind for item in mail.attachments] == ["docx"]


def test_single_part_text_not_attachment():
    assert parse_message(plain_mail(body="水定镇第3周")).attachments == []


def test_encode_html_overrides_old_charset():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>水定镇</body></html>'
    assert lxml.html.fromstring(encode_html(html)).text_content() == "水定镇"


def test_html_body_file_none_without_table():
    assert html_body_file("水定镇", "<p>见附件</p>") is None


# Headers of a mail too large to fetch, from a private Dovecot.

def big_mail() -> bytes:
    return build_mail(MailStyle.WEBMAIL_163, attachment=os.urandom(300_000), filename="活动照片.jpg",
                      subject=SUBJECT, sender=SENDER)


def fetched_headers(imap_account) -> FetchedMessage:
    imap_account.append(big_mail())
    with Mailbox(imap_account.host, imap_account.port, "none", imap_account.username,
                 imap_account.password) as box:
        return box.fetch_headers(box.list_uids()[0])


@pytest.mark.dovecot
def test_fetch_headers_leaves_out_body(imap_account):
    assert len(fetched_headers(imap_account).raw) < 3000


@pytest.mark.dovecot
def test_fetch_headers_size_is_whole_mail(imap_account):
    assert fetched_headers(imap_account).size == len(big_mail())


@pytest.mark.dovecot
def test_fetch_headers_parse_sender(imap_account):
    assert parse_message(fetched_headers(imap_account).raw).sender == SENDER


@pytest.mark.dovecot
def test_fetch_headers_parse_subject(imap_account):
    assert parse_message(fetched_headers(imap_account).raw).subject == SUBJECT


@pytest.mark.dovecot
def test_fetch_headers_keeps_unseen(imap_account):
    fetched_headers(imap_account)
    assert b"\\Seen" not in imap_account.flags()[imap_account.uids()[0]]
