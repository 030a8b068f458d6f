"""Load config.toml into frozen settings, checked once at start-up.

Every problem raises :class:`ingest.errors.ConfigError` with a Chinese message for the county
admin who edits the file: the key, the value found and how to fix it. Passwords are wrapped in
:class:`Secret` as soon as they are read, so they print as ``**********`` everywhere.

Each section has its own parser below, and :data:`_KNOWN_KEYS` names the sections a file may
contain and their keys. A new section, or an array of tables such as ``[[units]]``, adds a parser
and an entry there.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hmac
import json
import logging
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ingest.backoff import Backoff, RetryPolicy
from ingest.calendar import Campaign, NoticeSchedule, NoticeTime, ScheduledNotice
from ingest.errors import ConfigError
from ingest.transport import Security, is_loopback
from ingest.units import UnitDirectory, UnitSettings
from notify.render import check_templates

__all__ = [
    "CampaignSettings", "DatabaseSettings", "HealthSettings", "MailboxSettings", "Secret", "Security",
    "Settings", "SmtpSettings", "UnitSettings", "load_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DATABASE_FILE = "zhoubao.sqlite3"
PASSWORD_KEYS = ("password", "password_env", "password_file")
# [database] has no "password" key, because a password written in the file belongs in the url.
DATABASE_PASSWORD_KEYS = ("password_env", "password_file")
MAILBOX_SECRET = "邮箱的客户端授权码"


IMAP_PORTS = {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143}
SMTP_PORTS = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}


class Secret:
    """A password or authorization code that prints as ``**********``.

    ``repr``, ``str`` and ``format`` never show the value, so a settings object can be logged.
    Call :meth:`reveal` at the one place that hands the value to a server.
    """

    __slots__ = ("_value", "_error")

    def __init__(self, value: str, error: ConfigError | None = None):
        self._value = value
        self._error = error

    @classmethod
    def unavailable(cls, error: ConfigError) -> Secret:
        """Return a secret that could not be read; revealing it raises ``error``.

        Commands that never log in (listing submissions, migrating the database) can then run
        without the authorization code in their environment.
        """
        return cls("", error)

    def reveal(self) -> str:
        """Return the secret value, or raise the ConfigError that kept it from being read."""
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class MailboxSettings:
    """The county's IMAP mailbox that township clerks send their tables to."""

    host: str
    port: int
    security: Security
    username: str
    password: Secret
    folder: str = "INBOX"
    processed_folder: str = "已处理"
    poll_interval: int = 300  # seconds between two looks at the folder
    timeout: int = 60  # socket timeout in seconds
    # Seconds before the first retry after a failed cycle, doubling up to the maximum.
    reconnect_delay: int = 5
    reconnect_max_delay: int = 300
    login_retry_delay: int = 1800  # seconds between logins while the server rejects the code
    idle: bool = True  # wait for new mail with IDLE (RFC 2177) when the server offers it
    idle_renew: int = 1500  # seconds before an IDLE command is ended and sent again

    def retry_policy(self) -> RetryPolicy:
        """Return the waits between intake cycles that these settings configure."""
        return RetryPolicy(
            poll_interval=self.poll_interval,
            reconnect=Backoff(self.reconnect_delay, self.reconnect_max_delay),
            login_retry=self.login_retry_delay,
        )

    @property
    def key(self) -> str:
        """The folder's name in the database, so that several mailboxes can share it."""
        return f"{self.username}@{self.host}/{self.folder}"


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server that sends receipts and rejection notices."""

    host: str
    port: int
    security: Security
    username: str
    password: Secret
    from_address: str
    from_name: str = ""
    timeout: int = 60  # socket timeout in seconds
    # False for a relay that takes mail without AUTH, such as a local MTA on 127.0.0.1.
    login: bool = True
    # Sending limits, counted from the outbox's sent_at so they hold across runs and processes.
    rate_per_minute: int = 20
    daily_cap_per_recipient: int = 10


@dataclass(frozen=True)
class DatabaseSettings:
    """The database that stores submissions, as an SQLAlchemy URL (SQLite or PostgreSQL)."""

    # The URL may contain a database password, so it stays out of repr.
    url: str = field(repr=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***``, for logs."""
        return make_url(self.url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class CampaignSettings:
    """The campaign's name and deadlines; the deadlines are aware, in ``timezone``.

    ``one_off`` maps a one-off document (``demand-form``, ``summary``) to its deadline; a
    document without a deadline in config is not chased.
    """

    name: str
    first_deadline: dt.datetime
    last_deadline: dt.datetime
    timezone: ZoneInfo
    skipped_weeks: tuple[int, ...] = ()
    one_off: Mapping[str, dt.datetime] = field(default_factory=dict)

    def calendar(self) -> Campaign:
        """Return the weekly calendar these settings describe."""
        return Campaign(self.first_deadline, self.last_deadline, self.timezone,
                        frozenset(self.skipped_weeks))


@dataclass(frozen=True)
class LimitsSettings:
    """Bounds on what one mail may make the service read; anything over them gets a reply."""

    max_message_bytes: int = 25 * 1024 * 1024
    zip_max_members: int = 50
    zip_max_total_bytes: int = 100 * 1024 * 1024
    zip_max_ratio: int = 200
    mime_max_depth: int = 5


@dataclass(frozen=True)
class LibreOfficeSettings:
    """Location of soffice (None: looked up on PATH) and the time limit of one conversion."""

    path: str | None = None
    timeout: int = 60


@dataclass(frozen=True)
class AdminSettings:
    """The county admin: where the digest and alerts go, and the contact that notices sign with.

    Empty ``emails``: to the county mailbox itself. ``name``, ``phone`` and ``office`` (such as
    ``贾老师``, ``0999-3021234`` and ``霍城县科协办公室``) are printed in reminders and overdue
    notices; an empty one is left out.
    """

    emails: tuple[str, ...] = ()
    name: str = ""
    phone: str = ""
    office: str = ""


@dataclass(frozen=True)
class HealthSettings:
    """When the service counts itself unhealthy and mails the admin an alert.

    Unhealthy after ``alert_after_failures`` intake runs failed in a row, or after
    ``alert_after_intervals`` poll intervals without any run that finished.
    """

    alert_after_failures: int = 3
    alert_after_intervals: int = 3


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from config.toml, validated."""

    config_path: Path
    data_dir: Path
    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings
    campaign: CampaignSettings
    units: tuple[UnitSettings, ...]
    # The county's own addresses (IMAP login and SMTP sender), lower-case. The service sends no
    # reply to mail from them, so it cannot reply to its own receipts.
    county_addresses: frozenset[str]
    limits: LimitsSettings = LimitsSettings()
    libreoffice: LibreOfficeSettings = LibreOfficeSettings()
    admin: AdminSettings = AdminSettings()
    notices: NoticeSchedule = NoticeSchedule()
    # A folder of the admin's own notice templates, each overriding the packaged file of its name.
    template_dir: Path | None = None
    # The name of the [[mailbox]] entry these settings come from; None for a single [mailbox].
    name: str | None = None
    health: HealthSettings = HealthSettings()

    @property
    def admin_emails(self) -> tuple[str, ...]:
        return self.admin.emails

    def scoped(self, key: str) -> str:
        """Return an outbox notice key unique across mailboxes: prefixed with the [[mailbox]] name."""
        return f"{self.name}: {key}" if self.name else key

    @property
    def admin_recipients(self) -> tuple[str, ...]:
        """The addresses of the digest and alerts: [admin] emails, else the county mailbox."""
        return self.admin.emails or (self.smtp.from_address,)

    def unit_directory(self) -> UnitDirectory:
        """Return the look-ups over the configured units."""
        return UnitDirectory(self.units)


def load_settings(path: Path, environ: Mapping[str, str] | None = None,
                  require_secrets: bool = True, mailbox: str | None = None) -> Settings:
    """Read and validate the config file at ``path`` and return the settings of one mailbox.

    ``mailbox`` names a [[mailbox]] entry; None gives the only mailbox, or the first of several.
    See :func:`load_deployments` for the arguments and errors.
    """
    deployments = load_deployments(path, environ, require_secrets)
    if mailbox is None:
        return deployments[0]
    for settings in deployments:
        if settings.name == mailbox:
            return settings
    names = "、".join(settings.name or "" for settings in deployments)
    raise ConfigError(f"配置文件 {Path(path).name} 中没有名为“{mailbox}”的 [[mailbox]]。已配置的邮箱有：{names}。")


def load_deployments(path: Path, environ: Mapping[str, str] | None = None,
                     require_secrets: bool = True) -> tuple[Settings, ...]:
    """Read and validate the config file at ``path``: the settings of each mailbox it serves.

    A file has one [mailbox] section, or several [[mailbox]] entries (a prefecture serving its
    counties), each with its own units and campaign in one database. ``environ`` is where
    ``password_env`` names are looked up (``os.environ`` by default). With ``require_secrets``
    False, a password that cannot be read raises only when it is revealed. Relative paths in the
    file are resolved against the file's folder, not the working directory. Raises ConfigError
    with a Chinese message naming the key, the value and the fix.
    """
    path = Path(path)
    data = _read_toml(path)
    source = _Source(path, os.environ if environ is None else environ, require_secrets)
    if not isinstance(data.get("mailbox"), list):
        return (_settings_from(data, source),)

    deployments = tuple(_entry_settings(entry_data, name, position, source)
                        for position, name, entry_data in _mailbox_entries(data, source))
    _check_distinct_mailboxes(deployments, source)
    return deployments


def _settings_from(data: dict, source: _Source, name: str | None = None) -> Settings:
    """Parse one mailbox's document: a whole single-mailbox file, or one entry with the defaults."""
    _reject_unknown(data, tuple(_KNOWN_KEYS), source.name, "")
    sections = {section: _section(data, section, source)
                for section in ("service", "mailbox", "smtp", "database", "campaign", "limits",
                                "libreoffice", "admin", "notices")}

    data_dir = _parse_service(sections["service"])
    mailbox = _parse_mailbox(sections["mailbox"])
    smtp = _parse_smtp(sections["smtp"], mailbox)
    database = _parse_database(sections["database"], data_dir)
    campaign = _parse_campaign(sections["campaign"])
    county = _county_addresses(mailbox, smtp)
    units = _parse_units(data.get("units"), source, county, campaign.calendar().last_week)

    settings = Settings(source.path, data_dir, mailbox, smtp, database, campaign, units, county,
                        _parse_limits(sections["limits"]),
                        _parse_libreoffice(sections["libreoffice"]),
                        _parse_admin(sections["admin"]),
                        _parse_notices(sections["notices"], campaign.first_deadline.time()),
                        _parse_template_dir(sections["notices"]),
                        name,
                        _parse_health(sections["service"]))
    logger.info("config %s: mailbox %s, %d units, campaign %s, database %s", source.path,
                name or mailbox.username, len(units), campaign.name, database.safe_url)
    return settings


# --- several mailboxes --------------------------------------------------------------------------

# Sections a [[mailbox]] entry may set for itself, as [mailbox.smtp] and the like; the top-level
# ones are the defaults of every entry. Units always belong to one entry: [[mailbox.units]].
_PER_MAILBOX = ("smtp", "campaign", "admin", "notices")


def _mailbox_entries(data: dict, source: _Source) -> list[tuple[int, str, dict]]:
    """Return (position, name, document) of each [[mailbox]] entry, its defaults filled in."""
    if "units" in data:
        raise ConfigError(
            f"配置文件 {source.name} 有多个 [[mailbox]]，报送单位应写在各自的邮箱下：把 [[units]] "
            "改为 [[mailbox.units]]，写在所属的 [[mailbox]] 之后。"
        )
    defaults = {key: value for key, value in data.items() if key != "mailbox"}
    entries, seen = [], set()
    for position, entry in enumerate(data["mailbox"], start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"配置文件 {source.name} 中 mailbox 的第 {position} 项应写成一节 [[mailbox]]。")
        own = dict(entry)
        name = own.pop("name", None)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"配置文件 {source.name} 中第 {position} 个 [[mailbox]] 缺少 name：有多个邮箱时，"
                "请为每个邮箱写上名称，例如 name = \"霍城县\"。"
            )
        name = name.strip()
        if name in seen:
            raise ConfigError(f"配置文件 {source.name} 中有两个 [[mailbox]] 都叫“{name}”，请改用不同的名称。")
        seen.add(name)
        parts = {section: own.pop(section) for section in (*_PER_MAILBOX, "units") if section in own}
        entries.append((position, name, {**defaults, **parts, "mailbox": own}))
    return entries


def _entry_settings(data: dict, name: str, position: int, source: _Source) -> Settings:
    """Parse one [[mailbox]] entry; its errors name the entry."""
    try:
        return _settings_from(data, source, name)
    except ConfigError as err:
        raise ConfigError(f"第 {position} 个 [[mailbox]]（{name}）：{err}") from err


def _check_distinct_mailboxes(deployments: tuple[Settings, ...], source: _Source) -> None:
    """Refuse a mailbox folder served twice and a unit name used in two mailboxes."""
    folders: dict[tuple[str, str, str], str] = {}
    owners: dict[str, str] = {}
    for settings in deployments:
        box = settings.mailbox
        folder = (box.username.lower(), box.host.lower(), box.folder)
        if folder in folders:
            raise ConfigError(
                f"配置文件 {source.name} 中 [[mailbox]]“{folders[folder]}”和“{settings.name}”收取的是同一个"
                f"邮箱文件夹（{box.username}，{box.folder}），请删去其中一个。"
            )
        folders[folder] = settings.name
        for unit in settings.units:
            if unit.name in owners:
                raise ConfigError(
                    f"配置文件 {source.name} 中单位“{unit.name}”同时出现在 [[mailbox]]“{owners[unit.name]}”和"
                    f"“{settings.name}”中。各邮箱的单位名称不能相同，请在名称前加上县名加以区分，例如"
                    f"“{settings.name}{unit.name}”，原来的写法可以写进 aliases。"
                )
            owners[unit.name] = settings.name


# --- reading the file -------------------------------------------------------------------------


def _read_toml(path: Path) -> dict:
    """Return the parsed TOML document, with file and syntax errors turned into ConfigError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(
            f"找不到配置文件 {path}：请将 config.example.toml 复制为该文件，按其中的注释修改后再启动。"
        ) from err
    except OSError as err:
        raise ConfigError(f"无法读取配置文件 {path}：{err.strerror}。请检查文件权限。") from err

    # Windows Notepad saves UTF-8 with a byte order mark, which tomllib rejects: drop it.
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"配置文件 {path} 不是 UTF-8 编码（可能保存成了 GBK）：请在编辑器中另存为 UTF-8 编码后再启动。"
        ) from err

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(_syntax_message(path, text, err)) from err


_ERROR_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_DATETIME_WITHOUT_SECONDS = re.compile(r"=\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}\s*(#.*)?$")


def _syntax_message(path: Path, text: str, err: tomllib.TOMLDecodeError) -> str:
    """Return the Chinese message for a TOML syntax error, naming the line."""
    position = _ERROR_POSITION.search(str(err))
    line_number = int(position.group(1)) if position else 0
    where = f"第 {line_number} 行" if line_number else ""
    lines = text.splitlines()
    line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""

    # tomllib implements TOML 1.0, where a datetime must include seconds; TOML 1.1 relaxed that.
    if _DATETIME_WITHOUT_SECONDS.search(line):
        fix = ("日期时间要么写到秒，例如 2023-12-08T18:00:00，"
               "要么加英文双引号写成文字，例如 \"2023-12-08 18:00\"。")
    else:
        fix = "请检查该行的引号、等号和方括号：它们必须是英文半角符号，文字要放在英文双引号内。"
    return f"配置文件 {path} {where}不符合 TOML 格式（{err}）。{fix}"


@dataclass(frozen=True)
class _Source:
    """The file being read: its name for messages, its folder for relative paths, the env."""

    path: Path
    environ: Mapping[str, str]
    require_secrets: bool = True

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def folder(self) -> Path:
        return self.path.resolve().parent


_MISSING = object()


class _Table:
    """One TOML table being read, with typed getters whose errors name the key.

    ``label`` names the table in messages: ``[mailbox]`` or ``[[units]] 第 2 项（水定镇）``.
    Unknown keys are rejected first, because a typo such as ``pasword`` would otherwise be
    reported as a missing ``password``.
    """

    def __init__(self, data: dict, label: str, source: _Source, known: tuple[str, ...]):
        self.data = data
        self.label = label
        self.source = source
        _reject_unknown(data, known, source.name, label)

    def invalid(self, key: str, value: object, fix: str) -> ConfigError:
        """Return the error for an invalid value; secrets are never shown."""
        value_text = "" if key in PASSWORD_KEYS else f" {_show(value)}"
        return ConfigError(
            f"配置文件 {self.source.name} 中 {self.label} {key} 的值{value_text} 无效：{fix}"
        )

    def missing(self, key: str, fix: str) -> ConfigError:
        return ConfigError(f"配置文件 {self.source.name} 中缺少 {self.label} {key}：{fix}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, fix: str, default: object = _MISSING) -> object:
        """Return the value of ``key``, or ``default``; a missing required key raises."""
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.missing(key, fix)
        return default

    def text(self, key: str, fix: str, default: object = _MISSING) -> str:
        """Return a non-empty string value with surrounding whitespace removed."""
        value = self.raw(key, fix, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.invalid(key, value, f"应为用英文双引号括起来的非空文字。{fix}")
        return value.strip()

    def integer(self, key: str, default: int, low: int, high: int, unit: str = "") -> int:
        """Return an integer between ``low`` and ``high``; TOML booleans are not integers."""
        value = self.raw(key, "", default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            unit_text = f"（单位：{unit}）" if unit else ""
            raise self.invalid(key, value, f"应为 {low} 到 {high} 之间的整数{unit_text}，不加引号。")
        return value

    def security(self, default: Security) -> Security:
        value = self.raw("security", "", default.value)
        try:
            return Security(value)
        except ValueError as err:
            raise self.invalid("security", value, "应为 ssl、starttls 或 none 之一。") from err

    def text_list(self, key: str, fix: str) -> tuple[str, ...]:
        """Return a list of non-empty strings (absent means empty)."""
        value = self.raw(key, fix, [])
        if not isinstance(value, list):
            raise self.invalid(key, value, f"应为用方括号括起来的列表，例如 [\"甲\", \"乙\"]。{fix}")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.invalid(key, item, f"列表中的每一项都应为用英文双引号括起来的非空文字。{fix}")
        return tuple(item.strip() for item in value)


def _reject_unknown(data: dict, known: tuple[str, ...], file_name: str, label: str) -> None:
    """Raise ConfigError naming the first key of ``data`` not in ``known``."""
    for key in data:
        if key in known:
            continue
        where = f"中 {label} 的键" if label else "顶层的节或键"
        guess = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        hint = f"您是否想写 {guess[0]}？" if guess else ""
        allowed = "、".join(known)
        raise ConfigError(
            f"配置文件 {file_name} {where} {key} 无法识别：{hint}可用的名称为 {allowed}。"
        )


def _section(data: dict, name: str, source: _Source) -> _Table:
    """Return the table ``[name]`` (empty if absent) checked to be a single table."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"配置文件 {source.name} 中 {name} 应写成一节 [{name}]，下面每行一个“键 = 值”。"
        )
    return _Table(value, f"[{name}]", source, _KNOWN_KEYS[name])


def _show(value: object) -> str:
    """Return ``value`` as the admin would type it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


# --- sections ---------------------------------------------------------------------------------

_KNOWN_KEYS = {
    "service": ("data_dir", "alert_after_failures", "alert_after_intervals"),
    "mailbox": ("host", "port", "security", "username", *PASSWORD_KEYS, "folder",
                "processed_folder", "poll_interval", "timeout", "reconnect_delay",
                "reconnect_max_delay", "login_retry_delay", "idle", "idle_renew"),
    "smtp": ("host", "port", "security", "username", *PASSWORD_KEYS, "from", "from_name",
             "timeout", "login", "rate_per_minute", "daily_cap_per_recipient"),
    "database": ("url", *DATABASE_PASSWORD_KEYS),
    "campaign": ("name", "first_deadline", "last_deadline", "timezone", "skipped_weeks",
                 "demand_form_deadline", "summary_deadline"),
    "units": ("name", "aliases", "emails", "from_week", "until_week", "villages"),
    "limits": ("max_message_mb", "zip_max_members", "zip_max_total_mb", "zip_max_ratio",
               "mime_max_depth"),
    "libreoffice": ("path", "timeout"),
    "admin": ("emails", "name", "phone", "office"),
    "notices": ("reminder", "overdue", "overdue_2", "digest", "templates"),
}


def _parse_service(table: _Table) -> Path:
    """Return the data folder: ``data`` next to the config file unless set."""
    data_dir = table.text("data_dir", "请填写存放数据库和日志的文件夹。", "data")
    return _resolve(table.source, data_dir)


def _parse_health(table: _Table) -> HealthSettings:
    return HealthSettings(
        alert_after_failures=table.integer("alert_after_failures", 3, 1, 100, "次"),
        alert_after_intervals=table.integer("alert_after_intervals", 3, 2, 100, "个收信间隔"),
    )


def _parse_mailbox(table: _Table) -> MailboxSettings:
    host = _host(table, "请填写收取报表的 IMAP 服务器地址，例如 imap.163.com。")
    security = table.security(Security.SSL)
    _require_tls_off_loopback(table, host, security)

    settings = MailboxSettings(
        host=host,
        port=table.integer("port", IMAP_PORTS[security], 1, 65535),
        security=security,
        username=table.text("username", "请填写县级邮箱的登录名，例如 hckexie-example@163.com。"),
        password=_secret(table, None),
        folder=table.text("folder", "请填写收件文件夹名称，通常为 INBOX。", "INBOX"),
        processed_folder=table.text("processed_folder", "请填写处理完的邮件移入的文件夹名称。",
                                    "已处理"),
        poll_interval=table.integer("poll_interval", 300, 30, 86400, "秒"),
        timeout=table.integer("timeout", 60, 5, 600, "秒"),
        reconnect_delay=table.integer("reconnect_delay", 5, 1, 3600, "秒"),
        reconnect_max_delay=table.integer("reconnect_max_delay", 300, 1, 86400, "秒"),
        login_retry_delay=table.integer("login_retry_delay", 1800, 60, 86400, "秒"),
        idle=_boolean(table, "idle", True,
                      "true（服务器支持时用 IDLE 即时收信）或 false（只按 poll_interval 定时查看）"),
        # RFC 2177: a server may end an IDLE after 30 minutes, so it is renewed within 29.
        idle_renew=table.integer("idle_renew", 1500, 60, 1740, "秒"),
    )
    if settings.reconnect_max_delay < settings.reconnect_delay:
        raise table.invalid("reconnect_max_delay", settings.reconnect_max_delay,
                            f"不能小于 reconnect_delay（{settings.reconnect_delay} 秒），"
                            "因为重试间隔从 reconnect_delay 开始逐次加倍，最长到 reconnect_max_delay。")
    return settings


def _parse_smtp(table: _Table, mailbox: MailboxSettings) -> SmtpSettings:
    """Parse [smtp]; the login defaults to the mailbox's, as 163.com uses one for both."""
    host = _host(table, "请填写发送回执的 SMTP 服务器地址，例如 smtp.163.com。")
    security = table.security(Security.SSL)
    _require_tls_off_loopback(table, host, security)

    username = table.text("username", "", mailbox.username)
    sender = table.text("from", "请填写回执的发件地址，例如 hckexie-example@163.com。",
                        username if _is_address(username) else _MISSING)
    if not _is_address(sender):
        raise table.invalid("from", sender, "应为一个邮箱地址，例如 hckexie-example@163.com，不带姓名和尖括号。")

    settings = SmtpSettings(
        host=host,
        port=table.integer("port", SMTP_PORTS[security], 1, 65535),
        security=security,
        username=username,
        password=_secret(table, mailbox.password),
        from_address=sender.lower(),
        from_name=table.text("from_name", "请填写发件人名称，例如 霍城县科协。", ""),
        timeout=table.integer("timeout", 60, 5, 600, "秒"),
        login=_login(table),
        rate_per_minute=table.integer("rate_per_minute", 20, 1, 1000, "封/分钟"),
        daily_cap_per_recipient=table.integer("daily_cap_per_recipient", 10, 1, 1000, "封/24小时"),
    )
    return settings


def _login(table: _Table) -> bool:
    return _boolean(table, "login", True, "true（登录发信服务器，163 邮箱须如此）或 false（服务器不要求登录时）")


def _boolean(table: _Table, key: str, default: bool, choices: str) -> bool:
    value = table.raw(key, "", default)
    if not isinstance(value, bool):
        raise table.invalid(key, value, f"应为 {choices}，不加引号。")
    return value


def _parse_limits(table: _Table) -> LimitsSettings:
    megabyte = 1024 * 1024
    return LimitsSettings(
        max_message_bytes=table.integer("max_message_mb", 25, 1, 1024, "MB") * megabyte,
        zip_max_members=table.integer("zip_max_members", 50, 1, 10000),
        zip_max_total_bytes=table.integer("zip_max_total_mb", 100, 1, 4096, "MB") * megabyte,
        zip_max_ratio=table.integer("zip_max_ratio", 200, 10, 10000),
        mime_max_depth=table.integer("mime_max_depth", 5, 1, 50),
    )


def _parse_libreoffice(table: _Table) -> LibreOfficeSettings:
    path = table.text("path", "", "") or None
    if path is not None:
        path = str(_resolve(table.source, path))
    return LibreOfficeSettings(path=path, timeout=table.integer("timeout", 60, 5, 3600, "秒"))


def _parse_admin(table: _Table) -> AdminSettings:
    emails = table.text_list("emails", "请填写管理员接收系统提示的邮箱地址，例如 [\"kexie-admin@example.com\"]。")
    for email in emails:
        if not _is_address(email):
            raise table.invalid("emails", email, "应为邮箱地址，例如 kexie-admin@example.com，不带姓名和尖括号。")
    return AdminSettings(
        emails=tuple(email.lower() for email in emails),
        name=_optional_text(table, "name", "请填写通知落款的联系人，例如 贾老师，或删去这一行。"),
        phone=_contact_phone(table),
        office=_optional_text(table, "office", "请填写联系人所在科室，例如 霍城县科协办公室，或删去这一行。"),
    )


# Digits with the separators people write in a phone number: 0999-3021234, (0999) 3021234,
# 138 0000 0001, +86 13800000001, 0999-3021234转8001. Full-width digits come from a Chinese IME.
_PHONE = re.compile(r"[0-9０-９+＋()（）\-－ ]+(转[0-9０-９]+)?")
_MIN_PHONE_DIGITS = 5


def _optional_text(table: _Table, key: str, fix: str) -> str:
    """Return the text of an optional key, "" when absent; an empty value is an error."""
    if not table.has(key):
        return ""
    return table.text(key, fix)


def _contact_phone(table: _Table) -> str:
    phone = _optional_text(table, "phone", "请填写联系电话，例如 0999-3021234，或删去这一行。")
    digits = sum(character.isdigit() for character in phone)
    if phone and (not _PHONE.fullmatch(phone) or digits < _MIN_PHONE_DIGITS):
        raise table.invalid("phone", phone, "应为电话号码，例如 0999-3021234 或 13800000001，只含数字、短横线、空格和括号。")
    return phone


def _parse_database(table: _Table, data_dir: Path) -> DatabaseSettings:
    """Parse [database]; without a URL the database is an SQLite file in the data folder."""
    default = URL.create("sqlite", database=str(data_dir / DEFAULT_DATABASE_FILE))
    text = table.text("url", "", default.render_as_string(hide_password=False))
    fix = ("应为 SQLite 或 PostgreSQL 数据库的 SQLAlchemy 地址，例如 sqlite:///data/zhoubao.sqlite3 "
           "或 postgresql+psycopg://zhoubao:密码@127.0.0.1:5432/zhoubao。")
    try:
        url = make_url(text)
    except ArgumentError as err:
        raise table.invalid("url", _hide_password(text), fix) from err
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise table.invalid("url", url.render_as_string(hide_password=True), fix)

    # A daemon's working directory is arbitrary, so a relative SQLite path follows the config.
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(_resolve(table.source, url.database)))

    url = _database_password(table, url)
    return DatabaseSettings(url.render_as_string(hide_password=False))


def _database_password(table: _Table, url: URL) -> URL:
    """Return ``url`` with the password that password_env or password_file names, if either is set.

    The password is read even when secrets are not required, because every command that opens
    the database needs it. URL.set escapes characters such as @ and / that a password may contain.
    """
    present = [key for key in DATABASE_PASSWORD_KEYS if table.has(key)]
    if not present:
        return url
    if len(present) > 1:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 [database] 同时填写了 password_env 和 password_file："
            "两者只能填写其中一项，请删除多余的行。"
        )

    key = present[0]
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"配置文件 {table.source.name} 中 [database] {key} 只用于 PostgreSQL 数据库的密码，"
            "而 url 指向 SQLite 数据库（SQLite 数据库没有密码）：请删除这一行。"
        )
    if url.password is not None:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 [database] url 已含有密码，又填写了 {key}："
            f"请删去 url 中“:密码@”的密码部分（保留 @），或删去 {key} 这一行。"
        )

    name = table.text(key, "")
    secret_label = "数据库用户的密码"
    if key == "password_env":
        return url.set(password=_secret_from_env(table, name, secret_label))
    return url.set(password=_secret_from_file(table, name, secret_label))


def _parse_campaign(table: _Table) -> CampaignSettings:
    name = table.text("name", "请填写活动名称，例如 2023-2024年“科技之冬”活动。")
    timezone = _timezone(table)
    first = _deadline(table, "first_deadline", timezone)
    last = _deadline(table, "last_deadline", timezone)
    _check_whole_weeks(table, first, last)

    last_week = (last - first) // dt.timedelta(days=7) + 1
    skipped = _skipped_weeks(table, last_week)
    one_off = {document: _deadline(table, key, timezone)
               for key, document in _ONE_OFF_KEYS.items() if table.has(key)}
    return CampaignSettings(name, first, last, timezone, skipped, one_off)


# The keys of the one-off deadlines and the X-Zhoubao-Notice name of their document.
_ONE_OFF_KEYS = {"demand_form_deadline": "demand-form", "summary_deadline": "summary"}


def _parse_units(value: object, source: _Source, county: frozenset[str],
                 last_week: int) -> tuple[UnitSettings, ...]:
    """Parse the [[units]] array; names, aliases and addresses must each belong to one unit."""
    if value is None or value == []:
        raise ConfigError(
            f"配置文件 {source.name} 中没有任何 [[units]]：请为每个报送单位写一段 [[units]]，"
            "填写 name 和 emails。"
        )
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(
            f"配置文件 {source.name} 中 units 应写成 [[units]]（两层方括号），每个报送单位写一段。"
        )

    owners: dict[str, tuple[int, str]] = {}
    units = []
    for position, data in enumerate(value, start=1):
        table, unit = _parse_unit(data, position, source, last_week)
        _claim_names(table, position, unit, owners)
        _claim_emails(table, position, unit, owners, county)
        units.append(unit)
    return tuple(units)


# --- section helpers --------------------------------------------------------------------------


def _host(table: _Table, fix: str) -> str:
    host = table.text("host", fix)
    if "://" in host or "/" in host or " " in host or ":" in host.strip("[]") and host.count(":") == 1:
        raise table.invalid("host", host, f"只填写主机名，不带协议、端口和路径。{fix}")
    return host


def _require_tls_off_loopback(table: _Table, host: str, security: Security) -> None:
    """Reject ``security = "none"`` for any host but this machine: the password would travel in clear."""
    if security is Security.NONE and not is_loopback(host):
        raise table.invalid(
            "security", security.value,
            f"none（不加密）只允许用于本机地址 127.0.0.1、localhost 或 ::1，而 host 为 "
            f"{_show(host)}。连接外部服务器请使用 ssl 或 starttls。",
        )


def _secret(table: _Table, default: Secret | None) -> Secret:
    """Return the password given by exactly one of password, password_env and password_file."""
    present = [key for key in PASSWORD_KEYS if table.has(key)]
    if len(present) > 1:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 {table.label} 同时填写了 {'、'.join(present)}："
            "password、password_env、password_file 只能填写其中一项，请删除多余的行。"
        )
    if not present:
        if default is not None:
            return default
        raise table.missing(
            "password_env",
            "请用 password_env 指定存放授权码的环境变量名（推荐），"
            "或用 password_file 指定存放授权码的文件，或用 password 直接填写。",
        )

    key = present[0]
    value = table.data[key]
    if not isinstance(value, str) or not value.strip():
        raise table.invalid(key, value, "应为用英文双引号括起来的非空文字。")
    if key == "password":
        return Secret(value)
    read = _secret_from_env if key == "password_env" else _secret_from_file
    try:
        return Secret(read(table, value.strip()))
    except ConfigError as err:
        if table.source.require_secrets:
            raise
        return Secret.unavailable(err)


def _secret_from_env(table: _Table, name: str, secret_label: str = MAILBOX_SECRET) -> str:
    value = table.source.environ.get(name, "")
    if not value:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 {table.label} password_env 指定的环境变量 {name} "
            f"未设置或为空：请在启动服务前设置该环境变量，值为{secret_label}。"
        )
    return value


def _secret_from_file(table: _Table, name: str, secret_label: str = MAILBOX_SECRET) -> str:
    path = _resolve(table.source, name)
    try:
        value = path.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 {table.label} password_file 指定的文件 {path} "
            "无法读取：请确认文件存在、服务有权读取，且为 UTF-8 编码的文本。"
        ) from err
    if not value:
        raise ConfigError(
            f"配置文件 {table.source.name} 中 {table.label} password_file 指定的文件 {path} "
            f"是空的：请在其中写入{secret_label}。"
        )
    return value


def _timezone(table: _Table) -> ZoneInfo:
    name = table.text("timezone", "", DEFAULT_TIMEZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise table.invalid("timezone", name, "应为 IANA 时区名称，北京时间请填写 Asia/Shanghai。") from err


_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}")
_DEADLINE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日%H:%M")


def _deadline(table: _Table, key: str, timezone: ZoneInfo) -> dt.datetime:
    """Return a deadline as an aware datetime in ``timezone``.

    Accepts a TOML local datetime (2023-12-08T18:00:00) or a string ("2023-12-08 18:00"). Both
    are read as local time in the campaign's timezone, and an explicit offset is converted to it.
    """
    fix = "应写明日期和时间（当地时间），例如 2023-12-08 18:00，写成文字时加英文双引号。"
    value = table.raw(key, f"请填写截止时间，例如 {key} = 2023-12-08T18:00。")

    moment = value if isinstance(value, dt.datetime) else None
    if isinstance(value, str):
        moment = _parse_deadline_text(value)
    if moment is None:
        raise table.invalid(key, value, fix)

    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone)
    return moment.astimezone(timezone)


def _parse_deadline_text(text: str) -> dt.datetime | None:
    """Return the datetime a deadline string states, or None if it lacks a time of day."""
    text = unicodedata.normalize("NFKC", text).strip()
    if not _TIME_OF_DAY.search(text):
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _DEADLINE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _check_whole_weeks(table: _Table, first: dt.datetime, last: dt.datetime) -> None:
    """Require the last deadline on the first one's weekday and time, not before it."""
    written = table.data["last_deadline"]
    first_text = _describe_deadline(first)
    last_text = _describe_deadline(last)
    if last < first:
        raise table.invalid("last_deadline", written,
                            f"该时间为{last_text}，早于 first_deadline（{first_text}）。"
                            "请检查两个截止时间的年份和月份。")

    # Wall-clock difference: both are in the campaign timezone, so offsets cancel out.
    span = last.replace(tzinfo=None) - first.replace(tzinfo=None)
    if span % dt.timedelta(days=7):
        raise table.invalid(
            "last_deadline", written,
            f"该时间为{last_text}，而每周的截止时间相同，应与 first_deadline（{first_text}）"
            f"相隔整数周，即同为星期{_WEEKDAYS[first.weekday()]} {first:%H:%M}。",
        )


_WEEKDAYS = "一二三四五六日"


def _describe_deadline(moment: dt.datetime) -> str:
    """Return a deadline as 2023年12月8日（星期五）18:00 for messages."""
    return (f"{moment.year}年{moment.month}月{moment.day}日（星期{_WEEKDAYS[moment.weekday()]}）"
            f"{moment:%H:%M}")


def _skipped_weeks(table: _Table, last_week: int) -> tuple[int, ...]:
    value = table.raw("skipped_weeks", "", [])
    fix = f"应为 1 到 {last_week} 之间的周次组成的列表，例如 [7, 8]；没有停报的周请写 []。"
    if not isinstance(value, list):
        raise table.invalid("skipped_weeks", value, fix)
    for week in value:
        if isinstance(week, bool) or not isinstance(week, int) or not 1 <= week <= last_week:
            raise table.invalid("skipped_weeks", week, fix)

    weeks = tuple(sorted(set(value)))
    if len(weeks) == last_week:
        raise table.invalid("skipped_weeks", value, "不能停报全部周次：活动至少要有一周需要报送。")
    return weeks


def _parse_unit(data: dict, position: int, source: _Source,
                last_week: int) -> tuple[_Table, UnitSettings]:
    """Parse one [[units]] entry, returning its table (for later messages) and the unit."""
    written = data.get("name")
    label = _unit_label(position, written.strip() if isinstance(written, str) else None)
    table = _Table(data, label, source, _KNOWN_KEYS["units"])
    name = table.text("name", "请填写单位名称，与报表“填报乡镇（单位）”一致，例如 水定镇。")

    aliases = table.text_list("aliases", "例如 [\"芦草沟镇人民政府\"]。")
    emails = table.text_list("emails", "例如 [\"shuiding_kx@163.com\"]。")
    for email in emails:
        if not _is_address(email):
            raise table.invalid("emails", email, "应为邮箱地址，例如 shuiding_kx@163.com，不带姓名和尖括号。")

    unique_emails = tuple(dict.fromkeys(email.lower() for email in emails))
    unique_aliases = tuple(alias for alias in dict.fromkeys(aliases) if alias != name)
    from_week, until_week = _unit_weeks(table, last_week)
    villages = table.integer("villages", 0, 1, 10000, "个") if table.has("villages") else None
    return table, UnitSettings(name, unique_aliases, unique_emails, from_week, until_week, villages)


def _unit_weeks(table: _Table, last_week: int) -> tuple[int, int | None]:
    """Return the unit's first and last week of reporting; None means it reports to the end."""
    from_week = table.integer("from_week", 1, 1, last_week, "周次")
    if not table.has("until_week"):
        return from_week, None

    until_week = table.integer("until_week", last_week, 1, last_week, "周次")
    if until_week < from_week:
        raise table.invalid("until_week", until_week,
                            f"不能早于 from_week（第 {from_week} 周）：until_week 是该单位最后报送的周次。")
    return from_week, until_week


def _unit_label(position: int, name: str | None) -> str:
    return f"[[units]] 第 {position} 项（{name}）" if name else f"[[units]] 第 {position} 项"


def _claim_names(table: _Table, position: int, unit: UnitSettings,
                 owners: dict[str, tuple[int, str]]) -> None:
    """Record the unit's name and aliases in ``owners``, raising if another entry has one.

    ``owners`` maps each claimed name or address to the position and name of its unit.
    """
    for key, names in (("name", (unit.name,)), ("aliases", unit.aliases)):
        for name in names:
            owner_position, owner = owners.setdefault(f"name:{name}", (position, unit.name))
            if owner_position != position:
                raise table.invalid(
                    key, name,
                    f"该名称已用作第 {owner_position} 项单位“{owner}”的名称或别名，每个名称只能属于一个单位。",
                )


def _claim_emails(table: _Table, position: int, unit: UnitSettings,
                  owners: dict[str, tuple[int, str]], county: frozenset[str]) -> None:
    """Record the unit's addresses in ``owners``, raising if another unit or the county has one."""
    for email in unit.emails:
        if email in county:
            raise table.invalid(
                "emails", email,
                "这是本服务收发邮件所用的县级邮箱（[mailbox] username 或 [smtp] from），不能作为单位的报送地址。",
            )
        owner_position, owner = owners.setdefault(f"email:{email}", (position, unit.name))
        if owner_position != position:
            raise table.invalid(
                "emails", email,
                f"该地址已属于第 {owner_position} 项单位“{owner}”，每个邮箱地址只能属于一个单位。"
                f"请确认它是“{owner}”还是“{unit.name}”的地址，并从另一处删除。",
            )


def _county_addresses(mailbox: MailboxSettings, smtp: SmtpSettings) -> frozenset[str]:
    """Return the county's own addresses: the IMAP and SMTP logins that are addresses, and From."""
    candidates = (mailbox.username, smtp.username, smtp.from_address)
    return frozenset(address.lower() for address in candidates if _is_address(address))


def _is_address(text: str) -> bool:
    """Tell whether ``text`` is a bare addr-spec like shuiding_kx@163.com (RFC 5322 3.4.1)."""
    try:
        address = Address(addr_spec=text)
    except (ValueError, HeaderParseError):
        return False
    return bool(address.username and address.domain) and address.addr_spec == text


def _hide_password(text: str) -> str:
    """Replace the password in ``scheme://user:password@host`` with *** for messages."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", text)


def _resolve(source: _Source, name: str) -> Path:
    """Return ``name`` as an absolute path, relative names taken from the config file's folder."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else source.folder / path


# --- [notices] --------------------------------------------------------------------------------

# "截止当天 12:00", "截止前1天 16:00", "截止后3天 10:00", or a bare "12:00" for the deadline's day.
_NOTICE_TIME = re.compile(r"(?:截止(?:(当天)|([前后])(\d)天)\s*)?(\d{1,2}):(\d{2})")
_NOTICE_FORM = ("应写成相对每周截止日的时间，例如 \"截止当天 12:00\"、\"截止前1天 16:00\"、"
                "\"截止后3天 10:00\"，天数为 1 到 6；不发送这种通知时写 false（不加引号）。")


def _parse_notices(table: _Table, deadline_time: dt.time) -> NoticeSchedule:
    """Parse [notices]: when each week's reminder, overdue notices and digest go out.

    Moments are relative to the deadline's date, so they follow the deadline's weekday. The
    reminder must fall before the deadline and the others after it, within seven days.
    """
    default = NoticeSchedule()
    keys = {ScheduledNotice.REMINDER: "reminder", ScheduledNotice.OVERDUE: "overdue",
            ScheduledNotice.OVERDUE_2: "overdue_2", ScheduledNotice.DIGEST: "digest"}
    times = {kind: _notice_time(table, key, default.times()[kind], deadline_time)
             for kind, key in keys.items()}

    overdue, second = times[ScheduledNotice.OVERDUE], times[ScheduledNotice.OVERDUE_2]
    if overdue and second and second.offset_from(deadline_time) <= overdue.offset_from(deadline_time):
        raise table.invalid("overdue_2", table.raw("overdue_2", "", second.describe()),
                            f"第二次逾期提醒应晚于第一次（overdue 为 {overdue.describe()}）。")
    return NoticeSchedule(reminder=times[ScheduledNotice.REMINDER], overdue=overdue, overdue_2=second,
                          digest=times[ScheduledNotice.DIGEST])


def _parse_template_dir(table: _Table) -> Path | None:
    """Return the folder of the admin's own templates, which must exist, or None when not set."""
    if not table.has("templates"):
        return None
    name = table.text("templates", "请填写存放自定义通知模板的文件夹。")
    folder = _resolve(table.source, name)
    if not folder.is_dir():
        raise table.invalid("templates", name,
                            f"找不到文件夹 {folder}。请先建立该文件夹并放入要修改的模板，"
                            "或删去这一行，使用系统自带的模板。")
    problems = check_templates(folder)
    if problems:
        raise table.invalid("templates", name, "文件夹中的模板有误，请改正后再启动：\n" + "\n".join(problems))
    return folder


def _notice_time(table: _Table, key: str, default: NoticeTime,
                 deadline_time: dt.time) -> NoticeTime | None:
    """Return the moment ``key`` sets, None for false, ``default`` when absent."""
    value = table.raw(key, "", default)
    if value is default or value is False:
        return None if value is False else default

    parsed = _parse_notice_time(value) if isinstance(value, str) else None
    if parsed is None:
        raise table.invalid(key, value, _NOTICE_FORM)

    offset = parsed.offset_from(deadline_time)
    deadline_text = f"截止时间 {deadline_time:%H:%M}"
    if key == "reminder" and not -dt.timedelta(days=7) < offset < dt.timedelta(0):
        raise table.invalid(key, value, f"截止前提醒应早于当天的{deadline_text}，且不早于 6 天前。")
    if key != "reminder" and not dt.timedelta(0) < offset < dt.timedelta(days=7):
        raise table.invalid(key, value, f"该通知应晚于当天的{deadline_text}，且在 7 天之内。")
    return parsed


def _parse_notice_time(text: str) -> NoticeTime | None:
    """Return the NoticeTime that ``text`` states, or None when it follows no accepted form."""
    match = _NOTICE_TIME.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        return None

    _, direction, days_text, hour, minute = match.groups()
    days = int(days_text) if days_text else 0
    if direction and not 1 <= days <= 6 or int(hour) > 23 or int(minute) > 59:
        return None
    return NoticeTime(-days if direction == "前" else days, dt.time(int(hour), int(minute)))
