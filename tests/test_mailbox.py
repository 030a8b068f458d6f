"""ingest.mailbox against a private Dovecot on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from ingest.errors import AuthenticationFailed, ConfigError, MailboxError
from ingest.mailbox import Mailbox, MessageNotFound

pytestmark = pytest.mark.dovecot

PROCESSED = "已处理"
PROCESSED_WIRE = b"&XfJZBHQG-"  # modified UTF-7 (RFC 3501 section 5.1.3)


def make_raw(subject: str = "霍城县科技之冬周统计表 水定镇") -> bytes:
    message = EmailMessage()
    message["From"] = "shuiding_kx@example.test"
    message["To"] = "county@example.test"
    message["Subject"] = subject
    message["Message-ID"] = "<week3.shuiding@example.test>"
    message.set_content("附件为本周统计表，请查收。")
    return message.as_bytes().replace(b"\n", b"\r\n")


def open_box(account, security: str = "none", **options) -> Mailbox:
    ports = {"none": account.port, "starttls": account.port, "ssl": account.imaps_port}
    return Mailbox(account.host, ports[security], security, account.username,
                   account.password, **options)


def sent_commands(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name.startswith("imapclient")]


def last_login_line(dovecot) -> str:
    return [line for line in dovecot.log_text().splitlines() if "Login: user=" in line][-1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections but never sends a greeting."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    connections: list[socket.socket] = []

    def accept() -> None:
        try:
            connections.append(listener.accept()[0])
        except OSError:
            return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(timeout=2)
    for connection in connections:
        connection.close()


def test_plaintext_lists_uids(imap_account):
    first = imap_account.append(make_raw("第一封"))
    second = imap_account.append(make_raw("第二封"))

    with open_box(imap_account) as box:
        uids = box.list_uids()

    assert uids == [first, second]


def test_imaps_with_trusted_ca(imap_account):
    uid = imap_account.append(make_raw())

    with open_box(imap_account, "ssl", ssl_context=imap_account.ssl_context()) as box:
        uids = box.list_uids()

    assert uids == [uid]


def test_imaps_rejects_untrusted_cert(imap_account):
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        with open_box(imap_account, "ssl"):
            pass


def test_starttls_upgrades_session(imap_account, dovecot):
    with open_box(imap_account, "starttls", ssl_context=imap_account.ssl_context()):
        pass

    # Dovecot marks a session that ran STARTTLS with "TLS" in its login line.
    assert ", TLS," in last_login_line(dovecot)


def test_starttls_rejects_untrusted_cert(imap_account):
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        with open_box(imap_account, "starttls"):
            pass


def test_plaintext_refused_off_loopback():
    with pytest.raises(ConfigError, match="只能用于本机"):
        Mailbox("imap.example.test", 143, "none", "county@example.test", "secret")


def test_unknown_security_refused():
    with pytest.raises(ConfigError, match="tls"):
        Mailbox("127.0.0.1", 143, "tls", "county@example.test", "secret")


def test_processed_same_as_folder_refused():
    with pytest.raises(ConfigError, match="processed_folder"):
        Mailbox("127.0.0.1", 143, "none", "county@example.test", "secret",
                folder="INBOX", processed_folder="INBOX")


def test_wrong_password_fails_login(imap_account):
    box = Mailbox(imap_account.host, imap_account.port, "none", imap_account.username, "wrong")

    with pytest.raises(AuthenticationFailed):
        with box:
            pass


def test_wrong_password_keeps_server_reply(imap_account):
    box = Mailbox(imap_account.host, imap_account.port, "none", imap_account.username, "wrong")

    with pytest.raises(AuthenticationFailed) as caught:
        box.open()
    assert caught.value.reply == "[AUTHENTICATIONFAILED] Authentication failed."
    assert "login rejected: [AUTHENTICATIONFAILED]" in str(caught.value)


def test_id_sent_after_login(imap_account, dovecot):
    with open_box(imap_account):
        pass

    # imap_id_log = * makes Dovecot log the client's ID parameters.
    assert "name=zhoubao" in dovecot.log_text()


def test_uid_validity_matches_server(imap_account):
    with open_box(imap_account) as box:
        uid_validity = box.uid_validity

    assert uid_validity == imap_account.uid_validity()


def test_processed_folder_created(imap_account):
    with open_box(imap_account):
        pass

    assert PROCESSED in imap_account.folders()


def test_processed_folder_wire_name(imap_account):
    with open_box(imap_account):
        pass

    with imap_account.server.connect() as client:
        client.folder_encode = False
        names = [name for _flags, _separator, name in client.list_folders()]

    assert PROCESSED_WIRE in names


def test_processed_folder_subscribed(imap_account):
    with open_box(imap_account):
        pass

    with imap_account.server.connect() as client:
        subscribed = [name for _flags, _separator, name in client.list_sub_folders()]

    assert PROCESSED in subscribed


def test_existing_processed_folder_kept(imap_account):
    kept = imap_account.append(make_raw("上周的"), folder=PROCESSED)

    with open_box(imap_account):
        pass

    assert imap_account.uids(PROCESSED) == [kept]


def test_fetch_returns_raw_bytes(imap_account):
    raw = make_raw()
    uid = imap_account.append(raw)

    with open_box(imap_account) as box:
        fetched = box.fetch(uid)

    assert fetched.raw == raw


def test_fetch_returns_size(imap_account):
    raw = make_raw()
    uid = imap_account.append(raw)

    with open_box(imap_account) as box:
        fetched = box.fetch(uid)

    assert fetched.size == len(raw)


def test_fetch_internal_date_in_utc(imap_account):
    received = dt.datetime(2023, 12, 22, 17, 45, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    uid = imap_account.append(make_raw(), internal_date=received)

    with open_box(imap_account) as box:
        fetched = box.fetch(uid)

    assert fetched.internal_date == received
    assert fetched.internal_date.utcoffset() == dt.timedelta(0)


def test_fetch_leaves_message_unseen(imap_account):
    uid = imap_account.append(make_raw())

    with open_box(imap_account) as box:
        box.fetch(uid)

    assert b"\\Seen" not in imap_account.flags()[uid]


def test_fetch_missing_uid(imap_account):
    uid = imap_account.append(make_raw())

    with open_box(imap_account) as box:
        with pytest.raises(MessageNotFound):
            box.fetch(uid + 1)


def test_fetch_sizes(imap_account):
    short, long = make_raw("短"), make_raw("长" * 300)
    first = imap_account.append(short)
    second = imap_account.append(long)

    with open_box(imap_account) as box:
        sizes = box.fetch_sizes([second, first, second + 5])

    assert sizes == {first: len(short), second: len(long)}


def test_list_skips_deleted_flag(imap_account):
    kept = imap_account.append(make_raw("保留"))
    flagged = imap_account.append(make_raw("已标删除"))
    with imap_account.server.connect() as client:
        client.select_folder("INBOX")
        client.delete_messages([flagged])

    with open_box(imap_account) as box:
        uids = box.list_uids()

    assert uids == [kept]


def test_move_uses_move_command(imap_account, caplog):
    uid = imap_account.append(make_raw())
    caplog.set_level(logging.DEBUG, logger="imapclient")

    with open_box(imap_account) as box:
        box.move_to_processed(uid)

    assert any("UID MOVE" in line for line in sent_commands(caplog))


def test_move_empties_inbox(imap_account):
    uid = imap_account.append(make_raw())

    with open_box(imap_account) as box:
        box.move_to_processed(uid)

    assert imap_account.uids() == []


def test_move_fills_processed(imap_account):
    raw = make_raw()
    uid = imap_account.append(raw)

    with open_box(imap_account) as box:
        box.move_to_processed(uid)

    assert imap_account.fetch_raw(PROCESSED) == [raw]


def test_copy_path_avoids_move(imap_account, caplog):
    uid = imap_account.append(make_raw())
    caplog.set_level(logging.DEBUG, logger="imapclient")

    with open_box(imap_account, use_move=False) as box:
        box.move_to_processed(uid)

    commands = sent_commands(caplog)
    assert not any("UID MOVE" in line for line in commands)
    assert any("UID COPY" in line for line in commands)
    assert any("UID EXPUNGE" in line for line in commands)


def test_copy_path_moves_message(imap_account):
    raw = make_raw()
    uid = imap_account.append(raw)

    with open_box(imap_account, use_move=False) as box:
        box.move_to_processed(uid)

    assert imap_account.uids() == []
    assert imap_account.fetch_raw(PROCESSED) == [raw]


def test_copy_path_keeps_others_deleted(imap_account):
    # GIVEN a message that a mail client flagged \Deleted but did not expunge
    other = imap_account.append(make_raw("别人标记删除"))
    uid = imap_account.append(make_raw())
    with imap_account.server.connect() as client:
        client.select_folder("INBOX")
        client.delete_messages([other])

    # WHEN the COPY path moves our message
    with open_box(imap_account, use_move=False) as box:
        box.move_to_processed(uid)

    # THEN UID EXPUNGE removed only our message
    assert imap_account.uids() == [other]


def test_move_into_chinese_folder_name(imap_account):
    uid = imap_account.append(make_raw())

    with open_box(imap_account, processed_folder="报表/2023-2024") as box:
        box.move_to_processed(uid)

    assert len(imap_account.uids("报表/2023-2024")) == 1


def test_other_folder_selected(imap_account):
    uid = imap_account.append(make_raw(), folder="报送")

    with open_box(imap_account, folder="报送") as box:
        uids = box.list_uids()

    assert uids == [uid]


def test_missing_folder_fails(imap_account):
    with pytest.raises(MailboxError, match="SELECT 不存在"):
        with open_box(imap_account, folder="不存在"):
            pass


def test_use_without_open_fails():
    box = Mailbox("127.0.0.1", 143, "none", "county@example.test", "secret")

    with pytest.raises(MailboxError, match="not connected"):
        box.list_uids()


def test_server_down_fails_connect(imap_account, dovecot):
    dovecot.stop()

    with pytest.raises(MailboxError, match="connect failed"):
        with open_box(imap_account):
            pass


def test_server_stop_mid_session(imap_account, dovecot):
    uid = imap_account.append(make_raw())

    with pytest.raises(MailboxError):
        with open_box(imap_account) as box:
            dovecot.stop()
            box.fetch(uid)


def test_silent_server_times_out(silent_server):
    box = Mailbox("127.0.0.1", silent_server, "none", "county@example.test", "secret",
                  timeout=0.3)
    started = time.monotonic()

    with pytest.raises(MailboxError, match="timed out"):
        with box:
            pass

    assert time.monotonic() - started < 5


def test_closed_mailbox_refuses_commands(imap_account):
    box = open_box(imap_account)
    box.open()
    box.close()
    box.close()

    with pytest.raises(MailboxError, match="not connected"):
        box.list_uids()


def test_moved_message_stays_unseen(imap_account):
    # County staff who open 已处理 still see which messages nobody has read.
    uid = imap_account.append(make_raw())

    with open_box(imap_account) as box:
        box.fetch(uid)
        box.move_to_processed(uid)

    flags = list(imap_account.flags(PROCESSED).values())
    assert b"\\Seen" not in flags[0]


# --- IDLE (RFC 2177) ---------------------------------------------------------------------------


def test_idle_offered_by_dovecot(imap_account):
    with open_box(imap_account, readonly=True) as box:
        assert box.supports_idle()


def test_readonly_leaves_processed_folder_alone(imap_account):
    with open_box(imap_account, readonly=True):
        pass
    assert imap_account.folders() == ["INBOX"]


def test_idle_wait_quiet_folder(imap_account):
    with open_box(imap_account, readonly=True) as box:
        box.idle_start()
        assert box.idle_wait(0.2) is False
        assert box.idle_end() is False


def test_idle_wait_reports_appended_mail(imap_account):
    with open_box(imap_account, readonly=True) as box:
        box.idle_start()
        imap_account.append(make_raw())
        reported = any(box.idle_wait(1.0) for _ in range(10))
        box.idle_end()
    assert reported


def test_idle_end_then_commands_work(imap_account):
    imap_account.append(make_raw())
    with open_box(imap_account, readonly=True) as box:
        box.idle_start()
        box.idle_end()
        assert len(box.list_uids()) == 1


def test_idle_wait_raises_when_server_dies(imap_account, dovecot):
    box = open_box(imap_account, readonly=True)
    box.open()
    try:
        box.idle_start()
        dovecot.stop()
        with pytest.raises(MailboxError, match="IDLE failed"):
            for _ in range(10):
                box.idle_wait(1.0)
    finally:
        box.close()
        dovecot.start()
