"""service.alerts: one alert per rejected-login failure, kept in the outbox across restarts."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from service.alerts import queue_login_rejected, queue_login_restored
from service.config import load_settings
from store import repository
from store.models import OutboxMail
from store.session import Database
from tests.fixtures.service import config_text

NOW = dt.datetime(2023, 12, 22, 9, 30, tzinfo=dt.timezone.utc)
REPLY = "[AUTHENTICATIONFAILED] Authentication failed."


@pytest.fixture
def settings(tmp_path, database_url):
    path = tmp_path / "config.toml"
    text = config_text(imap_port=1143, imap_user="county@example.test", imap_password="x", smtp_port=1025,
                       database_url=database_url)
    path.write_text('[admin]\nemails = ["admin@example.cn"]\n' + text, encoding="utf-8")
    return load_settings(path)


def rejected(database: Database, settings) -> int | None:
    with database.session() as session:
        return queue_login_rejected(session, settings, NOW, REPLY)


def restored(database: Database, settings) -> int | None:
    with database.session() as session:
        return queue_login_restored(session, settings, NOW)


def outbox(database: Database) -> list:
    with database.session() as session:
        rows = repository.list_outbox(session)
        return [(row.id, row.kind, row.recipient, row.mail_message_id, row.raw) for row in rows]


def test_rejected_queues_alert(database, settings):
    mail_id = rejected(database, settings)
    [(row_id, kind, recipient, _, raw)] = outbox(database)
    assert row_id == mail_id
    assert kind == "alert"
    assert recipient == "admin@example.cn"
    assert email.message_from_bytes(raw, policy=policy.default)["X-Zhoubao-Notice"] == "alert"


def test_rejected_alert_names_mailbox_and_renewal(database, settings):
    rejected(database, settings)
    [(_, _, _, _, raw)] = outbox(database)
    mail = email.message_from_bytes(raw, policy=policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == "系统提示：收信邮箱拒绝登录，请更新授权码"
    assert "county@example.test（服务器 127.0.0.1）" in text
    assert REPLY.rstrip(".") + "。" in text
    assert "“设置”→“POP3/SMTP/IMAP”" in text
    assert "每隔 30 分钟重试一次登录" in text


def test_rejected_twice_queues_once(database, settings):
    rejected(database, settings)
    assert rejected(database, settings) is None
    assert len(outbox(database)) == 1


def test_rejected_after_restart_queues_nothing(database, settings, database_url):
    rejected(database, settings)
    reopened = Database(database_url)
    try:
        assert rejected(reopened, settings) is None
    finally:
        reopened.dispose()
    assert len(outbox(database)) == 1


def test_restored_without_failure_queues_nothing(database, settings):
    assert restored(database, settings) is None
    assert outbox(database) == []


def sent_rejection(database: Database, settings) -> None:
    """Queue the rejection alert and mark it sent, as when SMTP still accepted the login."""
    mail_id = rejected(database, settings)
    with database.session() as session:
        repository.mark_sent(session, session.get(OutboxMail, mail_id), NOW)


def test_restored_after_rejected_queues_notice(database, settings):
    sent_rejection(database, settings)
    restored(database, settings)
    subjects = [email.message_from_bytes(raw, policy=policy.default)["Subject"]
                for *_, raw in outbox(database)]
    assert subjects == ["系统提示：收信邮箱拒绝登录，请更新授权码", "系统提示：收信邮箱已恢复登录"]


def test_restored_once(database, settings):
    sent_rejection(database, settings)
    restored(database, settings)
    assert restored(database, settings) is None
    assert len(outbox(database)) == 2


def test_second_failure_alerts_again(database, settings):
    sent_rejection(database, settings)
    restored(database, settings)
    rejected(database, settings)
    ids = [message_id for _, _, _, message_id, _ in outbox(database)]
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert ids[2].endswith(".2.rejected@example.test>")


def test_other_alerts_do_not_count(database, settings):
    """The LibreOffice alert is also of kind alert, but it must not close or open a login failure."""
    from service.replies import queue_libreoffice_alert

    rejected(database, settings)
    with database.session() as session:
        queue_libreoffice_alert(session, settings, NOW)
    assert rejected(database, settings) is None
    assert restored(database, settings) is not None


def test_restored_withdraws_unsent_rejection(database, settings):
    # GIVEN a rejection alert still waiting (SMTP refused the same expired code)
    rejected(database, settings)

    # WHEN the login works again
    restored(database, settings)

    # THEN only the recovery notice is left to send, so the admin never reads them out of order
    [(_, _, _, message_id, _)] = outbox(database)
    assert message_id.endswith(".1.restored@example.test>")


def test_second_failure_after_withdrawal(database, settings):
    rejected(database, settings)
    restored(database, settings)

    assert rejected(database, settings) is not None
    assert restored(database, settings) is not None
    # Both rejection alerts were withdrawn unsent; each recovery has a Message-ID of its own.
    assert [row[3].split(".")[3:5] for row in outbox(database)] == [["1", "restored@example"],
                                                                   ["2", "restored@example"]]
