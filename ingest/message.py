"""Turn the raw bytes of one mail into the fields the pipeline needs, without I/O.

``parse_message`` degrades on malformed input instead of raising. A header that cannot be parsed
becomes ``None`` or ``""``. A MIME tree that the modern policy cannot walk is walked again with the
legacy one, and fuzz tests in tests/test_message.py check that no exception escapes. Attachments
are recognised by their bytes (``ingest.sniff``) because phone apps label every file
``application/octet-stream``.

Clerks forward the mail that carried the table, so the files of attached mails (message/rfc822)
count as attachments of the outer mail. Nesting is capped: a part deeper than the cap is skipped
and recorded as a :class:`~ingest.table.FileProblem` for the reply.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.errors
import email.parser
import email.policy
import email.utils
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Policy

import lxml.etree
import lxml.html

from ingest.filenames import attachment_filename, decode_text, header_text, raw_header
from ingest.sniff import sniff_kind
from ingest.table import FileProblem

logger = logging.getLogger(__name__)

# Exceptions the standard library's parser and header classes raise on input they cannot handle.
# For example Python 3.11.7's modern header parser raises IndexError on "Content-Type: x/y; a*".
_PARSE_ERRORS = (
    email.errors.MessageError,
    AttributeError,
    IndexError,
    LookupError,
    TypeError,
    UnicodeError,
    ValueError,
)

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

# RFC 3834 §5 defines Auto-Submitted. The X- headers are nonstandard markers of Microsoft Exchange
# (X-Auto-Response-Suppress) and older autoresponders. No person sends Precedence: auto_reply.
_AUTOMATIC_PRESENT = ("x-autoreply", "x-autorespond", "x-auto-response-suppress")
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})

# Extensions for a file name made up when a part carries none (see _fallback_filename).
_KIND_EXTENSIONS = {
    "xlsx": ".xlsx", "xlsm": ".xlsm", "xls": ".xls", "docx": ".docx", "doc": ".doc",
    "zip": ".zip", "pdf": ".pdf", "rar": ".rar", "7z": ".7z", "html": ".html", "csv": ".csv",
}
_UNNAMED = "未命名附件"

# Mails inside mails (forwarded as attachments), counted from the received mail.
MAX_MESSAGE_DEPTH = 5
# MIME entities inside one another. A mail forwarded five times as an attachment nests about 20
# deep, and the standard library's parser fails with RecursionError near 1000 (Python 3.11).
MAX_PART_DEPTH = 40

TOO_DEEP_REASON = (
    "邮件中转发的邮件层层嵌套，超过了可读取的层数，其中的附件没有读取。"
    "请直接把统计表文件作为附件发送。"
)
_FORWARDED_NAME = "转发的邮件"
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
# Kinds that are never text: a text/* part carrying them is a file under a wrong label.
_BINARY_KINDS = frozenset({"xlsx", "xlsm", "docx", "xls", "doc", "wps", "et", "zip", "rar", "7z", "pdf",
                           "image", "encrypted"})
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


@dataclass(frozen=True)
class Attachment:
    """One file found in a mail.

    ``content_type`` is what the sender declared. ``kind`` is what the bytes are, as
    ``ingest.sniff.sniff_kind`` names it ("xlsx", "docx", "pdf", "image", "unknown", ...).
    """

    filename: str
    data: bytes
    content_type: str
    kind: str


@dataclass
class IncomingMail:
    """The fields of one received mail that decide what zhoubao does with it.

    ``sender`` is the lower-cased addr-spec of From. ``references`` lists the message ids a reply
    must quote (RFC 5322 §3.6.4): the References field, or In-Reply-To when References is absent.
    ``automatic`` marks auto-replies and list mail, and ``bounce`` marks delivery reports.
    zhoubao replies to neither, because a reply could start a mail loop.

    ``body_html`` joins the text/html parts of this mail's own body, where a clerk may paste the
    table. ``problems`` lists the parts skipped because they were nested too deep.
    """

    message_id: str | None
    sender: str | None
    sender_name: str
    subject: str
    date: dt.datetime | None
    references: tuple[str, ...]
    attachments: list[Attachment] = field(default_factory=list)
    body_text: str = ""
    automatic: bool = False
    bounce: bool = False
    body_html: str = ""
    problems: list[FileProblem] = field(default_factory=list)


@dataclass
class _Texts:
    """The body text of one mail: the received one or an attached one."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)


def parse_message(raw: bytes, *, max_depth: int = MAX_MESSAGE_DEPTH) -> IncomingMail:
    """Parse raw RFC 5322 bytes into an :class:`IncomingMail`, degrading on malformed parts.

    ``max_depth`` caps how many mails deep attached mails are opened; deeper ones become a
    :class:`~ingest.table.FileProblem`.
    """
    for policy in (email.policy.default, email.policy.compat32):
        try:
            return _parse(raw, policy, max_depth)
        except RecursionError:
            # The parser recurses once per nesting level, so only the headers can be read.
            logger.warning("message: MIME tree too deep for the parser, reading the headers only")
            return _parse_headers_only(raw)
        except _PARSE_ERRORS as err:
            logger.warning("message: parsing with %s policy failed: %r", _policy_name(policy), err)

    logger.warning("message: unparseable, %d bytes kept without fields", len(raw))
    return IncomingMail(None, None, "", "", None, ())


def encode_html(html: str) -> bytes:
    """Encode HTML text as UTF-8 for a reader, declaring the charset first.

    The text was decoded from the mail's charset, so a ``<meta charset=gb2312>`` inside it is
    now false. HTML parsers such as libxml2 take the first declaration.
    """
    return ('<meta http-equiv="Content-Type" content="text/html; charset=utf-8">' + html).encode("utf-8")


def html_body_file(subject: str, html: str) -> Attachment | None:
    """Return the HTML body of an attached mail as a file to read, when it contains a table.

    A clerk who forwards the mail that carried a pasted table sends the table only in that
    mail's body. The file is named after the mail's subject, which often states the week.
    """
    if "<table" not in html.lower():
        return None
    subject = _UNSAFE_NAME.sub(" ", subject).strip()[:80]
    return Attachment(f"{subject or _FORWARDED_NAME}（正文）.html", encode_html(html), "text/html", "html")


def _parse(raw: bytes, policy: Policy, max_depth: int) -> IncomingMail:
    message = email.message_from_bytes(raw, policy=policy)
    walk = _Walk(max_depth)
    texts = _Texts()
    walk.part(message, texts, depth=0, level=0)
    return _incoming(message, texts, walk.attachments, walk.problems)


def _parse_headers_only(raw: bytes) -> IncomingMail:
    problems = [FileProblem(_FORWARDED_NAME, TOO_DEEP_REASON)]
    try:
        message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        return _incoming(message, _Texts(), [], problems)
    except _PARSE_ERRORS as err:
        logger.warning("message: headers unparseable: %r", err)
        return IncomingMail(None, None, "", "", None, (), problems=problems)


def _incoming(message: Message, texts: _Texts, attachments: list[Attachment],
              problems: list[FileProblem]) -> IncomingMail:
    sender_name, sender = _sender(message)
    return IncomingMail(
        message_id=_first_message_id(raw_header(message, "message-id")),
        sender=sender,
        sender_name=sender_name,
        subject=header_text(raw_header(message, "subject") or ""),
        date=_date(raw_header(message, "date")),
        references=_references(message),
        attachments=attachments,
        body_text=_body_text(texts),
        automatic=_is_automatic(message),
        bounce=_is_bounce(message, sender),
        body_html="\n".join(texts.html).strip(),
        problems=problems,
    )


class _Walk:
    """Depth-first walk of a MIME tree that sorts leaves into attachments and body text.

    Attachments and problems are collected for the whole tree. Body text is collected per mail:
    an attached mail's text is not the received mail's body, but its HTML may hold the table.
    """

    def __init__(self, max_level: int):
        self.max_level = max_level
        self.attachments: list[Attachment] = []
        self.problems: list[FileProblem] = []

    def part(self, part: Message, texts: _Texts, *, depth: int, level: int, related: bool = False) -> None:
        if depth > MAX_PART_DEPTH:
            self._skip(part, f"more than {MAX_PART_DEPTH} MIME levels")
            return

        content_type = part.get_content_type()
        if part.is_multipart() and content_type == "multipart/report":
            # A delivery report returns our own mail inside it; its files are not a submission.
            _collect_report_text(part, texts)
            return

        if part.is_multipart() and content_type.startswith("message/"):
            if content_type in _MESSAGE_TYPES:
                self._attached_mail(part, depth=depth, level=level)
            return

        if part.is_multipart():
            for child in part.get_payload():
                self.part(child, texts, depth=depth + 1, level=level,
                          related=content_type == "multipart/related")
            return

        # TODO: Outlook's TNEF wrapper (winmail.dat, application/ms-tnef) is kept as one
        # attachment; the files inside it are not extracted.
        if _is_attachment(part, related):
            self.attachments.append(_attachment(part, len(self.attachments) + 1))
        else:
            _add_body_text(part, texts)

    def _attached_mail(self, part: Message, *, depth: int, level: int) -> None:
        if level >= self.max_level:
            self._skip(part, f"an attached mail beyond {self.max_level} levels")
            return

        for child in _attached_messages(part):
            texts = _Texts()
            self.part(child, texts, depth=depth + 1, level=level + 1)
            self._add_forwarded_html(child, texts)

    def _add_forwarded_html(self, message: Message, texts: _Texts) -> None:
        subject = header_text(raw_header(message, "subject") or "")
        body = html_body_file(subject, "\n".join(texts.html))
        if body is not None:
            self.attachments.append(body)

    def _skip(self, part: Message, cause: str) -> None:
        logger.warning("message: skipped %s (%s)", part.get_content_type(), cause)
        problem = FileProblem(_FORWARDED_NAME, TOO_DEEP_REASON)
        if problem not in self.problems:
            self.problems.append(problem)


def _attached_messages(part: Message) -> list[Message]:
    """Return the mails inside a message/rfc822 part.

    RFC 2046 §5.2.1 allows only 7bit, 8bit or binary here, but some clients base64-encode the
    attached mail. The parser then yields one headerless part holding the base64 text.
    """
    children = part.get_payload()
    encoding = (raw_header(part, "content-transfer-encoding") or "").strip().lower()
    if encoding != "base64" or len(children) != 1 or children[0].is_multipart():
        return children

    text = children[0].get_payload()
    try:
        data = base64.b64decode(text if isinstance(text, str) else "", validate=False)
    except (binascii.Error, ValueError) as err:
        logger.info("message: base64 attached mail not decoded: %s", err)
        return children
    return [email.message_from_bytes(data, policy=part.policy)]


def _collect_report_text(report: Message, texts: _Texts) -> None:
    children = report.get_payload()
    if children and not children[0].is_multipart():
        _add_body_text(children[0], texts)


def _is_attachment(part: Message, related: bool) -> bool:
    if attachment_filename(part) is not None:
        return True

    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True

    if part.get_content_maintype() == "text":
        # A phone app may send a whole file as a mail whose only part is labelled text/plain.
        return _is_binary_file(part)

    # An image referenced from the HTML body (cid:) is part of the body, not a file sent to us.
    return not (related and part.get("content-id") is not None)


def _is_binary_file(part: Message) -> bool:
    data = part.get_payload(decode=True) or b""
    return sniff_kind(data, None) in _BINARY_KINDS


def _attachment(part: Message, position: int) -> Attachment:
    data = part.get_payload(decode=True) or b""
    content_type = part.get_content_type()
    filename = attachment_filename(part)
    kind = sniff_kind(data, filename)

    if filename is None:
        filename = _fallback_filename(kind, content_type, position)
        logger.info("message: attachment %d has no file name, calling it %s", position, filename)

    return Attachment(filename=filename, data=data, content_type=content_type, kind=kind)


def _fallback_filename(kind: str, content_type: str, position: int) -> str:
    # Replies list attachments by name, so a nameless part gets a readable Chinese one.
    extension = _KIND_EXTENSIONS.get(kind) or mimetypes.guess_extension(content_type) or ""
    suffix = "" if position == 1 else str(position)
    return f"{_UNNAMED}{suffix}{extension}"


def _add_body_text(part: Message, texts: _Texts) -> None:
    subtype = part.get_content_type()
    if subtype not in ("text/plain", "text/html"):
        return

    data = part.get_payload(decode=True) or b""
    text = decode_text(data, part.get_content_charset()).replace("\r\n", "\n")
    if subtype == "text/plain":
        texts.plain.append(text)
    else:
        texts.html.append(text)


def _body_text(texts: _Texts) -> str:
    if texts.plain:
        return "\n".join(text.strip() for text in texts.plain).strip()
    return "\n".join(_html_to_text(html) for html in texts.html).strip()


def _html_to_text(html: str) -> str:
    if not html.strip():
        return ""
    try:
        return lxml.html.fromstring(html).text_content().strip()
    except (lxml.etree.ParserError, ValueError) as err:
        # ValueError: lxml rejects str input that carries an XML encoding declaration.
        logger.debug("message: HTML body not parsed: %s", err)
        return ""


def _sender(message: Message) -> tuple[str, str | None]:
    value = raw_header(message, "from") or raw_header(message, "sender")
    if not value:
        return "", None

    name, address = email.utils.parseaddr(value)
    address = address.strip().lower()
    return header_text(name), address or None


def _first_message_id(value: str | None) -> str | None:
    if value is None:
        return None

    match = _MESSAGE_ID.search(value)
    if match:
        return match.group()
    return value.strip() or None


def _references(message: Message) -> tuple[str, ...]:
    references = _MESSAGE_ID.findall(raw_header(message, "references") or "")
    if references:
        return tuple(references)
    return tuple(_MESSAGE_ID.findall(raw_header(message, "in-reply-to") or ""))


def _date(value: str | None) -> dt.datetime | None:
    if not value:
        return None

    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (ValueError, TypeError, IndexError, OverflowError):
        logger.info("message: Date %r is not an RFC 5322 date", value)
        return None

    # RFC 5322 §3.3: a "-0000" zone means UTC with the local zone unknown; keep it aware.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


def _is_automatic(message: Message) -> bool:
    auto_submitted = _token(raw_header(message, "auto-submitted"))
    if auto_submitted and auto_submitted != "no":
        return True

    if any(raw_header(message, name) is not None for name in _AUTOMATIC_PRESENT):
        return True

    return _token(raw_header(message, "precedence")) in _AUTOMATIC_PRECEDENCE


def _is_bounce(message: Message, sender: str | None) -> bool:
    if message.get_content_type() == "multipart/report":
        return True

    if sender is not None and sender.split("@", 1)[0] in _BOUNCE_SENDERS:
        return True

    # RFC 5321 §4.5.5: delivery reports are sent with an empty reverse path, MAIL FROM:<>.
    return_path = raw_header(message, "return-path")
    return return_path is not None and return_path.replace(" ", "").strip() == "<>"


def _token(value: str | None) -> str:
    # Header values such as "auto-replied; owner-email=..." carry parameters after a semicolon.
    if value is None:
        return ""
    return value.split(";", 1)[0].strip().lower()


def _policy_name(policy: Policy) -> str:
    return "default" if policy is email.policy.default else "compat32"
