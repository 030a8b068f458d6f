"""``zhoubao doctor``: check the configuration, the database, both mail servers and the machine.

Each check is a small function that does its I/O and returns :class:`service.checks.CheckResult`
values; the verdicts and the report's wording are in :mod:`service.checks`. Nothing here writes:
the IMAP folders are selected read-only, no folder is created and no mail is sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import smtplib
import ssl
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.convert import LibreOfficeConverter
from ingest.errors import AuthenticationFailed, ConfigError, DeliveryError, MailboxError, StoreError
from ingest.mailbox import MailboxProbe
from service.checks import (
    CheckResult,
    Status,
    disk_result,
    failed,
    passed,
    revision_result,
    timezone_result,
    warned,
)
from service.config import Settings, load_deployments, load_settings
from service.intake import open_mailbox
from service.runtime import sender_factory
from store.session import Database, sqlite_file

_CERTIFICATE_FIX = ("服务器的证书未通过验证。若服务器使用单位自建的证书，请把 OpenSSL 的环境变量 SSL_CERT_FILE "
                    "指向包含该证书的文件；否则请确认 host 填写的是服务器的正式域名。")


def _reason(err: Exception) -> str:
    """Return the underlying error as text; imapclient gives the server's reply as bytes."""
    cause = err.__cause__ or err
    if cause.args and isinstance(cause.args[0], bytes):
        return cause.args[0].decode("utf-8", "replace")
    # SQLAlchemy appends the statement and a link to its documentation on further lines.
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _reply_text(err: smtplib.SMTPResponseException) -> str:
    reply = err.smtp_error
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def run_checks(config_path: Path, now: dt.datetime, mailbox: str | None = None) -> list[CheckResult]:
    """Run every check in order; without a readable config only the config check runs.

    ``mailbox`` names the [[mailbox]] entry to check; None checks every mailbox's logins and time
    zone, and the shared database, disk and LibreOffice once.
    """
    deployments, result = check_config(config_path, mailbox)
    if not deployments:
        return [result]
    first = deployments[0]
    logins = [_named(settings, check) for settings in deployments
              for check in (*check_imap(settings), check_smtp(settings))]
    zones = {settings.campaign.timezone.key: check_timezone(settings, now) for settings in deployments}
    return [result, check_database(first, config_path), *logins, *check_disk(first), check_libreoffice(first),
            *zones.values()]


def _named(settings: Settings, result: CheckResult) -> CheckResult:
    """Put the [[mailbox]] name before a check of that mailbox, such as ``伊宁县 收信登录``."""
    return dataclasses.replace(result, name=f"{settings.name} {result.name}") if settings.name else result


def check_config(config_path: Path, mailbox: str | None = None) -> tuple[tuple[Settings, ...], CheckResult]:
    """Load the config; a missing password is left to the login checks that need it."""
    try:
        if mailbox is None:
            deployments = load_deployments(config_path, require_secrets=False)
        else:
            deployments = (load_settings(config_path, require_secrets=False, mailbox=mailbox),)
    except ConfigError as err:
        return (), failed("配置文件", f"{config_path} 无法使用，其余检查未进行", str(err))
    units = sum(len(settings.units) for settings in deployments)
    boxes = f"{len(deployments)} 个邮箱，" if len(deployments) > 1 else ""
    return deployments, passed("配置文件", f"{config_path} 读取成功，{boxes}{units} 个报送单位")


def check_database(settings: Settings, config_path: Path) -> CheckResult:
    """Connect without migrating and compare the schema revision with the newest one shipped."""
    where = settings.database.safe_url
    upgrade = f"zhoubao --config {config_path} db upgrade"
    database = Database(settings.database.url)
    try:
        missing = database.missing_file()
        if missing is not None:
            return failed("数据库", f"数据库文件 {missing} 不存在",
                          f"首次使用请运行 {upgrade} 建立数据库；若已有数据，请检查 [database] url 或 "
                          "[service] data_dir 是否指向原来的位置。")
        current = database.revision()
        return revision_result(current, database.head_revision(), database.revisions(), upgrade, where)
    except StoreError as err:
        reason = _reason(err)
        if "does not exist" in reason and "database" in reason:
            return failed("数据库", f"无法连接 {where}：数据库不存在（{reason}）",
                          f"请先在 PostgreSQL 中建立该数据库（例如 createdb），再运行 {upgrade}。")
        return failed("数据库", f"无法连接 {where}：{reason}",
                      "请检查配置文件 [database] 一节的 url、数据库服务是否在运行、用户名和密码是否正确。")
    finally:
        database.dispose()


# --- IMAP --------------------------------------------------------------------------------------


def check_imap(settings: Settings) -> list[CheckResult]:
    """Log in, send ID when advertised, and open the inbox and the processed folder read-only.

    The checks after a failed step are left out, because they need the step before.
    """
    box = settings.mailbox
    try:
        mailbox = open_mailbox(settings)
    except ConfigError as err:
        return [failed("收信登录", f"{box.username} 的授权码无法读取", str(err))]

    with MailboxProbe(mailbox) as probe:
        try:
            probe.login()
        except MailboxError as err:
            return [_imap_login_failure(settings, err)]
        results = [passed("收信登录", f"{box.username} 已登录 {box.host}:{box.port}（{box.security}）")]
        for check in (_check_id, _check_inbox, _check_processed_folder):
            result = check(settings, probe)
            results.append(result)
            if result.status is Status.FAILED:
                break
    return results


def _imap_login_failure(settings: Settings, err: MailboxError) -> CheckResult:
    box = settings.mailbox
    if isinstance(err, AuthenticationFailed):
        return failed(
            "收信登录", f"{box.host} 拒绝了 {box.username} 的登录（{err.reply or _reason(err)}）",
            "请确认 [mailbox] username 是完整的邮箱地址，密码填写的是客户端授权码而不是网页登录密码。"
            "授权码失效时，请登录邮箱网页版，在“设置 → POP3/SMTP/IMAP”中确认 IMAP/SMTP 服务已开启并重新生成授权码，"
            "写入 password_env 指定的环境变量（或 password_file 指定的文件），然后重启服务。",
        )
    if isinstance(err.__cause__, ssl.SSLCertVerificationError):
        return failed("收信登录", f"无法与 {box.host}:{box.port} 建立加密连接：{err.__cause__}", _CERTIFICATE_FIX)
    return failed("收信登录", f"无法连接 {box.host}:{box.port}：{_reason(err)}",
                  "请检查 [mailbox] 一节的 host、port 和 security（163 邮箱为 imap.163.com、993、ssl），"
                  "以及服务器能否访问外网、防火墙是否放行该端口。")


def _check_id(settings: Settings, probe: MailboxProbe) -> CheckResult:
    try:
        sent = probe.identify()
    except MailboxError as err:
        return warned("IMAP ID", f"服务器拒绝了 ID 命令：{_reason(err)}",
                      "163 邮箱要求先发送 ID 才能打开文件夹；若下一项也失败，请在邮箱网页版中确认 IMAP 服务已开启。")
    if not sent:
        return passed("IMAP ID", "服务器未声明支持 ID 命令，无需发送")
    return passed("IMAP ID", "已发送，服务器已接受")


def _check_inbox(settings: Settings, probe: MailboxProbe) -> CheckResult:
    folder = settings.mailbox.folder
    try:
        count = probe.examine(folder)
    except MailboxError as err:
        return failed("收件文件夹", f"无法打开“{folder}”：{_reason(err)}",
                      "请检查 [mailbox] folder（一般为 INBOX）；错误信息含 Unsafe Login 时，"
                      "请在邮箱网页版中确认 IMAP 服务已开启。")
    return passed("收件文件夹", f"“{folder}”可以打开，现有 {count} 封邮件")


def _check_processed_folder(settings: Settings, probe: MailboxProbe) -> CheckResult:
    folder = settings.mailbox.processed_folder
    try:
        if not probe.folder_exists(folder):
            return warned("已处理文件夹", f"“{folder}”还不存在", "无需处理：服务第一次收信时会自动创建该文件夹。")
        count = probe.examine(folder)
    except MailboxError as err:
        return failed("已处理文件夹", f"无法打开“{folder}”：{_reason(err)}",
                      "请检查 [mailbox] processed_folder，或在邮箱网页版中删除同名的异常文件夹后重试。")
    return passed("已处理文件夹", f"“{folder}”可以打开，现有 {count} 封邮件")


# --- SMTP --------------------------------------------------------------------------------------


def check_smtp(settings: Settings) -> CheckResult:
    """Connect with the configured security, send EHLO, log in when configured, then QUIT."""
    smtp = settings.smtp
    try:
        sender = sender_factory(settings)()
    except ConfigError as err:
        return failed("发信登录", f"{smtp.username} 的授权码无法读取", str(err))
    try:
        with sender:
            sender.ehlo()
    except DeliveryError as err:
        return _smtp_failure(settings, err)
    connection = f"已登录 {smtp.host}:{smtp.port}" if smtp.login else f"已连接 {smtp.host}:{smtp.port}（不登录）"
    return passed("发信登录", f"{smtp.username} {connection}（{smtp.security}），未发送邮件")


def _smtp_failure(settings: Settings, err: DeliveryError) -> CheckResult:
    smtp = settings.smtp
    cause = err.__cause__
    if isinstance(cause, smtplib.SMTPAuthenticationError):
        return failed("发信登录", f"{smtp.host} 拒绝了 {smtp.username} 的登录（{cause.smtp_code} {_reply_text(cause)}）",
                      "请确认 [smtp] username 和授权码正确；163 邮箱收信和发信使用同一个客户端授权码，"
                      "且需在网页版“设置 → POP3/SMTP/IMAP”中开启 SMTP 服务。")
    if isinstance(cause, ssl.SSLCertVerificationError):
        return failed("发信登录", f"无法与 {smtp.host}:{smtp.port} 建立加密连接：{cause}", _CERTIFICATE_FIX)
    if isinstance(cause, smtplib.SMTPNotSupportedError):
        return failed("发信登录", f"{smtp.host}:{smtp.port} 不支持所需的命令：{cause}",
                      "请检查 [smtp] security 与端口是否对应（465 用 ssl，587 用 starttls）；"
                      "服务器不要求登录时可设 login = false。")
    return failed("发信登录", f"无法连接 {smtp.host}:{smtp.port}：{cause or err}",
                  "请检查 [smtp] 一节的 host、port 和 security（163 邮箱为 smtp.163.com、465、ssl），"
                  "以及服务器能否访问外网、防火墙是否放行该端口（部分云服务器封禁 25 端口）。")


# --- the machine -------------------------------------------------------------------------------


def check_disk(settings: Settings) -> list[CheckResult]:
    """Check free space where the data folder is and, when on another disk, where the SQLite file is."""
    folders = [settings.data_dir]
    database_file = sqlite_file(settings.database.url)
    if database_file is not None and _device(database_file.parent) != _device(settings.data_dir):
        folders.append(database_file.parent)
    return [disk_result(folder, shutil.disk_usage(_existing(folder)).free) for folder in folders]


def _device(folder: Path) -> int:
    return os.stat(_existing(folder)).st_dev


def _existing(folder: Path) -> Path:
    """Return ``folder`` or its nearest existing parent, whose disk it will be on once created."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_libreoffice(settings: Settings) -> CheckResult:
    """Look for soffice as the converter does; missing is a warning, because other files still work."""
    configured = settings.libreoffice.path
    office = LibreOfficeConverter(binary=configured)
    if office.available:
        return passed("LibreOffice", f"已安装（{office.binary}）")
    effect = "旧版 Word（.doc）和 WPS（.wps、.et）文件无法读取，系统会请发件人另存为 .xlsx 或 .docx 后重发"
    if configured:
        return warned("LibreOffice", f"[libreoffice] path 指定的 {configured} 不存在或不能执行：{effect}",
                      "请改为 soffice 的实际路径，或删去这一行，由系统自动查找。")
    return warned("LibreOffice", f"未安装：{effect}",
                  "在 Debian 或 Ubuntu 上以管理员身份运行 apt-get install -y --no-install-recommends "
                  "libreoffice-calc-nogui libreoffice-writer-nogui，安装后无需重启服务。")


def check_timezone(settings: Settings, now: dt.datetime) -> CheckResult:
    """Resolve the campaign's time zone again and print its local time and the next deadline."""
    name = settings.campaign.timezone.key
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        return failed("时区", f"无法加载时区 {name}：{err}",
                      "请安装时区数据（Debian 上为 apt-get install tzdata，或 pip install tzdata）。")
    return timezone_result(settings.campaign.calendar(), name, now)
