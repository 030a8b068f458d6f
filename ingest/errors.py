"""Exceptions raised by zhoubao, all under one root.

User-facing reasons are Chinese (they end up in replies to township clerks);
the exception message itself stays English for logs.
"""


class ZhoubaoError(Exception):
    """Root of every error zhoubao raises on purpose."""


class ConfigError(ZhoubaoError):
    """The configuration file is missing, malformed or inconsistent.

    ``str(err)`` is the Chinese message for the admin: the key, the value and the fix.
    """


class UnreadableFile(ZhoubaoError):
    """An attachment could not be read as a table.

    ``reason`` is a Chinese sentence for the sender saying what was wrong and what to send instead.
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class TableNotFound(UnreadableFile):
    """A file was readable but holds no 附件二 weekly table."""


class MailboxError(ZhoubaoError):
    """The IMAP server refused a login, a folder or a command, or the connection failed."""


class AuthenticationFailed(MailboxError):
    """The IMAP or SMTP server rejected the username or authorization code.

    ``reply`` is the server's text, such as ``[AUTHENTICATIONFAILED] Authentication failed.``
    """

    def __init__(self, message: str, reply: str = ""):
        super().__init__(message)
        self.reply = reply


class DeliveryError(ZhoubaoError):
    """Sending a mail over SMTP failed.

    ``permanent`` is True for a 5xx answer, which retrying will not fix.
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class StoreError(ZhoubaoError):
    """The database could not be opened, migrated or written."""
