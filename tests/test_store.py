"""Store tests: migrations, archived messages, submissions and the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from ingest.table import (
    CheckedReport,
    Cell,
    ReportHeader,
    ReportRow,
    RuleId,
    Violation,
    WeeklyTable,
)
from store import repository
from store.models import (
    Base,
    Message,
    MessageOutcome,
    OutboxStatus,
    Submission,
    SubmissionStatus,
    Unit,
)
from store.session import Database, sqlite_url

UTC = dt.timezone.utc
BEIJING = dt.timezone(dt.timedelta(hours=8))
RECEIVED = dt.datetime(2023, 12, 22, 10, 30, tzinfo=BEIJING)
VALID_ROW = {2: 1, 3: 12, 4: 40, 5: 900, 6: 6, 7: 150, 8: 20, 9: 1, 10: 30, 11: 1, 12: 30,
             13: 1, 14: 30, 15: 1, 16: 20, 17: 1, 18: 20, 19: 1, 20: 20}


def make_raw(message_id: str | None = "<a1@example.test>", body: str = "附件二") -> bytes:
    header = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (
        f"{header}From: shuiding_kx@163.com\r\nSubject: 第3周统计表\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def make_report(values: dict[int, int | None], violations: list[Violation] | None = None,
                source: str = "Sheet1") -> CheckedReport:
    cells = {column: Cell(value, f"{source}!R8C{column}") for column, value in values.items()}
    row = ReportRow(index=8, ref=f"{source}!8", cells=cells, remark="水定村")
    header = ReportHeader(unit_text="水定镇", reporter="李明", phone="138****0001",
                          fill_date=dt.date(2023, 12, 22), fill_date_text="2023年12月22日")
    table = WeeklyTable(source=source, header=header, rows=[row])
    return CheckedReport(table=table, values=[dict(values)], violations=violations or [])


R1_VIOLATION = Violation(
    rule=RuleId.R1, row=8, cell="Sheet1!F8", columns=(6, 9, 11, 13, 15, 17, 19),
    found={6: 7, 9: 1}, expected="应等于6，即9+11+13+15+17+19之和",
)


def archive(session, uid: int = 1, uid_validity: int = 100, raw: bytes | None = None,
            message_id: str | None = "<a1@example.test>") -> Message:
    return repository.archive_message(
        session, mailbox="INBOX", uid_validity=uid_validity, uid=uid,
        raw=raw if raw is not None else make_raw(message_id), internal_date=RECEIVED,
        received_at=RECEIVED, message_id_header=message_id, sender="shuiding_kx@163.com",
        subject="第3周统计表",
    )


def submit(session, message, unit, report, *, file_sha256="f" * 64,
           received_at=RECEIVED, week=3):
    return repository.record_submission(
        session, message=message, unit=unit, week=week, late=False, file_name="附件二.xlsx",
        file_sha256=file_sha256, report=report, received_at=received_at,
    )


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def unit(database):
    with database.session() as session:
        return repository.sync_units(session, [("水定镇", ["水定"])])["水定镇"]


# --- schema ------------------------------------------------------------------------------------


def test_upgrade_reaches_head(database):
    assert database.revision() == database.head_revision()


def test_upgrade_twice_keeps_data(database):
    with database.session() as session:
        archive(session)

    database.upgrade()

    with database.session() as session:
        assert count(session, Message) == 1


def test_migration_matches_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_on_empty_database(database_url):
    db = Database(database_url)
    try:
        assert db.revision() is None
        db.upgrade()
        assert db.revision() == db.head_revision()
    finally:
        db.dispose()


def test_sqlite_upgrade_creates_folder(tmp_path):
    path = tmp_path / "data" / "nested" / "zhoubao.sqlite3"
    db = Database(sqlite_url(path))
    try:
        db.upgrade()
    finally:
        db.dispose()
    assert path.is_file()


@pytest.mark.postgres
def test_concurrent_upgrades_postgres(postgres_databases):
    url = postgres_databases.create()
    databases = [Database(url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        try:
            db.upgrade()
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    revisions = [db.revision() for db in databases]
    for db in databases:
        db.dispose()

    assert errors == []
    assert revisions == [databases[0].head_revision()] * 3


# --- messages ----------------------------------------------------------------------------------


def test_message_raw_bytes_kept(database):
    raw = make_raw() + b"\x00\xff\xfe GBK \xcb\xae\xb6\xa8\r\n"
    with database.session() as session:
        message_id = archive(session, raw=raw).id

    with database.session() as session:
        stored = session.get(Message, message_id)
        assert stored.raw == raw
        assert stored.size == len(raw)
        assert stored.sha256 == hashlib.sha256(raw).hexdigest()


def test_message_outcome_starts_pending(database):
    with database.session() as session:
        assert archive(session).outcome is MessageOutcome.PENDING


def test_timestamps_come_back_utc(database):
    with database.session() as session:
        message_id = archive(session).id

    with database.session() as session:
        stored = session.get(Message, message_id)
        assert stored.received_at == RECEIVED
        assert stored.received_at.tzinfo == UTC


def test_naive_timestamp_rejected(database):
    with pytest.raises(StatementError, match="naive datetime"):
        with database.session() as session:
            repository.archive_message(
                session, mailbox="INBOX", uid_validity=1, uid=1, raw=b"x",
                internal_date=None, received_at=dt.datetime(2023, 12, 22, 10, 30),
                message_id_header=None, sender=None, subject=None,
            )


def test_find_message_by_uid(database):
    with database.session() as session:
        message_id = archive(session, uid=7).id

    with database.session() as session:
        assert repository.find_message_by_uid(session, "INBOX", 100, 7).id == message_id
        assert repository.find_message_by_uid(session, "INBOX", 101, 7) is None


def test_find_message_after_uidvalidity_reset(database):
    raw = make_raw()
    with database.session() as session:
        message_id = archive(session, uid=7, uid_validity=100, raw=raw).id

    sha256 = hashlib.sha256(raw).hexdigest()
    with database.session() as session:
        found = repository.find_message_by_content(session, "<a1@example.test>", sha256)
        assert found.id == message_id


def test_same_uid_twice_rejected(database):
    with database.session() as session:
        archive(session, uid=7, raw=make_raw("<a1@example.test>"), message_id="<a1@example.test>")

    with pytest.raises(IntegrityError):
        with database.session() as session:
            archive(session, uid=7, raw=make_raw("<a2@example.test>"),
                    message_id="<a2@example.test>")


def test_second_copy_rejected(database):
    with database.session() as session:
        archive(session, uid=7, uid_validity=100)

    with pytest.raises(IntegrityError):
        with database.session() as session:
            archive(session, uid=1, uid_validity=200)


def test_message_without_message_id(database):
    raw = make_raw(message_id=None)
    with database.session() as session:
        stored = archive(session, raw=raw, message_id=None)
        sha256 = hashlib.sha256(raw).hexdigest()
        assert stored.message_key == f"sha256:{sha256}"
        assert repository.find_message_by_content(session, None, sha256).id == stored.id


def test_long_message_id_key_hashed():
    key = repository.message_key("<" + "x" * 400 + "@example.test>", "0" * 64)
    assert key.startswith("message-id-sha256:")


def test_message_counts(database):
    with database.session() as session:
        first = archive(session, uid=1, message_id="<m1@example.test>",
                        raw=make_raw("<m1@example.test>"))
        archive(session, uid=2, message_id="<m2@example.test>", raw=make_raw("<m2@example.test>"))
        repository.mark_processed(session, first, MessageOutcome.HELD, RECEIVED)

    with database.session() as session:
        counts = repository.message_counts(session)
    assert counts[MessageOutcome.HELD] == 1
    assert counts[MessageOutcome.PENDING] == 1
    assert counts[MessageOutcome.ACCEPTED] == 0


def test_mark_processed_records_error(database):
    with database.session() as session:
        message = archive(session)
        repository.mark_processed(session, message, MessageOutcome.FAILED, RECEIVED, "boom")

    with database.session() as session:
        stored = session.get(Message, message.id)
        assert stored.outcome is MessageOutcome.FAILED
        assert stored.error == "boom"
        assert stored.processed_at == RECEIVED


def test_mark_processed_detached_message(database):
    with database.session() as session:
        message = archive(session)

    with database.session() as session:
        repository.mark_processed(session, message, MessageOutcome.ACCEPTED, RECEIVED)
        repository.mark_moved(session, message, RECEIVED)

    with database.session() as session:
        stored = session.get(Message, message.id)
        assert stored.outcome is MessageOutcome.ACCEPTED
        assert stored.moved_at == RECEIVED


# --- units -------------------------------------------------------------------------------------


def test_sync_units_adds_units(database):
    with database.session() as session:
        repository.sync_units(session, [("水定镇", ["水定"]), ("清水河镇", [])])

    with database.session() as session:
        units = repository.sync_units(session, [])
        assert units == {}
        names = {unit.name for unit in session.scalars(select(Unit))}
    assert names == {"水定镇", "清水河镇"}


def test_sync_units_updates_aliases(database):
    with database.session() as session:
        first_id = repository.sync_units(session, [("水定镇", ["水定"])])["水定镇"].id

    with database.session() as session:
        unit = repository.sync_units(session, [("水定镇", ["水定", "水定镇人民政府"])])["水定镇"]
        assert unit.id == first_id
        assert unit.aliases == ["水定", "水定镇人民政府"]


# --- submissions -------------------------------------------------------------------------------


def test_accepted_submission_stored(database, unit):
    with database.session() as session:
        message = archive(session)
        submission, duplicate = submit(session, message, unit, make_report(VALID_ROW))

    assert duplicate is False
    assert submission.status is SubmissionStatus.ACCEPTED


def test_submission_rows_stored(database, unit):
    with database.session() as session:
        submit(session, archive(session), unit, make_report(VALID_ROW))

    with database.session() as session:
        stored = repository.list_submissions(session)[0]
        assert [row.values() for row in stored.rows] == [VALID_ROW]
        assert stored.rows[0].remark == "水定村"
        assert stored.fill_date == dt.date(2023, 12, 22)


def test_rejected_submission_violations(database, unit):
    report = make_report({**VALID_ROW, 6: 7}, [R1_VIOLATION])
    with database.session() as session:
        submission, _ = submit(session, archive(session), unit, report)

    with database.session() as session:
        stored = session.get(Submission, submission.id)
        assert stored.status is SubmissionStatus.REJECTED
        assert stored.violations[0].rule == "R1"
        assert stored.violations[0].columns == "6,9,11,13,15,17,19"
        assert stored.violations[0].found == {"6": 7, "9": 1}


def test_unreadable_value_stored_as_null(database, unit):
    violation = Violation(rule=RuleId.V1, row=8, cell="Sheet1!E8", columns=(5,),
                          found={5: "九百"}, expected="应为不小于0的整数")
    report = make_report({**VALID_ROW, 5: None}, [violation])
    with database.session() as session:
        submit(session, archive(session), unit, report)

    with database.session() as session:
        stored = repository.list_submissions(session)[0]
        assert stored.rows[0].c5 is None
        assert stored.violations[0].found == {"5": "九百"}


def test_same_file_twice_is_duplicate(database, unit):
    with database.session() as session:
        first, _ = submit(session, archive(session, uid=1), unit, make_report(VALID_ROW))

    with database.session() as session:
        second_mail = archive(session, uid=2, message_id="<a2@example.test>",
                              raw=make_raw("<a2@example.test>"))
        again, duplicate = submit(session, second_mail, unit, make_report(VALID_ROW))

    assert duplicate is True
    assert again.id == first.id
    with database.session() as session:
        assert count(session, Submission) == 1


def test_new_accepted_supersedes_old(database, unit):
    with database.session() as session:
        old, _ = submit(session, archive(session, uid=1), unit, make_report(VALID_ROW),
                        file_sha256="a" * 64)
    with database.session() as session:
        mail = archive(session, uid=2, message_id="<a2@example.test>",
                       raw=make_raw("<a2@example.test>"))
        new, _ = submit(session, mail, unit, make_report(VALID_ROW), file_sha256="b" * 64,
                        received_at=RECEIVED + dt.timedelta(hours=1))

    with database.session() as session:
        stored_old = session.get(Submission, old.id)
        assert stored_old.status is SubmissionStatus.SUPERSEDED
        assert stored_old.superseded_by_id == new.id
        assert session.get(Submission, new.id).status is SubmissionStatus.ACCEPTED


def test_rejected_keeps_accepted(database, unit):
    with database.session() as session:
        old, _ = submit(session, archive(session, uid=1), unit, make_report(VALID_ROW),
                        file_sha256="a" * 64)
        mail = archive(session, uid=2, message_id="<a2@example.test>",
                       raw=make_raw("<a2@example.test>"))
        submit(session, mail, unit, make_report({**VALID_ROW, 6: 7}, [R1_VIOLATION]),
               file_sha256="b" * 64, received_at=RECEIVED + dt.timedelta(hours=1))

    with database.session() as session:
        assert session.get(Submission, old.id).status is SubmissionStatus.ACCEPTED


def test_older_mail_recorded_later_superseded(database, unit):
    with database.session() as session:
        newer, _ = submit(session, archive(session, uid=2), unit, make_report(VALID_ROW),
                          file_sha256="b" * 64, received_at=RECEIVED + dt.timedelta(hours=1))
        mail = archive(session, uid=1, message_id="<a0@example.test>",
                       raw=make_raw("<a0@example.test>"))
        older, _ = submit(session, mail, unit, make_report(VALID_ROW), file_sha256="a" * 64)

    assert older.status is SubmissionStatus.SUPERSEDED
    assert older.superseded_by_id == newer.id
    assert newer.status is SubmissionStatus.ACCEPTED


def test_weeks_kept_apart(database, unit):
    with database.session() as session:
        week3, _ = submit(session, archive(session, uid=1), unit, make_report(VALID_ROW), week=3)
        week4, duplicate = submit(session, week3.message, unit, make_report(VALID_ROW), week=4)

    assert duplicate is False
    assert week3.status is SubmissionStatus.ACCEPTED
    assert week4.status is SubmissionStatus.ACCEPTED


@pytest.mark.postgres
def test_concurrent_accepts_leave_one(database, database_url, unit):
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent writers need PostgreSQL; SQLite allows one writer at a time")
    with database.session() as session:
        mails = [
            archive(session, uid=uid, message_id=f"<c{uid}@example.test>",
                    raw=make_raw(f"<c{uid}@example.test>"))
            for uid in range(4)
        ]
    errors: list[BaseException] = []

    def run(uid: int) -> None:
        try:
            with database.session() as session:
                submit(session, mails[uid], unit, make_report(VALID_ROW),
                       file_sha256=f"{uid}" * 64, received_at=RECEIVED + dt.timedelta(minutes=uid))
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(uid,)) for uid in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with database.session() as session:
        submissions = repository.list_submissions(session)
    accepted = [s.received_at for s in submissions if s.status is SubmissionStatus.ACCEPTED]
    superseded = [s for s in submissions if s.status is SubmissionStatus.SUPERSEDED]
    assert errors == []
    assert accepted == [RECEIVED + dt.timedelta(minutes=3)]
    assert len(superseded) == 3


def test_list_submissions_order(database):
    with database.session() as session:
        units = repository.sync_units(session, [("水定镇", []), ("三道河乡", [])])
        message = archive(session)
        submit(session, message, units["水定镇"], make_report(VALID_ROW), week=4)
        submit(session, message, units["水定镇"], make_report(VALID_ROW), week=3)
        submit(session, message, units["三道河乡"], make_report(VALID_ROW), week=5)

    with database.session() as session:
        listed = [(s.unit.name, s.week) for s in repository.list_submissions(session)]
    assert listed == [("三道河乡", 5), ("水定镇", 3), ("水定镇", 4)]


# --- outbox ------------------------------------------------------------------------------------


def enqueue(session, number: int = 1, now: dt.datetime = RECEIVED):
    raw = f"Message-ID: <r{number}@example.test>\r\nSubject: 回执\r\n\r\n已收到\r\n".encode()
    return repository.enqueue_mail(
        session, message=None, kind="receipt", recipient="shuiding_kx@163.com",
        subject="回执", mail_message_id=f"<r{number}@example.test>", raw=raw, now=now,
    )


def test_enqueued_mail_due_now(database):
    with database.session() as session:
        mail = enqueue(session)

    with database.session() as session:
        due = repository.due_outbox(session, RECEIVED)
        assert [item.id for item in due] == [mail.id]


def test_outbox_raw_kept(database):
    with database.session() as session:
        mail = enqueue(session)

    with database.session() as session:
        stored = repository.due_outbox(session, RECEIVED)[0]
        assert stored.raw == mail.raw
        assert stored.mail_message_id == "<r1@example.test>"


def test_retry_waits_one_minute(database):
    with database.session() as session:
        mail = enqueue(session)
        repository.mark_retry(session, mail, RECEIVED, "421 try later")

    with database.session() as session:
        assert repository.due_outbox(session, RECEIVED + dt.timedelta(seconds=59)) == []
        assert len(repository.due_outbox(session, RECEIVED + dt.timedelta(minutes=1))) == 1


def test_retry_delay_doubles_and_caps():
    delays = [repository.retry_delay(attempts) for attempts in (1, 2, 3, 7, 50)]
    minutes = [delay / dt.timedelta(minutes=1) for delay in delays]
    assert minutes == [1, 2, 4, 60, 60]


def test_retry_keeps_pending(database):
    with database.session() as session:
        mail = enqueue(session)
        for _ in range(10):
            repository.mark_retry(session, mail, RECEIVED, "connection refused")

    assert mail.status is OutboxStatus.PENDING
    assert mail.attempts == 10
    assert mail.next_attempt_at == RECEIVED + dt.timedelta(hours=1)


def test_sent_mail_not_due(database):
    with database.session() as session:
        mail = enqueue(session)
        repository.mark_sent(session, mail, RECEIVED)

    with database.session() as session:
        assert repository.due_outbox(session, RECEIVED + dt.timedelta(days=1)) == []
        assert repository.list_outbox(session)[0].status is OutboxStatus.SENT


def test_failed_mail_not_due(database):
    with database.session() as session:
        mail = enqueue(session)
        repository.mark_failed(session, mail, RECEIVED, "550 no such user")

    with database.session() as session:
        assert repository.due_outbox(session, RECEIVED + dt.timedelta(days=1)) == []
        assert repository.list_outbox(session)[0].last_error == "550 no such user"


def test_due_outbox_limit(database):
    with database.session() as session:
        for number in range(5):
            enqueue(session, number)

    with database.session() as session:
        assert len(repository.due_outbox(session, RECEIVED, limit=3)) == 3


def test_duplicate_outbox_message_id_rejected(database):
    with pytest.raises(IntegrityError):
        with database.session() as session:
            enqueue(session, 1)
            enqueue(session, 1)


def test_due_outbox_skips_locked_rows(database, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks; SKIP LOCKED applies to PostgreSQL only")
    with database.session() as session:
        for number in range(4):
            enqueue(session, number)

    with database.session() as first, database.session() as second:
        claimed_first = repository.due_outbox(first, RECEIVED, limit=2)
        claimed_second = repository.due_outbox(second, RECEIVED, limit=10)

    first_ids = {mail.id for mail in claimed_first}
    second_ids = {mail.id for mail in claimed_second}
    assert len(first_ids) == 2
    assert len(second_ids) == 2
    assert first_ids.isdisjoint(second_ids)
