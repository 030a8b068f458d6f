"""The county mailbox over IMAP: list, fetch and file away the messages in one folder.

This is the only module that talks IMAP. It is written for Dovecot and for Coremail (163.com,
126.com), whose quirks are noted where they matter.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from ingest.errors import AuthenticationFailed, ConfigError, MailboxError
from ingest.transport import Security, parse_security

logger = logging.getLogger(__name__)

# UIDs per FETCH command when only sizes are wanted, to keep command lines short.
SIZE_BATCH = 500


class _HideUntaggedData(logging.Filter):
    """Drop imaplib's debug copies of untagged responses, which contain whole fetched messages.

    imapclient logs the IMAP protocol to ``imapclient.imaplib`` at DEBUG. Its command and
    response lines stay, because they show the literals by size only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("untagged_responses", "untagged responses"))


logging.getLogger("imapclient.imaplib").addFilter(_HideUntaggedData())


class MessageNotFound(MailboxError):
    """The UID is not in the folder, for example because another client moved it meanwhile."""


@dataclass(frozen=True)
class FetchedMessage:
    """One message as stored on the server."""

    uid: int
    raw: bytes
    internal_date: dt.datetime  # when the server received it, in UTC
    size: int  # RFC822.SIZE in bytes, as the server counts it


class Mailbox:
    """A logged-in IMAP session with one folder selected, used as a context manager.

    ``use_move`` chooses how ``move_to_processed`` works: None uses MOVE (RFC 6851) when the
    server offers it, False always uses COPY + STORE \\Deleted + EXPUNGE as on Coremail, and
    True requires MOVE. ``ssl_context`` replaces the default verifying context, for example to
    trust a private CA. A ``readonly`` mailbox selects the folder with EXAMINE and leaves the
    processed folder alone, for a session that only waits for new mail.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        folder: str = "INBOX",
        processed_folder: str = "已处理",
        timeout: float = 60,
        *,
        ssl_context: ssl.SSLContext | None = None,
        use_move: bool | None = None,
        readonly: bool = False,
    ):
        self.host = host
        self.port = port
        self.security = parse_security(security, host, "mailbox", "ssl（端口 993）或 starttls（端口 143）")
        self.username = username
        self._password = password
        self.folder = folder
        self.processed_folder = processed_folder
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._use_move = use_move
        self._readonly = readonly
        self._client: IMAPClient | None = None
        self.uid_validity = 0

        if folder == processed_folder:
            raise ConfigError(
                f"[mailbox] processed_folder 与 folder 相同（“{folder}”）：已处理的邮件无处存放。"
                "请把 processed_folder 改为另一个文件夹，例如“已处理”。"
            )

    def __repr__(self) -> str:
        # Log lines and errors start with this, e.g. "mailbox county@imap.163.com:993/INBOX".
        return f"mailbox {self.username}@{self.host}:{self.port}/{self.folder}"

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Connect, log in, send ID, select the folder and create the processed folder."""
        try:
            self._client = self._connect()
            self._login()
            self._identify()
            self._select()
            if not self._readonly:
                self._ensure_processed_folder()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Log out, or drop the connection when logging out fails."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError) as err:
            logger.debug("%r: logout failed, closing the socket: %s", self, err)
            self._drop(client)

    def _drop(self, client: IMAPClient) -> None:
        """Close the socket without LOGOUT, for a session that is already broken."""
        try:
            client.shutdown()
        except OSError as err:
            logger.debug("%r: socket shutdown failed: %s", self, err)

    def list_uids(self) -> list[int]:
        """Return the UIDs in the folder, ascending, leaving out messages flagged \\Deleted.

        Such a message was either deleted by a mail client or already copied to the
        processed folder by a COPY + EXPUNGE move that stopped before its EXPUNGE.
        """
        client = self._require_client()
        # ASCII-only criteria need no CHARSET argument (RFC 3501 section 6.4.4).
        with self._errors("SEARCH UNDELETED"):
            return sorted(client.search(["UNDELETED"]))

    def fetch(self, uid: int) -> FetchedMessage:
        """Download one whole message without setting \\Seen (BODY.PEEK[])."""
        return self._fetch_one(uid, b"BODY.PEEK[]", b"BODY[]")

    def fetch_headers(self, uid: int) -> FetchedMessage:
        """Download only the header of one message (BODY.PEEK[HEADER]), without setting \\Seen.

        For a message too large to fetch whole: its header still names the sender to reply
        to. ``raw`` ends with the blank line that closes the header (RFC 3501 section 6.4.5).
        """
        return self._fetch_one(uid, b"BODY.PEEK[HEADER]", b"BODY[HEADER]")

    def fetch_sizes(self, uids: Iterable[int]) -> dict[int, int]:
        """Return RFC822.SIZE for each UID still in the folder."""
        client = self._require_client()
        requested = sorted(set(uids))
        sizes: dict[int, int] = {}
        for start in range(0, len(requested), SIZE_BATCH):
            batch = requested[start:start + SIZE_BATCH]
            with self._errors(f"FETCH RFC822.SIZE of {len(batch)} UIDs"):
                response = client.fetch(batch, ["RFC822.SIZE"])
            for uid, data in response.items():
                sizes[uid] = data[b"RFC822.SIZE"]
        return sizes

    def move_to_processed(self, uid: int) -> None:
        """Move one message from the folder to the processed folder."""
        client = self._require_client()
        if self._should_move(client):
            with self._errors(f"MOVE UID {uid}"):
                client.move([uid], self.processed_folder)
            logger.debug("%r: moved UID %d to %s", self, uid, self.processed_folder)
            return

        # Coremail (163.com) offers UIDPLUS but not MOVE, so copy, flag and expunge.
        with self._errors(f"COPY UID {uid}"):
            client.copy([uid], self.processed_folder)
        with self._errors(f"STORE UID {uid} +FLAGS \\Deleted"):
            client.delete_messages([uid], silent=True)
        with self._errors(f"EXPUNGE UID {uid}"):
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])
            else:
                # NOTE: without UIDPLUS (RFC 4315) EXPUNGE also removes every other message
                # in the folder that a mail client has flagged \Deleted.
                client.expunge()
        logger.debug("%r: copied UID %d to %s and expunged it", self, uid, self.processed_folder)

    def supports_idle(self) -> bool:
        """Tell whether the server offers IDLE (RFC 2177). Dovecot does and 163.com does not."""
        client = self._require_client()
        with self._errors("CAPABILITY"):
            return client.has_capability("IDLE")

    def idle_start(self) -> None:
        """Send IDLE. Until :meth:`idle_end` the session accepts no other command."""
        client = self._require_client()
        with self._errors("IDLE"):
            client.idle()

    def idle_wait(self, timeout: float) -> bool:
        """Wait in IDLE up to ``timeout`` seconds and return whether the server reported new mail.

        imapclient's idle_check returns no responses, instead of raising, when the server has
        closed the connection. So a wake-up before the timeout that brings no response is checked
        by ending IDLE and starting it again, which raises MailboxError on a closed connection.
        """
        client = self._require_client()
        with self._errors("IDLE"):
            started = time.monotonic()
            responses = client.idle_check(timeout)
            if not responses and time.monotonic() - started < timeout:
                _text, responses = client.idle_done()
                client.idle()
        return self._new_mail(responses)

    def idle_end(self) -> bool:
        """Send DONE to end IDLE and return whether the last responses reported new mail."""
        client = self._require_client()
        with self._errors("DONE"):
            _text, responses = client.idle_done()
        return self._new_mail(responses)

    def _new_mail(self, responses: list[tuple]) -> bool:
        """Return whether untagged ``* n EXISTS`` is among the responses. ``* BYE`` raises MailboxError."""
        if any(response[0] == b"BYE" for response in responses):
            raise MailboxError(f"{self!r}: the server closed the connection (BYE)")
        return any(len(response) > 1 and response[1] == b"EXISTS" for response in responses)

    def _fetch_one(self, uid: int, section: bytes, response_key: bytes) -> FetchedMessage:
        client = self._require_client()
        name = section.decode("ascii")
        with self._errors(f"FETCH UID {uid} {name}"):
            response = client.fetch([uid], [section, b"INTERNALDATE", b"RFC822.SIZE"])

        data = response.get(uid)
        if data is None:
            raise MessageNotFound(f"{self!r}: UID {uid} not found")
        try:
            raw = data[response_key]
            internal_date = data[b"INTERNALDATE"]
            size = data[b"RFC822.SIZE"]
        except KeyError as err:
            raise MailboxError(f"{self!r}: FETCH UID {uid} response lacks {err}") from err
        return FetchedMessage(uid, raw, internal_date.astimezone(dt.timezone.utc), size)

    def _should_move(self, client: IMAPClient) -> bool:
        offered = client.has_capability("MOVE")
        if self._use_move is None:
            return offered
        if self._use_move and not offered:
            raise MailboxError(f"{self!r}: use_move=True but the server does not offer MOVE")
        return self._use_move

    def _connect(self) -> IMAPClient:
        implicit_tls = self.security is Security.SSL
        with self._errors("connect"):
            client = IMAPClient(
                self.host,
                port=self.port,
                ssl=implicit_tls,
                ssl_context=self._ssl_context,
                timeout=self.timeout,
            )
        # Keep INTERNALDATE as an aware datetime instead of naive local time.
        client.normalise_times = False

        if self.security is Security.STARTTLS:
            # imapclient raises CapabilityError when STARTTLS is not offered, so a
            # stripped capability never downgrades the session to plaintext.
            try:
                with self._errors("STARTTLS"):
                    client.starttls(self._ssl_context)
            except MailboxError:
                self._drop(client)
                raise
        logger.debug("%r: connected (%s)", self, self.security)
        return client

    def _login(self) -> None:
        client = self._require_client()
        try:
            client.login(self.username, self._password)
        except LoginError as err:
            reply = _server_text(err)
            raise AuthenticationFailed(f"{self!r}: login rejected: {reply}", reply) from err
        except (IMAPClientError, OSError) as err:
            raise MailboxError(f"{self!r}: login failed: {err}") from err

    def _identify(self) -> None:
        """Send the ID command (RFC 2971) when the server advertises it.

        163.com and 126.com (Coremail) reject SELECT with "NO SELECT Unsafe Login" until the
        client has identified itself with ID.
        """
        client = self._require_client()
        with self._errors("CAPABILITY"):
            offered = client.has_capability("ID")
        if not offered:
            return
        try:
            client.id_({"name": "zhoubao", "version": _version()})
        except IMAPClientError as err:
            # The SELECT that follows reports the real problem if the server needed ID.
            logger.warning("%r: ID command rejected: %s", self, err)

    def _select(self) -> None:
        client = self._require_client()
        with self._errors(f"SELECT {self.folder}"):
            response = client.select_folder(self.folder, readonly=self._readonly)
        uid_validity = response.get(b"UIDVALIDITY")
        if uid_validity is None:
            raise MailboxError(f"{self!r}: SELECT response lacks UIDVALIDITY")
        self.uid_validity = int(uid_validity)
        logger.info("%r: selected, UIDVALIDITY %d, %d message(s)",
                    self, self.uid_validity, response.get(b"EXISTS", 0))

    def _ensure_processed_folder(self) -> None:
        client = self._require_client()
        name = self.processed_folder
        with self._errors(f"LIST {name}"):
            if client.folder_exists(name):
                return
        try:
            client.create_folder(name)
        except IMAPClientError as err:
            # Another client may have created it between our LIST and CREATE.
            with self._errors(f"LIST {name}"):
                if client.folder_exists(name):
                    return
            raise MailboxError(f"{self!r}: CREATE {name} failed: {err}") from err
        logger.info("%r: created folder %s", self, name)

        # Mail clients such as Thunderbird show only subscribed folders by default.
        try:
            client.subscribe_folder(name)
        except IMAPClientError as err:
            logger.warning("%r: SUBSCRIBE %s failed: %s", self, name, err)

    def _require_client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"{self!r}: not connected; use the mailbox as a context manager")
        return self._client

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Wrap imapclient and socket errors of one IMAP step in MailboxError."""
        try:
            yield
        except (IMAPClientError, OSError) as err:
            raise MailboxError(f"{self!r}: {action} failed: {err}") from err


def _server_text(err: LoginError) -> str:
    """Return the text of the server's NO or BAD reply to LOGIN.

    imapclient raises LoginError(str(original)) inside its handler of the imaplib error, so the
    original, whose argument is the reply as bytes, is the LoginError's ``__context__``.
    """
    original = err.__context__ if err.__context__ is not None else err
    value = original.args[0] if original.args else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _version() -> str:
    try:
        return metadata.version("zhoubao")
    except metadata.PackageNotFoundError:
        return "0"


class MailboxProbe:
    """Opens a :class:`Mailbox` one step at a time and only reads, for ``zhoubao doctor``.

    Unlike :meth:`Mailbox.open` it creates no folder, and it selects folders read-only
    (EXAMINE), so a check changes nothing on the server. Use it as a context manager.
    """

    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox

    def __enter__(self) -> MailboxProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.mailbox.close()

    def login(self) -> None:
        """Connect with the configured security and log in; raises AuthenticationFailed or MailboxError."""
        mailbox = self.mailbox
        mailbox._client = mailbox._connect()
        mailbox._login()

    def identify(self) -> bool:
        """Send ID (RFC 2971) when the server advertises it and return whether it was sent.

        Raises MailboxError when the server rejects it.
        """
        mailbox = self.mailbox
        client = mailbox._require_client()
        with mailbox._errors("CAPABILITY"):
            if not client.has_capability("ID"):
                return False
        with mailbox._errors("ID"):
            client.id_({"name": "zhoubao", "version": _version()})
        return True

    def folder_exists(self, folder: str) -> bool:
        mailbox = self.mailbox
        with mailbox._errors(f"LIST {folder}"):
            return mailbox._require_client().folder_exists(folder)

    def examine(self, folder: str) -> int:
        """Select ``folder`` read-only and return the number of messages in it."""
        mailbox = self.mailbox
        with mailbox._errors(f"EXAMINE {folder}"):
            response = mailbox._require_client().select_folder(folder, readonly=True)
        return int(response.get(b"EXISTS", 0))
