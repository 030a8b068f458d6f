"""Backfill: run mails saved as .eml files, in an mbox or in a Maildir through the intake's steps.

Each mail is archived and decided exactly as if it had arrived in the mailbox (see
service/intake.py), under the mailbox key ``import`` with UIDVALIDITY 0 and a UID derived from
its SHA-256. A mail already in the database, whether imported or fetched from IMAP, is left as
it is, so importing the same files again changes nothing. Replies are queued only on request,
because a backfilled season must not mail last season's clerks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.errors
import email.utils
import hashlib
import logging
import mailbox
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from sqlalchemy.orm import Session

from ingest.errors import ZhoubaoError
from ingest.mailbox import FetchedMessage
from service.clock import Clock
from service.config import Settings
from service.intake import archive, decide_and_record, read_headers
from service.listing import OUTCOME_LABELS
from store import repository
from store.models import Message, MessageOutcome
from store.session import Database

logger = logging.getLogger(__name__)

IMPORT_MAILBOX = "import"
IMPORT_UID_VALIDITY = 0

_HEADER_END = re.compile(rb"\n\r?\n")

# messages.uid is a 32-bit signed INTEGER on PostgreSQL, so derived UIDs stay in 1..2**31-1.
_UID_RANGE = 2**31 - 1

class ImportSourceError(ZhoubaoError):
    """A path given to ``import`` is missing, empty, unreadable or not a mail store.

    ``str(err)`` is the Chinese message for the admin, naming the path.
    """


@dataclass(frozen=True)
class SourceMail:
    """One mail found under an import path; its bytes are read only when it is imported.

    ``delivered_at`` returns the delivery time the store recorded (the mbox From_ line, the
    Maildir file time, the .eml file time), used when the mail has no valid Date header.
    """

    origin: str
    read: Callable[[], bytes]
    delivered_at: Callable[[], dt.datetime | None]


@dataclass
class ImportSummary:
    """Counts of one import: new mails per outcome, and mails already in the database."""

    outcomes: Counter[MessageOutcome] = field(default_factory=Counter)
    known: int = 0
    unreadable_files: int = 0
    replies: bool = False

    @property
    def total(self) -> int:
        return sum(self.outcomes.values()) + self.known + self.unreadable_files


ProgressFactory = Callable[[list[SourceMail]], AbstractContextManager[Iterable[SourceMail]]]


def import_paths(settings: Settings, database: Database, clock: Clock, paths: Sequence[Path],
                 reply: bool = False, progress: ProgressFactory | None = None) -> ImportSummary:
    """Import every mail under ``paths``, one at a time, and return the counts.

    ``progress`` wraps the list of mails found, for example in ``click.progressbar``. Raises
    ImportSourceError before anything is stored when a path is not a mail, mbox or Maildir.
    """
    summary = ImportSummary(replies=reply)
    with open_sources(paths) as sources:
        logger.info("import: %d mail(s) found in %d path(s)", len(sources), len(paths))
        wrap = progress or contextlib.nullcontext
        with wrap(sources) as items:
            for source in items:
                _import_counted(settings, database, clock, source, reply, summary)
    return summary


@contextlib.contextmanager
def open_sources(paths: Sequence[Path]) -> Iterator[list[SourceMail]]:
    """Yield the mails under ``paths`` in order, keeping mbox and Maildir stores open meanwhile."""
    with contextlib.ExitStack() as stack:
        sources: list[SourceMail] = []
        for path in paths:
            sources.extend(_sources_in(Path(path), stack))
        yield sources


def _sources_in(path: Path, stack: contextlib.ExitStack) -> list[SourceMail]:
    if not path.exists():
        raise ImportSourceError(f"找不到“{path}”，请检查路径是否正确。")
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return _maildir_sources(path, stack)
        return _eml_folder_sources(path)
    return _file_sources(path, stack)


def _file_sources(path: Path, stack: contextlib.ExitStack) -> list[SourceMail]:
    try:
        with path.open("rb") as file:
            start = file.read(5)
    except OSError as err:
        raise ImportSourceError(f"无法读取文件“{path}”：{err.strerror}。请检查文件权限。") from err
    if not start:
        raise ImportSourceError(f"文件“{path}”是空的，其中没有邮件。")
    # An mbox starts with a "From " postmark line (mbox(5)); a saved .eml starts with a header
    # field, and "From:" has no space before its colon.
    if start == b"From ":
        return _mbox_sources(path, stack)
    return [_eml_source(path)]


def _eml_folder_sources(folder: Path) -> list[SourceMail]:
    files = sorted(item for item in folder.rglob("*") if item.is_file() and item.suffix.lower() == ".eml")
    if not files:
        raise ImportSourceError(
            f"目录“{folder}”中没有 .eml 邮件文件，也不是 Maildir 邮箱目录（应含 cur 和 new 子目录）。"
        )
    return [_eml_source(item) for item in files]


def _eml_source(path: Path) -> SourceMail:
    return SourceMail(origin=str(path), read=path.read_bytes, delivered_at=lambda: _file_time(path))


def _mbox_sources(path: Path, stack: contextlib.ExitStack) -> list[SourceMail]:
    store = mailbox.mbox(path, create=False)
    stack.callback(store.close)
    sources = []
    for number, key in enumerate(store.keys(), start=1):
        sources.append(SourceMail(
            origin=f"{path}#{number}",
            read=lambda key=key: store.get_bytes(key),
            delivered_at=lambda key=key: _postmark_time(store, key) or _file_time(path),
        ))
    return sources


def _maildir_sources(path: Path, stack: contextlib.ExitStack) -> list[SourceMail]:
    store = mailbox.Maildir(path, factory=None, create=False)
    stack.callback(store.close)
    # Maildir keys start with the delivery time in seconds, so their order is roughly arrival order.
    return [
        SourceMail(
            origin=f"{path}/{key}",
            read=lambda key=key: store.get_bytes(key),
            delivered_at=lambda key=key: _timestamp(store.get_message(key).get_date()),
        )
        for key in sorted(store.keys())
    ]


def _postmark_time(store: mailbox.mbox, key: str) -> dt.datetime | None:
    """Return the time on the message's From_ line, or None when it cannot be parsed."""
    line = store.get_bytes(key, from_=True).split(b"\n", 1)[0].decode("ascii", "replace")
    parts = line.split(None, 2)
    if len(parts) < 3:
        return None
    # mbox(5) writes the time in asctime(3) form, usually without a zone. NOTE: it is read as
    # UTC, although some writers put local time there.
    return _parse_date(parts[2])


def _file_time(path: Path) -> dt.datetime | None:
    try:
        return _timestamp(path.stat().st_mtime)
    except OSError:
        return None


def _timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _parse_date(text: str) -> dt.datetime | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 5322 §3.3: the zone "-0000" means UTC with no local zone known; Python returns it naive.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


def date_header(raw: bytes) -> dt.datetime | None:
    """Return the mail's Date header as an aware datetime, or None when it is missing or invalid."""
    try:
        value = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Date")
    except (email.errors.MessageError, UnicodeError, ValueError):
        return None
    if value is None:
        return None
    return _parse_date(str(value))


def _import_counted(settings: Settings, database: Database, clock: Clock, source: SourceMail,
                    reply: bool, summary: ImportSummary) -> None:
    try:
        raw = source.read()
    except OSError as err:
        logger.warning("import %s: reading the file failed: %s", source.origin, err)
        summary.unreadable_files += 1
        return

    outcome = import_mail(settings, database, clock, source, raw, reply)
    if outcome is None:
        summary.known += 1
    else:
        summary.outcomes[outcome] += 1


def import_mail(settings: Settings, database: Database, clock: Clock, source: SourceMail,
                raw: bytes, reply: bool) -> MessageOutcome | None:
    """Archive and decide one mail; return its outcome, or None when it was already stored.

    A mail over the size limit keeps only its header, as the intake fetches it, and its sender
    is told the limit. An imported mail left pending by an interrupted import is decided now.
    """
    size = len(raw)
    if size > settings.limits.max_message_bytes:
        logger.warning("import %s: %d bytes, over the limit of %d: archiving the header only",
                       source.origin, size, settings.limits.max_message_bytes)
        raw = header_bytes(raw)

    sha256 = hashlib.sha256(raw).hexdigest()
    message_id = read_headers(raw)["message_id"]
    with database.session() as session:
        known = repository.find_message_by_content(session, message_id, sha256)
        if known is not None and not _resumable(known):
            logger.info("import %s: already stored as message #%d", source.origin, known.id)
            return None
        message_pk = known.id if known is not None else None
        uid = None if known is not None else _free_uid(session, sha256)

    if message_pk is None:
        internal_date = date_header(raw) or source.delivered_at() or clock.now()
        fetched = FetchedMessage(uid=uid, raw=raw, internal_date=internal_date, size=size)
        message_pk = archive(database, IMPORT_MAILBOX, IMPORT_UID_VALIDITY, fetched, clock.now)

    decide_and_record(settings, database, message_pk, clock.now, reply=reply)
    with database.session() as session:
        outcome = session.get_one(Message, message_pk).outcome
    logger.info("import %s: message #%d %s", source.origin, message_pk, outcome)
    return outcome


def header_bytes(raw: bytes) -> bytes:
    """Return the header of a raw mail up to and including the blank line that ends it."""
    # The first empty line ends the header (RFC 5322 section 2.1), with CRLF or bare LF ends.
    end = _HEADER_END.search(raw)
    return raw[: end.end()] if end else raw


def _resumable(message: Message) -> bool:
    # The intake finishes a pending mail that it fetched from IMAP, because it also replies to it.
    return message.outcome == MessageOutcome.PENDING and message.mailbox == IMPORT_MAILBOX


def _free_uid(session: Session, sha256: str) -> int:
    """Return the UID derived from the content hash, or the next free one after it."""
    uid = int(sha256[:8], 16) % _UID_RANGE + 1
    while repository.find_message_by_uid(session, IMPORT_MAILBOX, IMPORT_UID_VALIDITY, uid) is not None:
        uid = uid % _UID_RANGE + 1
    return uid


def format_summary(summary: ImportSummary) -> str:
    """Return the Chinese summary printed at the end of an import."""
    lines = [f"导入完成：共 {summary.total} 封邮件。"]
    new = sum(summary.outcomes.values())
    if new:
        counts = "，".join(
            f"{OUTCOME_LABELS[str(outcome)]} {summary.outcomes[outcome]} 封"
            for outcome in MessageOutcome if summary.outcomes[outcome]
        )
        lines.append(f"新处理 {new} 封：{counts}。")
    if summary.known:
        lines.append(f"已在数据库中、未作改动 {summary.known} 封。")
    if summary.unreadable_files:
        lines.append(f"无法读取的文件 {summary.unreadable_files} 个，详见日志。")
    if summary.replies:
        lines.append("回复已放入发送队列，由服务（zhoubao run）发出。")
    else:
        lines.append("未给发件人回复（导入时加 --reply 才会回复；已导入过的邮件再次导入也不会补发回复）。")
    return "\n".join(lines)
