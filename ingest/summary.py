"""Recognise 总结材料: a unit's written summary with photos, videos and media material.

Near the end of the campaign each unit mails its summary. Nothing in it is read as a table:
the files are kept as received, in the archived mail, and listed. A file too large for a mail
arrives as a download link instead (163 and QQ Mail offer 超大附件), and such a link expires
after some days, so the links are recorded for the admin to fetch in time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlsplit

from ingest.message import Attachment, IncomingMail

# A subject or file name with one of these words marks the mail as summary material.
SUMMARY_WORDS = ("总结",)

# Hosts that serve the large attachments of Chinese webmail, matched on the host's end. Their
# download addresses have "download" or QQ's "ftn" (file transfer station) in the path, which
# distinguishes them from the advertising links in webmail footers.
LARGE_ATTACHMENT_HOSTS = (
    "mail.163.com", "mail.126.com", "mail.yeah.net", "fs.163.com", "fs.126.com",
    "mail.qq.com", "ftn.qq.com", "exmail.qq.com", "mail.sina.com.cn", "mail.aliyun.com",
)

_URL = re.compile(r"https?://[^\s<>\"'（）()，。；]+", re.IGNORECASE)


@dataclass(frozen=True)
class SummaryFile:
    """One attached file of a summary, as kept in the archived mail."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SummaryPlan:
    """The summary material of one mail, ready to be recorded for ``unit``."""

    unit: str
    files: list[SummaryFile] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def is_summary_mail(mail: IncomingMail) -> bool:
    """Tell whether the subject or a file name says the mail carries summary material."""
    texts = [mail.subject, *(attachment.filename for attachment in mail.attachments)]
    return any(word in (text or "") for text in texts for word in SUMMARY_WORDS)


def plan_summary(mail: IncomingMail, unit: str) -> SummaryPlan | None:
    """Return the summary files and download links of ``mail``, or None when it has neither."""
    files = [_summary_file(attachment) for attachment in mail.attachments]
    links = download_links(mail.body_text, mail.body_html)
    if not files and not links:
        return None
    return SummaryPlan(unit, files, links)


def download_links(text: str, html: str) -> list[str]:
    """Return the large-attachment download addresses in a mail body, each once, in order."""
    found = _URL.findall(text) + _URL.findall(unescape(html))
    links = [url.rstrip(".,;") for url in found if _is_large_attachment(url)]
    return list(dict.fromkeys(links))


def _is_large_attachment(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    known = any(host == name or host.endswith("." + name) for name in LARGE_ATTACHMENT_HOSTS)
    return known and ("download" in path or "ftn" in path)


def _summary_file(attachment: Attachment) -> SummaryFile:
    return SummaryFile(attachment.filename, len(attachment.data),
                       hashlib.sha256(attachment.data).hexdigest())
