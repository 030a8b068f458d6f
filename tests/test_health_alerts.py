"""Intake runs in the database, and the admin's alert and all-clear through the outbox.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest
import sqlalchemy as sa
from alembic import command

from ingest.errors import ConfigError
from service.config import load_settings
from service.intake import mailbox_key
from service.monitor import (
    RUN_RETENTION,
    SECRET_MASK,
    describe_error,
    queue_health_mail,
    run_recorded_intake,
)
from store import health as store
from store import repository
from store.models import IntakeRun, OutboxMail, OutboxStatus
from store.session import Database
from tests.fixtures.service import COUNTY_ADDRESS, config_text
from tests.test_demand import migrate
from tests.test_migrations import fill_up_to, table_counts

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 12, 11, 0, tzinfo=UTC)
ADMINS = ("kexie-admin@example.cn", "jia-laoshi@example.cn")
IMAP_PASSWORD = "imap-secret-7"
CONNECT_ERROR = ("MailboxError: mailbox county@example.test@127.0.0.1:1143/INBOX: connect failed: "
                 "[Errno 111] Connection refused")
LOGIN_ERROR = "AuthenticationFailed: mailbox county@example.test@127.0.0.1:1143/INBOX: login rejected"


def at(minute: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


def write_config(tmp_path, database_url: str, admins: tuple[str, ...] = ADMINS, extra: str = ""):
    path = tmp_path / "config.toml"
    text = config_text(imap_port=1143, imap_user="county@example.test", imap_password=IMAP_PASSWORD,
                       smtp_port=1025, database_url=database_url)
    if admins:
        text += "\n[admin]\nemails = [" + ", ".join(f'"{address}"' for address in admins) + "]\n"
    path.write_text(extra + text, encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path, database_url, database):
    """Settings that poll every 60 s: three failures or three minutes without a run raise an alert."""
    return load_settings(write_config(tmp_path, database_url))


def record(database: Database, settings, minute: float, ok: bool = True, finished: bool = True,
           seen: int = 0, error: str = CONNECT_ERROR) -> int:
    """Record a run that started at ``minute`` and, when finished, took 30 seconds."""
    with database.session() as session:
        run = store.start_run(session, mailbox_key(settings), at(minute))
        if finished:
            store.finish_run(session, run.id, at(minute + 0.5), store.RunCounts(seen, seen, seen, 0),
                             None if ok else error)
        return run.id


def check(database: Database, settings, minute: float) -> int:
    with database.session() as session:
        return queue_health_mail(session, settings, at(minute))


def outbox(database: Database) -> list[OutboxMail]:
    with database.session() as session:
        return repository.list_outbox(session)


def parsed(mail: OutboxMail) -> email.message.EmailMessage:
    return email.message_from_bytes(mail.raw, policy=policy.default)


def failing(database: Database, settings, first_minute: float = 1, count: int = 3,
            error: str = CONNECT_ERROR) -> None:
    """Record a success at minute 0, then ``count`` failures one minute apart."""
    record(database, settings, 0)
    for index in range(count):
        record(database, settings, first_minute + index, ok=False, error=error)


# --- recording runs ----------------------------------------------------------------------------


def test_finished_run_stored(database, settings):
    run_id = record(database, settings, 0, seen=3)

    with database.session() as session:
        run = session.get_one(IntakeRun, run_id)
        assert (run.started_at, run.finished_at) == (at(0), at(0.5))
        assert (run.seen, run.processed, run.moved, run.failed) == (3, 3, 3, 0)
        assert run.ok is True
        assert run.error is None


def test_failed_run_stored(database, settings):
    run_id = record(database, settings, 0, ok=False)

    with database.session() as session:
        run = session.get_one(IntakeRun, run_id)
        assert run.ok is False
        assert run.error == CONNECT_ERROR


def test_started_run_unfinished(database, settings):
    run_id = record(database, settings, 0, finished=False)

    with database.session() as session:
        run = session.get_one(IntakeRun, run_id)
        assert run.finished_at is None
        assert run.ok is False


def test_prune_deletes_old_runs(database, settings):
    old_success = record(database, settings, 0)
    old_failure = record(database, settings, 1, ok=False)
    recent = record(database, settings, 60 * 24 * 61)

    with database.session() as session:
        deleted = store.prune_runs(session, mailbox_key(settings), at(60 * 24 * 61) - RUN_RETENTION)

    assert deleted == 2
    with database.session() as session:
        assert session.get(IntakeRun, old_failure) is None
        assert session.get(IntakeRun, recent) is not None
        assert session.get(IntakeRun, old_success) is None


def test_prune_spares_only_success(database, settings):
    # GIVEN a success two months ago followed only by failures
    success = record(database, settings, 0)
    record(database, settings, 1, ok=False)

    # WHEN runs older than the retention are pruned
    with database.session() as session:
        store.prune_runs(session, mailbox_key(settings), at(60 * 24 * 61) - RUN_RETENTION)

    # THEN that success stays, because it dates the failure episode
    with database.session() as session:
        assert [run.id for run in session.scalars(sa.select(IntakeRun))] == [success]


def test_prune_other_mailbox_untouched(database, settings):
    with database.session() as session:
        other = store.start_run(session, "other@example.cn@imap.example.cn/INBOX", at(0)).id
        store.prune_runs(session, mailbox_key(settings), at(60 * 24 * 90))

    with database.session() as session:
        assert session.get(IntakeRun, other) is not None


def test_runs_since_success(database, settings):
    record(database, settings, 0, ok=False)
    success = record(database, settings, 1)
    failure = record(database, settings, 2, ok=False)

    with database.session() as session:
        runs = store.runs_since_success(session, mailbox_key(settings))

    assert [run.id for run in runs] == [success, failure]


def test_runs_since_success_without_success(database, settings):
    first = record(database, settings, 0, ok=False)
    second = record(database, settings, 1, ok=False)

    with database.session() as session:
        assert [run.id for run in store.runs_since_success(session, mailbox_key(settings))] == [first, second]


def test_runs_until_success(database, settings):
    start = record(database, settings, 0)
    failure = record(database, settings, 1, ok=False)
    success = record(database, settings, 2)
    record(database, settings, 3)

    with database.session() as session:
        runs = store.runs_until_success(session, mailbox_key(settings), start)

    assert [run.id for run in runs] == [failure, success]


def test_outbox_counts(database, settings):
    with database.session() as session:
        for index, status in enumerate((OutboxStatus.PENDING, OutboxStatus.PENDING, OutboxStatus.FAILED)):
            mail = repository.enqueue_mail(session, message=None, kind="receipt", recipient="a@example.cn",
                                           subject="回执", mail_message_id=f"<m{index}@example.cn>",
                                           raw=b"x", now=at(0))
            mail.status = status

    with database.session() as session:
        counts = store.outbox_counts(session)

    assert counts == {OutboxStatus.PENDING: 2, OutboxStatus.SENT: 0, OutboxStatus.FAILED: 1}


def test_error_text_masks_passwords(tmp_path, database):
    url = "postgresql+psycopg://zhoubao:db-secret-9@127.0.0.1:5432/zhoubao"
    settings = load_settings(write_config(tmp_path, url))
    err = RuntimeError(f"login {IMAP_PASSWORD} failed\nfor {url}")

    text = describe_error(err, settings)

    assert IMAP_PASSWORD not in text
    assert "db-secret-9" not in text
    assert text == f"RuntimeError: login {SECRET_MASK} failed for postgresql+psycopg://zhoubao:{SECRET_MASK}@127.0.0.1:5432/zhoubao"


def test_unexpected_error_recorded_and_raised(tmp_path, database_url, database):
    # GIVEN a config whose IMAP password is read from an environment variable that is not set
    text = write_config(tmp_path, database_url).read_text(encoding="utf-8")
    text = text.replace(f'password = "{IMAP_PASSWORD}"', 'password_env = "ZHOUBAO_TEST_UNSET"', 1)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, environ={}, require_secrets=False)

    # WHEN a recorded intake runs
    with pytest.raises(ConfigError):
        run_recorded_intake(settings, database, lambda: at(0))

    # THEN the run is recorded as failed with the config error
    with database.session() as session:
        run = session.scalars(sa.select(IntakeRun)).one()
        assert run.ok is False
        assert run.finished_at == at(0)
        assert run.error.startswith("ConfigError: ")
        assert "ZHOUBAO_TEST_UNSET" in run.error


# --- the alert ---------------------------------------------------------------------------------


def test_no_alert_below_threshold(database, settings):
    failing(database, settings, count=2)

    assert check(database, settings, 3) == 0
    assert outbox(database) == []


def test_no_alert_without_runs(database, settings):
    assert check(database, settings, 0) == 0


def test_alert_for_each_admin(database, settings):
    failing(database, settings)

    assert check(database, settings, 4) == 2
    assert sorted(mail.recipient for mail in outbox(database)) == sorted(ADMINS)


def test_alert_marked_as_alert(database, settings):
    failing(database, settings)
    check(database, settings, 4)

    mail = outbox(database)[0]

    assert mail.kind == "alert"
    assert parsed(mail)["X-Zhoubao-Notice"] == "alert"
    assert parsed(mail)["Subject"].startswith("系统提示：收信已连续失败 3 次")


def test_alert_body_chinese(database, settings):
    failing(database, settings)
    check(database, settings, 4)

    body = parsed(outbox(database)[0]).get_body(("plain",)).get_content()

    assert "自2024年1月12日 19:01（北京时间）起" in body
    assert CONNECT_ERROR in body
    assert "无法连接邮箱服务器" in body


def test_alert_key_names_episode(database, settings):
    failing(database, settings)
    check(database, settings, 4)

    keys = sorted(mail.notice_key for mail in outbox(database))

    assert keys == [f"health-alert; mailbox={mailbox_key(settings)}; after-run=1; to={address}"
                    for address in sorted(ADMINS)]


def test_rejected_login_left_to_login_alert(database, settings):
    # service.alerts mails the admin about a rejected login as soon as it happens.
    failing(database, settings, error=LOGIN_ERROR)

    assert check(database, settings, 4) == 0
    assert check(database, settings, 60) == 0


def test_alert_after_login_turns_to_outage(database, settings):
    failing(database, settings, count=2, error=LOGIN_ERROR)
    record(database, settings, 3, ok=False)

    assert check(database, settings, 4) == 2


def test_quick_failures_wait_an_interval(database, settings):
    # GIVEN three failures within a minute, as intake's back-off retries after a few seconds
    record(database, settings, 0)
    for minute in (1, 1.1, 1.2):
        record(database, settings, minute, ok=False)

    # THEN no alert until they span one poll interval (60 s)
    assert check(database, settings, 1.9) == 0
    assert check(database, settings, 2.0) == 2


def test_alert_once_per_episode(database, settings):
    failing(database, settings)
    check(database, settings, 4)
    record(database, settings, 5, ok=False)

    assert check(database, settings, 6) == 0
    assert len(outbox(database)) == 2


def test_alert_once_across_processes(database, database_url, settings):
    failing(database, settings)
    check(database, settings, 4)

    # A second service process, or the same one after a restart, has its own connections.
    other = Database(database_url)
    try:
        with other.session() as session:
            assert queue_health_mail(session, settings, at(4)) == 0
    finally:
        other.dispose()
    assert len(outbox(database)) == 2


def test_alert_to_county_without_admin(tmp_path, database_url, database):
    settings = load_settings(write_config(tmp_path, database_url, admins=()))
    failing(database, settings)

    check(database, settings, 4)

    assert [mail.recipient for mail in outbox(database)] == [COUNTY_ADDRESS]


def test_alert_threshold_from_config(tmp_path, database_url, database):
    settings = load_settings(write_config(tmp_path, database_url, extra="[service]\nalert_after_failures = 5\n"))
    failing(database, settings, count=4)

    assert check(database, settings, 5) == 0


def test_stale_alert(database, settings):
    # GIVEN a success at minute 0 and no run since, with polls every minute
    record(database, settings, 0)

    # WHEN more than three intervals have passed since it finished
    assert check(database, settings, 3.5) == 0
    assert check(database, settings, 3.6) == 2

    # THEN the subject states the time without a finished run
    assert parsed(outbox(database)[0])["Subject"].startswith("系统提示：已有 3 分钟没有完成收信")


# --- the all-clear -----------------------------------------------------------------------------


def test_recovery_after_alert(database, settings):
    failing(database, settings)
    check(database, settings, 4)
    record(database, settings, 5, seen=2)

    assert check(database, settings, 6) == 2

    recovery = outbox(database)[2:]
    assert {mail.recipient for mail in recovery} == set(ADMINS)
    assert parsed(recovery[0])["Subject"] == "系统提示：收信已恢复正常"
    assert parsed(recovery[0])["X-Zhoubao-Notice"] == "alert"


def test_recovery_counts_failures(database, settings):
    failing(database, settings, count=4)
    check(database, settings, 5)
    record(database, settings, 6, seen=2)
    check(database, settings, 7)

    body = parsed(outbox(database)[-1]).get_body(("plain",)).get_content()

    assert "期间共有 4 轮收信失败" in body
    assert "查看 2 封，处理 2 封" in body


def test_recovery_once(database, settings):
    failing(database, settings)
    check(database, settings, 4)
    record(database, settings, 5)
    check(database, settings, 6)
    record(database, settings, 7)

    assert check(database, settings, 8) == 0
    assert len(outbox(database)) == 4


def test_no_recovery_without_alert(database, settings):
    failing(database, settings, count=2)
    record(database, settings, 3)

    assert check(database, settings, 4) == 0


def test_no_recovery_while_failing(database, settings):
    failing(database, settings, count=4)
    check(database, settings, 5)

    assert check(database, settings, 5) == 0
    assert len(outbox(database)) == 2


def test_new_episode_new_alert(database, settings):
    # GIVEN an alert and its all-clear
    failing(database, settings)
    check(database, settings, 4)
    success = record(database, settings, 5)
    check(database, settings, 6)

    # WHEN intake fails three times again
    for minute in (7, 8, 9):
        record(database, settings, minute, ok=False)

    # THEN a second alert goes out, keyed on the new episode
    assert check(database, settings, 10) == 2
    assert all(f"after-run={success};" in mail.notice_key for mail in outbox(database)[4:])


def test_stale_recovery(database, settings):
    record(database, settings, 0)
    check(database, settings, 10)
    record(database, settings, 11)

    assert check(database, settings, 12) == 2
    assert parsed(outbox(database)[-1])["Subject"] == "系统提示：收信已恢复正常"


# --- migration 0006 ----------------------------------------------------------------------------
# Upgrading to 0006 over data is covered by tests/test_migrations.py with the seed fill_0006.


def test_downgrade_0006_keeps_rows(database_url):
    # GIVEN a database filled at every revision up to 0006
    database = Database(database_url)
    before = fill_up_to(database, "0006")

    # WHEN it is downgraded to 0005
    migrate(database, command.downgrade, "0005")

    # THEN the older tables keep their rows and the runs table is gone
    after = table_counts(database)
    database.dispose()
    assert after == {name: count for name, count in before.items() if name != "intake_runs"}
    assert "intake_runs" not in after
