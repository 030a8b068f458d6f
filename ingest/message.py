"""Turn the raw bytes of one mail into the fields the pipeline needs, without I/O.

``parse_message`` degrades on malformed input instead of raising. A header that cannot be parsed
becomes ``None`` or ``""``. A MIME tree that the modern policy cannot walk is walked again with the
legacy one, and fuzz tests in tests/test_message.py check that no exception escapes. Attachments are recognised by their bytes (``ingest.sniff``) because phone apps label
every file ``application/octet-stream``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.errors
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


@dataclass
class _Parts:
    attachments: list[Attachment] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)


def parse_message(raw: bytes) -> IncomingMail:
    """Parse raw RFC 5322 bytes into an :class:`IncomingMail`, degrading on malformed parts."""
    for policy in (email.policy.default, email.policy.compat32):
        try:
            return _parse(raw, policy)
        except _PARSE_ERRORS as err:
            logger.warning("message: parsing with %s policy failed: %r", _policy_name(policy), err)

    logger.warning("message: unparseable, %d bytes kept without fields", len(raw))
    return IncomingMail(None, None, "", "", None, ())


def _parse(raw: bytes, policy: Policy) -> IncomingMail:
    message = email.message_from_bytes(raw, policy=policy)
    sender_name, sender = _sender(message)

    parts = _Parts()
    _collect(message, parts, nested=False, related=False)

    return IncomingMail(
        message_id=_first_message_id(raw_header(message, "message-id")),
        sender=sender,
        sender_name=sender_name,
        subject=header_text(raw_header(message, "subject") or ""),
        date=_date(raw_header(message, "date")),
        references=_references(message),
        attachments=parts.attachments,
        body_text=_body_text(parts),
        automatic=_is_automatic(message),
        bounce=_is_bounce(message, sender),
    )


def _collect(part: Message, parts: _Parts, *, nested: bool, related: bool) -> None:
    """Walk the MIME tree depth-first, sorting leaves into attachments and body text.

    ``nested`` is True inside an attached mail (message/rfc822), whose text is not this mail's
    body but whose files are still attachments: clerks forward the mail that carried the table.
    """
    content_type = part.get_content_type()

    if part.is_multipart() and content_type == "multipart/report":
        # A delivery report returns our own mail inside it; its files are not a submission.
        _collect_text_only(part, parts, nested=nested)
        return

    if part.is_multipart():
        children = part.get_payload()
        if content_type.startswith("message/"):
            if content_type in ("message/rfc822", "message/global"):
                for child in children:
                    _collect(child, parts, nested=True, related=False)
            return

        for child in children:
            _collect(child, parts, nested=nested, related=content_type == "multipart/related")
        return

    # TODO: Outlook's TNEF wrapper (winmail.dat, application/ms-tnef) is kept as one attachment;
    # the files inside it are not extracted.
    if _is_attachment(part, related):
        parts.attachments.append(_attachment(part, len(parts.attachments) + 1))
    elif not nested:
        _add_body_text(part, parts)


def _collect_text_only(report: Message, parts: _Parts, *, nested: bool) -> None:
    children = report.get_payload()
    if children and not nested:
        first = children[0]
        if not first.is_multipart():
            _add_body_text(first, parts)


def _is_attachment(part: Message, related: bool) -> bool:
    if attachment_filename(part) is not None:
        return True

    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True

    if part.get_content_maintype() == "text":
        return False

    # An image referenced from the HTML body (cid:) is part of the body, not a file sent to us.
    return not (related and part.get("content-id") is not None)


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


def _add_body_text(part: Message, parts: _Parts) -> None:
    subtype = part.get_content_type()
    if subtype not in ("text/plain", "text/html"):
        return

    data = part.get_payload(decode=True) or b""
    text = decode_text(data, part.get_content_charset()).replace("\r\n", "\n")
    if subtype == "text/plain":
        parts.plain.append(text)
    else:
        parts.html.append(text)


def _body_text(parts: _Parts) -> str:
    if parts.plain:
        return "\n".join(text.strip() for text in parts.plain).strip()
    return "\n".join(_html_to_text(html) for html in parts.html).strip()


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
