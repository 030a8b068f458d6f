"""Send composed mails over SMTP: the only module of zhoubao that talks SMTP.

Every smtplib or socket error is wrapped once here into :class:`ingest.errors.DeliveryError`.
Its ``permanent`` flag is set for a 5xx reply (RFC 5321 section 4.2.1) because retrying will not
fix it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from types import TracebackType

from ingest.errors import DeliveryError
from ingest.transport import Security, parse_security

logger = logging.getLogger(__name__)


# RFC 5321 section 3.8: 421 means the server is closing the connection.
SERVICE_CLOSING = 421


class SmtpSender:
    """An SMTP client that logs in once and sends several mails over the same connection.

    Use it as a context manager; :meth:`send` also connects on first use and reconnects after the
    server dropped the connection. ``ssl_context`` defaults to the system's verifying context.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str | None,
        password: str | None,
        timeout: float = 60,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.host = host
        self.port = port
        self.security = parse_security(security, host, "smtp", "ssl（端口 465）或 starttls（端口 587）")
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def __repr__(self) -> str:
        return f"SmtpSender({self.host}:{self.port}, {self.security}, user={self.username!r})"

    def __enter__(self) -> SmtpSender:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._smtp is not None

    def connect(self) -> None:
        """Open the connection, protect it as configured and log in when a username is set."""
        if self._smtp is not None:
            return

        try:
            self._smtp = self._open()
            if self.username:
                self._login()
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            raise _delivery_error(f"smtp {self.host}:{self.port}: connect or login failed", err) from err

        logger.info("smtp %s:%d: connected (%s)", self.host, self.port, self.security)

    def _login(self) -> None:
        """Authenticate once, with PLAIN or else LOGIN when the server offers one of them.

        smtplib's login() tries each offered mechanism after a refusal, so a wrong or expired
        authorization code would count as two failed logins, and a mail provider may lock an
        account after repeated failures.
        """
        smtp = self._smtp
        smtp.ehlo_or_helo_if_needed()
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        mechanism = next((name for name in ("PLAIN", "LOGIN") if name in offered), None)
        if mechanism is None:
            smtp.login(self.username, self._password or "")
            return
        smtp.user, smtp.password = self.username, self._password or ""
        smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))

    def ehlo(self) -> None:
        """Connect, then send EHLO (HELO when refused) unless the session already has; sends no mail."""
        self.connect()
        try:
            self._smtp.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            raise _delivery_error(f"smtp {self.host}:{self.port}: EHLO failed", err) from err

    def send(self, raw: bytes, from_addr: str, to_addrs: Sequence[str]) -> None:
        """Send one composed mail as it is, with ``from_addr`` as the envelope sender.

        Raises DeliveryError when the server refuses the mail or the connection fails.
        """
        self.connect()
        try:
            rejected = self._smtp.sendmail(from_addr, list(to_addrs), raw)
        except (smtplib.SMTPException, OSError) as err:
            if _connection_lost(err):
                self._drop()
            raise _delivery_error(f"smtp {self.host}:{self.port}: sending to {', '.join(to_addrs)} failed", err) from err

        for address, (code, reply) in rejected.items():
            logger.warning("smtp %s:%d: recipient %s rejected: %d %r", self.host, self.port, address, code, reply)

    def close(self) -> None:
        """Say QUIT and close the connection; a connection already gone is not an error."""
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError) as err:
            logger.debug("smtp %s:%d: QUIT failed: %s", self.host, self.port, err)
        finally:
            self._drop()

    def _open(self) -> smtplib.SMTP:
        if self.security is Security.SSL:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())

        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security is Security.STARTTLS:
            # smtplib sends EHLO again after STARTTLS only when needed, before AUTH.
            smtp.starttls(context=self._context())
        return smtp

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None


def _delivery_error(context: str, err: Exception) -> DeliveryError:
    return DeliveryError(f"{context}: {_describe(err)}", permanent=_is_permanent(err))


def _describe(err: Exception) -> str:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in err.recipients.items())
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{err.smtp_code} {_text(err.smtp_error)}"
    return f"{type(err).__name__}: {err}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _is_permanent(err: Exception) -> bool:
    """Return True for a 5xx reply; for several refused recipients, only when all got a 5xx."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in err.recipients.values())
    if isinstance(err, smtplib.SMTPAuthenticationError):
        # A wrong authorization code is fixed in the configuration, after which the same mail
        # must still go out, so it is not a property of the mail.
        return False
    if isinstance(err, smtplib.SMTPResponseException):
        return 500 <= err.smtp_code < 600
    return False


def _connection_lost(err: Exception) -> bool:
    # smtplib.SMTPException derives from OSError, so the SMTP replies are sorted out first.
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code == SERVICE_CLOSING
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return any(code == SERVICE_CLOSING for code, _ in err.recipients.values())
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return True
    return not isinstance(err, smtplib.SMTPException)
