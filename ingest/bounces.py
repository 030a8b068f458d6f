"""Read delivery status notifications (bounces) to find the recipients that mail failed to reach.

A bounce is multipart/report; report-type=delivery-status (RFC 6522) with a
message/delivery-status part (RFC 3464): one block of per-message fields, then one block per
recipient with Final-Recipient, an optional Original-Recipient, Action and Status. Only
recipients whose Action is "failed" count: "delayed" reports a retry still in progress and
"delivered", "relayed" and "expanded" report success.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parseaddr

logger = logging.getLogger(__name__)

# RFC 6533 section 6.2: message/global-delivery-status is the same report for SMTPUTF8 mail.
_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a delivery status notification reports as failed.

    ``address`` is the lower-case addr-spec; ``status`` the RFC 3463 code such as "5.1.1" ("" if
    missing); ``diagnostic`` the remote server's reply ("" if missing).
    """

    address: str
    status: str
    diagnostic: str

    @property
    def reason(self) -> str:
        """The status and diagnostic as one line, for the bounce record."""
        return " ".join(part for part in (self.status, self.diagnostic) if part) or "failed"


def failed_recipients(raw: bytes) -> list[FailedRecipient]:
    """Return the failed recipients a raw bounce reports, in report order, each address once.

    Prefers Original-Recipient, the address as the sender gave it, over Final-Recipient, which a
    forwarding server may have rewritten (RFC 3464 section 2.3.1). Returns [] for a mail without
    a delivery-status part. The compat32 parser records defects instead of raising, so a
    malformed report yields fewer recipients, not an error.
    """
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    found: dict[str, FailedRecipient] = {}
    for part in message.walk():
        if part.get_content_type() not in _STATUS_TYPES:
            continue
        for fields in _recipient_blocks(part):
            recipient = _failed_recipient(fields)
            if recipient is not None:
                found.setdefault(recipient.address, recipient)
    return list(found.values())


def bounced_recipients(raw: bytes) -> list[str]:
    """Return the lower-case addresses a raw bounce reports as failed, each once."""
    return [recipient.address for recipient in failed_recipients(raw)]


def _recipient_blocks(part: Message) -> list[Message]:
    """Return the per-recipient field blocks of a delivery-status part.

    The email package parses message/delivery-status into one Message per block, the first
    holding the per-message fields. Any other status part, such as message/global-delivery-status
    which it parses as a single message, is serialized again and split into blocks here.
    """
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        # NOTE: a part sent in base64 (RFC 3464 defines 7-bit text) is parsed as blocks of
        # encoded text and yields no recipient.
        return payload[1:]

    text = part.as_bytes().replace(b"\r\n", b"\n")
    body = text.split(b"\n\n", 1)[1] if b"\n\n" in text else b""
    blocks = [block.strip(b"\n") for block in body.split(b"\n\n")]
    parser = BytesParser(policy=policy.compat32)
    return [parser.parsebytes(block + b"\n", headersonly=True) for block in blocks[1:] if block]


def _failed_recipient(fields: Message) -> FailedRecipient | None:
    status = _field(fields, "Status")
    action = _field(fields, "Action").lower()
    # Action is required (RFC 3464 section 2.3.3); without it a 5.x.x status still means failed.
    if action != "failed" and not (not action and status.startswith("5")):
        return None

    address = _address(_field(fields, "Original-Recipient")) or _address(_field(fields, "Final-Recipient"))
    if address is None:
        logger.warning("bounce: failed recipient without a readable address (status %s)", status or "missing")
        return None
    return FailedRecipient(address, status.split(" ", 1)[0], _field(fields, "Diagnostic-Code"))


def _field(fields: Message, name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    # Folded field values keep their line breaks in the compat32 policy.
    return " ".join(str(value).split())


def _address(value: str) -> str | None:
    """Return the addr-spec of an "address-type; address" field such as "rfc822; a@b.test".

    RFC 3464 section 2.3.2 types are "rfc822" and, from RFC 6533, "utf-8"; "unknown" and
    addresses without "@" are skipped.
    """
    address_type, separator, address = value.partition(";")
    if not separator or address_type.strip().lower() not in ("rfc822", "utf-8"):
        return None
    _, addr_spec = parseaddr(address.strip())
    if "@" not in addr_spec:
        return None
    return addr_spec.lower()
