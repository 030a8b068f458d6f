"""Build a reply mail: headers for threading and loop prevention, a text and an HTML alternative."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

NOTICE_HEADER = "X-Zhoubao-Notice"


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
) -> EmailMessage:
    """Compose a multipart/alternative reply dated ``now`` (an aware datetime from the service clock).

    ``references`` is the References list of the mail answered; its Message-ID ``in_reply_to`` is
    appended, as RFC 5322 section 3.6.4 describes, so clients thread the reply under it.
    """
    if now.tzinfo is None:
        raise ValueError("compose_mail: now must be timezone-aware")

    mail = EmailMessage(policy=policy.SMTP)

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

    # RFC 3834 section 5: marks the mail as an automatic reply so that well-behaved
    # auto-responders do not answer it. Outlook and Exchange ignore it but honour
    # X-Auto-Response-Suppress.
    mail["Auto-Submitted"] = "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail[NOTICE_HEADER] = kind

    # base64 rather than 8bit: smtplib does not ask for 8BITMIME (RFC 6152) when sending bytes.
    mail.set_content(text, charset="utf-8", cte="base64")
    mail.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for part in mail.iter_parts():
        # add_alternative copies MIME-Version into the part; RFC 2045 needs it only at the top.
        del part["MIME-Version"]
    return mail


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
