"""Alerts to the admin when the mailbox server rejects the login, and when it accepts it again.

One alert goes out per failure, however long it lasts and however often the service restarts. The
outbox is the record: each alert's Message-ID names the mailbox, the failure's number and whether
it reports the rejection or the recovery, such as ``<alert.imap-login.3f2a9c1d5e7b.2.rejected@…>``.
A failure is open while the newest of these IDs is a rejection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy.orm import Session

from notify.notices import AlertNotice
from notify.render import render_notice
from service.config import Settings
from service.intake import mailbox_key
from service.replies import enqueue_alert
from store import outcomes, repository

logger = logging.getLogger(__name__)

REJECTED = "rejected"
RESTORED = "restored"


def queue_login_rejected(session: Session, settings: Settings, now: dt.datetime, reply: str) -> int | None:
    """Queue the alert that the login was rejected, unless this failure already has one; no commit.

    ``reply`` is the text of the server's reply to LOGIN. Returns the outbox id, or None when nothing was
    queued.

    NOTE: 163.com uses one authorization code for IMAP and SMTP, so unless [smtp] has a code of
    its own, this alert stays in the outbox until the admin renews the code.
    """
    ids = _login_alert_ids(session, settings)
    if ids and _state(ids[-1]) == REJECTED:
        return None
    failure = _episode(ids)
    box = settings.mailbox
    notice = AlertNotice(
        title="收信邮箱拒绝登录，请更新授权码",
        lines=[
            f"本系统登录收信邮箱 {box.username}（服务器 {box.host}）时被服务器拒绝，"
            f"服务器的答复是：{(reply or '（无）').rstrip('。.')}。在恢复登录之前，系统收不到各乡镇报送的报表，也不会回复。",
            "这通常是因为邮箱的客户端授权码已过期、已被重置或填写有误。163 邮箱请按以下步骤重新生成授权码："
            "网页登录 163 邮箱，进入“设置”→“POP3/SMTP/IMAP”，确认 IMAP/SMTP 服务已开启，"
            "再新增一个授权码（按提示用手机验证）。授权码只显示一次，请随即保存。",
            "然后把新的授权码写入配置文件 [mailbox] 一节指定的位置（password_env 指定的环境变量、"
            "password_file 指定的文件或 password 一项），并重新启动本服务。"
            "[smtp] 一节未单独填写授权码时，发信也使用这个授权码。",
            f"在此之前，系统每隔 {_minutes(box.login_retry_delay)}重试一次登录。"
            "故障持续期间不再重复发送本提示，恢复登录后会另发邮件告知。",
        ],
        as_of=now,
        tz=settings.campaign.timezone,
    )
    mail_id = _queue(session, settings, notice, _message_id(settings, failure, REJECTED), now)
    logger.warning("alert: %s rejected the login, alert queued as outbox mail %d", mailbox_key(settings), mail_id)
    return mail_id


def queue_login_restored(session: Session, settings: Settings, now: dt.datetime) -> int | None:
    """Queue the notice that the login works again, if a rejection alert is open; no commit.

    Returns the outbox id, or None when no failure was open.
    """
    ids = _login_alert_ids(session, settings)
    if not ids or _state(ids[-1]) != REJECTED:
        return None
    failure = _episode(ids)
    # The rejection alert may still wait in the outbox, because 163.com rejects SMTP with the same
    # expired code. Sent after this notice, it would claim the login is still broken.
    if repository.withdraw_pending(session, ids[-1]):
        logger.info("alert: %s rejection alert never sent, withdrawn", mailbox_key(settings))
    box = settings.mailbox
    notice = AlertNotice(
        title="收信邮箱已恢复登录",
        lines=[
            f"本系统已重新登录收信邮箱 {box.username}（服务器 {box.host}），继续收取和处理各乡镇的报表。",
            "登录被拒绝期间到达的邮件一直留在收件箱中，现已处理，无需乡镇重新发送。",
        ],
        as_of=now,
        tz=settings.campaign.timezone,
    )
    mail_id = _queue(session, settings, notice, _message_id(settings, failure, RESTORED), now)
    logger.info("alert: %s accepts the login again, notice queued as outbox mail %d",
                mailbox_key(settings), mail_id)
    return mail_id


def _queue(session: Session, settings: Settings, notice: AlertNotice, message_id: str, now: dt.datetime) -> int:
    rendered = render_notice(notice, signature=settings.smtp.from_name)
    return enqueue_alert(session, settings, message_id, rendered, now).id


def _prefix(settings: Settings) -> str:
    """Return the Message-ID prefix of this mailbox's login alerts; the domain is left out."""
    digest = hashlib.sha256(mailbox_key(settings).encode()).hexdigest()[:12]
    return f"<alert.imap-login.{digest}."


def _message_id(settings: Settings, failure: int, state: str) -> str:
    domain = settings.smtp.from_address.rpartition("@")[2]
    return f"{_prefix(settings)}{failure}.{state}@{domain}>"


def _episode(ids: list[str]) -> int:
    """Return the number of the open or next failure: one more than the failures that recovered.

    Counted by the restored notices, since a rejection alert withdrawn unsent leaves no row.
    """
    return sum(1 for message_id in ids if _state(message_id) == RESTORED) + 1


def _login_alert_ids(session: Session, settings: Settings) -> list[str]:
    return outcomes.outbox_message_ids(session, "alert", _prefix(settings))


def _state(message_id: str) -> str:
    """Return ``rejected`` or ``restored`` from a login alert's Message-ID."""
    return message_id.partition("@")[0].rpartition(".")[2]


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} 分钟" if seconds % 60 == 0 else f"{seconds} 秒"
