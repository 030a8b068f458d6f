"""Build a reply mail: headers for threading and loop prevention, a text and an HTML alternative.

A mail with attachments is multipart/mixed: the multipart/alternative body first, then one part
per file.
"""

from __future__ import annotations

import base64
import datetime as dt
import urllib.parse
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

NOTICE_HEADER = "X-Zhoubao-Notice"

# The attachment headers are stored as written (Message.set_raw). The SMTP policy would refold
# such a value whenever a line passes 78 characters, and a long MIME type such as xlsx's takes 80
# on its own, so refolding is off for them. Every header set as a header object folds as usual.
_POLICY = policy.SMTP.clone(refold_source="none")


def compose_mail(
    *,
    from_address: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    kind: str,
    now: dt.datetime,
    in_reply_to: str | None,
    references: Sequence[str],
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> EmailMessage:
    """Compose a multipart/alternative reply dated ``now`` (an aware datetime from the service clock).

    ``references`` is the References list of the mail answered; its Message-ID ``in_reply_to`` is
    appended, as RFC 5322 section 3.6.4 describes, so clients thread the reply under it.
    ``attachments`` are (file name, data, MIME type such as "application/pdf") tuples; with any,
    the mail becomes multipart/mixed with the body first.
    """
    if now.tzinfo is None:
        raise ValueError("compose_mail: now must be timezone-aware")

    mail = EmailMessage(policy=_POLICY)

    # headerregistry.Address encodes only the display name as RFC 2047 words and keeps
    # <addr-spec> outside them; 163.com refuses a From whose address sits inside an encoded word
    # (554 DT:SPM), and RFC 2047 section 5 forbids it.
    mail["From"] = Address(display_name=from_name, addr_spec=from_address)
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid(domain=_domain(from_address))

    thread = _thread(in_reply_to, references)
    if in_reply_to:
        mail["In-Reply-To"] = _angle(in_reply_to)
    if thread:
        mail["References"] = " ".join(thread)

    # RFC 3834 section 5: marks the mail as automatic so that well-behaved auto-responders do
    # not answer it: auto-replied for a reply, auto-generated for a notice that answers nothing.
    # Outlook and Exchange ignore it but honour X-Auto-Response-Suppress.
    mail["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail[NOTICE_HEADER] = kind

    # base64 rather than 8bit: smtplib does not ask for 8BITMIME (RFC 6152) when sending bytes.
    mail.set_content(text, charset="utf-8", cte="base64")
    mail.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for name, data, mime_type in attachments:
        _attach(mail, name, data, mime_type)

    for part in mail.walk():
        if part is not mail:
            # add_alternative and add_attachment copy MIME-Version into the parts; RFC 2045
            # needs it only at the top.
            del part["MIME-Version"]
    return mail


# RFC 5322 section 2.1.1: lines should stay within 78 characters, so a long value is folded
# over several lines. An RFC 2231 value is split into numbered sections (RFC 2231 section 3).
_LINE_LENGTH = 78
# The first line of the name, ' name="=?UTF-8?B?' + base64 + '?=', must fit in 78 characters:
# 42 bytes make 56 base64 characters, which also keeps each encoded word within the 75
# characters RFC 2047 section 2 allows.
_WORD_BYTES = 42
_SECTION_LENGTH = 60


def _attach(mail: EmailMessage, name: str, data: bytes, mime_type: str) -> None:
    """Add ``data`` as an attachment whose file name every common client shows.

    A non-ASCII name is written twice, as Thunderbird does: RFC 2231 ``filename*`` in
    Content-Disposition, read by 163 webmail, QQ Mail and RFC-aware clients, and RFC 2047 words
    inside the quoted Content-Type ``name``, the only form Outlook and older webmail decode
    (RFC 2047 section 5 forbids words in quotes, but those clients expect them).
    """
    maintype, _, subtype = mime_type.partition("/")
    name = _clean_name(name)
    mail.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream")
    part = mail.get_payload()[-1]

    del part["Content-Type"]
    del part["Content-Disposition"]
    part.set_raw("Content-Type", f"{maintype}/{subtype or 'octet-stream'};\n name={_quoted_name(name)}")
    part.set_raw("Content-Disposition", "attachment;\n " + _filename_params(name))


def _clean_name(name: str) -> str:
    # A line break or control character would end the header early.
    cleaned = "".join(char for char in name if char.isprintable())
    return cleaned.strip() or "attachment"


def _quoted_name(name: str) -> str:
    if name.isascii():
        return _quote(name)
    words = [f"=?UTF-8?B?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in _utf8_chunks(name)]
    # Folding white space between the words inside the quotes, as 163 webmail writes it.
    return '"' + "\n ".join(words) + '"'


def _utf8_chunks(text: str) -> list[bytes]:
    """Split ``text`` into UTF-8 chunks of at most 45 bytes, never inside a character.

    RFC 2047 section 5 requires each encoded word to hold whole characters.
    """
    chunks: list[bytes] = []
    current = b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > _WORD_BYTES:
            chunks.append(current)
            current = b""
        current += encoded
    chunks.append(current)
    return chunks


def _filename_params(name: str) -> str:
    if name.isascii() and len(name) + 12 < _LINE_LENGTH:
        return f"filename={_quote(name)}"

    value = "UTF-8''" + urllib.parse.quote(name, safe="")
    if len(value) + len(" filename*=;") <= _LINE_LENGTH:
        return f"filename*={value}"

    sections = _rfc2231_sections(name)
    return ";\n ".join(f"filename*{index}*={section}" for index, section in enumerate(sections))


def _rfc2231_sections(name: str) -> list[str]:
    """Percent-encode ``name`` in sections of at most 60 characters, each ending on a whole character.

    The first section starts with the charset (RFC 2231 section 4). Some clients decode each
    section on its own, so a character split over two would break.
    """
    sections = ["UTF-8''"]
    for char in name:
        encoded = urllib.parse.quote(char, safe="")
        if len(sections[-1]) + len(encoded) > _SECTION_LENGTH:
            sections.append("")
        sections[-1] += encoded
    return sections


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def _angle(message_id: str) -> str:
    message_id = message_id.strip()
    if message_id.startswith("<"):
        return message_id
    return f"<{message_id}>"


def _thread(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    thread = [_angle(item) for item in references if item.strip()]
    if in_reply_to and _angle(in_reply_to) not in thread:
        thread.append(_angle(in_reply_to))
    return thread
