"""Backfill with ``zhoubao import``: .eml files, an mbox and a Maildir run through the intake's steps.

Each test writes mail files as an admin would save them from a mail client, runs the command
through the CLI and reads the database.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import mailbox
import os
import re
from email import policy

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ingest.mailbox import FetchedMessage
from service.cli import main
from service.config import load_settings
from service.importer import IMPORT_MAILBOX, date_header
from service.intake import archive
from service.runtime import open_database
from service.samples.mails import MailStyle, build_mail
from service.samples.tables import SAMPLE_ROWS, build_docx, build_xlsx
from store import repository
from store.models import Message, MessageOutcome
from store.session import Database
from tests.fixtures.service import config_text

BEIJING = dt.timezone(dt.timedelta(hours=8))
# The backfill runs after the season; lateness follows each mail's Date header, not this.
NOW = "2024-04-01T10:00:00+08:00"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2023, 12, day, hour, minute, tzinfo=BEIJING)


def shuiding_mail(**overrides) -> bytes:
    arguments = dict(sender="shuiding_kx@163.com", subject="水定镇第3周科技之冬周统计表",
                     attachment=build_xlsx([SAMPLE_ROWS["valid"]]), filename="水定镇第3周.xlsx",
                     date=at(22, 16, 42), message_id="<import-1@shuiding.example.test>")
    arguments.update(overrides)
    return build_mail(MailStyle.WEBMAIL_163, **arguments)


def sandaohe_mail() -> bytes:
    return build_mail(MailStyle.FOXMAIL, sender="sandaohe_kx@163.com", subject="三道河乡第3周科技之冬周统计表",
                      attachment=build_xlsx([SAMPLE_ROWS["r1_broken"]], unit="三道河乡"),
                      filename="三道河乡.xlsx", date=at(22, 17, 5))


def qingshuihe_mail() -> bytes:
    return build_mail(MailStyle.THUNDERBIRD, sender="qingshuihe_kx@163.com", subject="清水河镇第3周统计表",
                      attachment=build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇"),
                      filename="清水河镇第3周.docx", date=at(22, 15, 0))


def without_date(raw: bytes) -> bytes:
    return re.sub(rb"^Date: [^\r\n]*\r?\n", b"", raw, count=1, flags=re.MULTILINE)


def write_mbox(path, mails: list[tuple[str, bytes]]) -> None:
    """Write an mbox as mail clients export one: LF line ends, a postmark line, >From quoting."""
    with path.open("wb") as file:
        for postmark, raw in mails:
            file.write(f"From {postmark}\n".encode("ascii"))
            text = raw.replace(b"\r\n", b"\n")
            text = re.sub(rb"^(>*From )", rb">\1", text, flags=re.MULTILINE)
            file.write(text.rstrip(b"\n") + b"\n\n")


@pytest.fixture
def config_path(tmp_path, database_url):
    """A config whose mail servers are never contacted: import only uses the database."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                smtp_port=1025, database_url=database_url), encoding="utf-8")
    return path


@pytest.fixture
def database(config_path, database_url):
    """The configured database, migrated and with its units, as the import command opens it."""
    opened = open_database(load_settings(config_path))
    yield opened
    opened.dispose()


def run_import(config_path, *paths, reply: bool = False):
    arguments = ["--config", str(config_path), "--now", NOW, "import", *map(str, paths)]
    if reply:
        arguments.append("--reply")
    return CliRunner().invoke(main, arguments)


def stored(database: Database) -> dict[str, object]:
    """Return what the import wrote: outcomes, submissions by unit and week, outbox rows."""
    with database.session() as session:
        return {
            "outcomes": {str(k): v for k, v in repository.message_counts(session).items() if v},
            "submissions": sorted((s.unit.name, s.week, str(s.status)) for s in repository.list_submissions(session)),
            "outbox": len(repository.list_outbox(session)),
        }


def messages(database: Database) -> list[Message]:
    with database.session() as session:
        found = list(session.scalars(select(Message).order_by(Message.id)))
        session.expunge_all()
        return found


@pytest.fixture
def eml_files(tmp_path):
    """GIVEN two mails saved as .eml files: a valid table and one breaking rule R1."""
    first = tmp_path / "水定镇.eml"
    first.write_bytes(shuiding_mail())
    second = tmp_path / "三道河乡.eml"
    second.write_bytes(sandaohe_mail())
    return [first, second]


def test_import_eml_stores_submissions(config_path, database, eml_files):
    result = run_import(config_path, *eml_files)
    assert result.exit_code == 0, result.output
    assert stored(database)["submissions"] == [("三道河乡", 3, "rejected"), ("水定镇", 3, "accepted")]


def test_import_eml_summary(config_path, database, eml_files):
    result = run_import(config_path, *eml_files)
    assert "导入完成：共 2 封邮件。" in result.stdout
    assert "新处理 2 封：已通过 1 封，已退回 1 封。" in result.stdout


def test_import_values_as_read(config_path, database, eml_files):
    run_import(config_path, *eml_files)
    with database.session() as session:
        submission = next(s for s in repository.list_submissions(session) if s.unit.name == "水定镇")
        values = tuple(getattr(submission.rows[0], f"c{column}") for column in range(2, 21))
    assert values == SAMPLE_ROWS["valid"]


def test_import_twice_changes_nothing(config_path, database, eml_files):
    run_import(config_path, *eml_files)
    before = stored(database)
    result = run_import(config_path, *eml_files)
    assert result.exit_code == 0, result.output
    assert stored(database) == before


def test_import_twice_summary_known(config_path, database, eml_files):
    run_import(config_path, *eml_files)
    result = run_import(config_path, *eml_files)
    assert "已在数据库中、未作改动 2 封。" in result.stdout
    assert "新处理" not in result.stdout


def test_import_queues_no_reply(config_path, database, eml_files):
    result = run_import(config_path, *eml_files)
    assert stored(database)["outbox"] == 0
    assert "未给发件人回复" in result.stdout


def test_import_reply_flag_queues(config_path, database, eml_files):
    result = run_import(config_path, *eml_files, reply=True)
    assert result.exit_code == 0, result.output
    with database.session() as session:
        kinds = sorted((mail.recipient, mail.kind) for mail in repository.list_outbox(session))
    assert kinds == [("sandaohe_kx@163.com", "rejection"), ("shuiding_kx@163.com", "receipt")]


def test_import_key_and_uid(config_path, database, eml_files):
    run_import(config_path, *eml_files)
    first = messages(database)[0]
    assert (first.mailbox, first.uid_validity) == (IMPORT_MAILBOX, 0)
    assert first.uid == int(hashlib.sha256(eml_files[0].read_bytes()).hexdigest()[:8], 16) % (2**31 - 1) + 1


def test_import_date_header_sets_lateness(config_path, database, tmp_path):
    late = tmp_path / "late.eml"
    late.write_bytes(shuiding_mail(date=at(22, 19, 30)))
    run_import(config_path, late)
    with database.session() as session:
        assert [s.late for s in repository.list_submissions(session)] == [True]


def test_import_internal_date_from_header(config_path, database, eml_files):
    run_import(config_path, eml_files[0])
    assert messages(database)[0].internal_date == at(22, 16, 42)


def test_import_eml_without_date_uses_mtime(config_path, database, tmp_path):
    path = tmp_path / "undated.eml"
    path.write_bytes(without_date(shuiding_mail()))
    os.utime(path, (at(22, 12).timestamp(), at(22, 12).timestamp()))
    run_import(config_path, path)
    assert messages(database)[0].internal_date == at(22, 12)


@pytest.fixture
def mbox_path(tmp_path):
    """GIVEN an mbox export with two tables, an auto-reply and one mail without a Date header."""
    path = tmp_path / "科技之冬.mbox"
    write_mbox(path, [
        ("shuiding_kx@163.com Fri Dec 22 08:42:00 2023", shuiding_mail()),
        ("qingshuihe_kx@163.com Fri Dec 22 07:00:00 2023", qingshuihe_mail()),
        ("huiyuan_kx@163.com Fri Dec 22 09:52:00 2023",
         build_mail(MailStyle.AUTOREPLY, sender="huiyuan_kx@163.com", subject="自动回复: 第3周统计表",
                    date=at(22, 17, 52))),
        ("sandaohe_kx@163.com Fri Dec 22 09:05:00 2023", without_date(sandaohe_mail())),
    ])
    return path


def test_import_mbox_outcomes(config_path, database, mbox_path):
    result = run_import(config_path, mbox_path)
    assert result.exit_code == 0, result.output
    assert stored(database)["outcomes"] == {"accepted": 2, "rejected": 1, "ignored": 1}


def test_import_mbox_postmark_date(config_path, database, mbox_path):
    run_import(config_path, mbox_path)
    undated = next(message for message in messages(database) if message.sender and "sandaohe" in message.sender)
    assert undated.internal_date == dt.datetime(2023, 12, 22, 9, 5, tzinfo=dt.timezone.utc)


def test_import_mbox_twice_changes_nothing(config_path, database, mbox_path):
    run_import(config_path, mbox_path)
    before = stored(database)
    run_import(config_path, mbox_path)
    assert stored(database) == before


def test_import_mbox_body_from_line(config_path, database, tmp_path):
    """A body line starting with "From " is quoted in the mbox and must not split the mail."""
    raw = build_mail(MailStyle.THUNDERBIRD, sender="qingshuihe_kx@163.com", subject="清水河镇第3周统计表",
                     attachment=build_docx([SAMPLE_ROWS["valid"]], unit="清水河镇"), filename="清水河镇.docx",
                     date=at(22, 15, 0), body="From 清水河镇科协：\r\nFrom now on we send on Fridays.\r\n")
    assert b"\nFrom now on" in raw
    path = tmp_path / "quoted.mbox"
    write_mbox(path, [("qingshuihe_kx@163.com Fri Dec 22 07:00:00 2023", raw)])
    run_import(config_path, path)
    assert stored(database)["outcomes"] == {"accepted": 1}


def test_import_maildir(config_path, database, tmp_path):
    store = mailbox.Maildir(tmp_path / "Maildir", create=True)
    store.add(shuiding_mail())
    store.add(qingshuihe_mail())
    store.close()
    result = run_import(config_path, tmp_path / "Maildir")
    assert result.exit_code == 0, result.output
    assert stored(database)["submissions"] == [("水定镇", 3, "accepted"), ("清水河镇", 3, "accepted")]


def test_import_maildir_file_time(config_path, database, tmp_path):
    store = mailbox.Maildir(tmp_path / "Maildir", create=True)
    key = store.add(without_date(shuiding_mail()))
    message = store.get_message(key)
    message.set_date(at(22, 11).timestamp())
    store[key] = message
    store.close()
    run_import(config_path, tmp_path / "Maildir")
    assert messages(database)[0].internal_date == at(22, 11)


def test_import_folder_of_eml(config_path, database, tmp_path):
    folder = tmp_path / "saved" / "第3周"
    folder.mkdir(parents=True)
    (folder / "a.eml").write_bytes(shuiding_mail())
    (folder / "b.EML").write_bytes(qingshuihe_mail())
    (folder / "notes.txt").write_text("not a mail", encoding="utf-8")
    run_import(config_path, tmp_path / "saved")
    assert stored(database)["outcomes"] == {"accepted": 2}


def test_import_missing_path_named(config_path, database, tmp_path):
    result = run_import(config_path, tmp_path / "没有这个.mbox")
    assert result.exit_code == 1
    assert "找不到" in result.stderr
    assert "没有这个.mbox" in result.stderr


def test_import_bad_path_stores_nothing(config_path, database, eml_files, tmp_path):
    run_import(config_path, eml_files[0], tmp_path / "missing.eml")
    assert stored(database)["outcomes"] == {}


def test_import_empty_file_rejected(config_path, database, tmp_path):
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = run_import(config_path, empty)
    assert result.exit_code == 1
    assert "是空的" in result.stderr


def test_import_folder_without_mail(config_path, database, tmp_path):
    (tmp_path / "docs").mkdir()
    result = run_import(config_path, tmp_path / "docs")
    assert result.exit_code == 1
    assert "没有 .eml 邮件文件" in result.stderr


def test_import_leaves_intake_record(config_path, database, eml_files):
    """GIVEN a mail the intake already fetched from IMAP WHEN its saved copy is imported."""
    raw = eml_files[0].read_bytes()
    archive(database, "county@127.0.0.1/INBOX", 41, FetchedMessage(7, raw, at(22, 16, 42), len(raw)),
            lambda: at(22, 16, 43))

    result = run_import(config_path, eml_files[0])

    assert "已在数据库中、未作改动 1 封。" in result.stdout
    assert [(m.mailbox, m.uid) for m in messages(database)] == [("county@127.0.0.1/INBOX", 7)]


def test_import_resumes_pending(config_path, database, eml_files):
    """GIVEN an import interrupted after archiving WHEN the same file is imported again."""
    raw = eml_files[0].read_bytes()
    archive(database, IMPORT_MAILBOX, 0, FetchedMessage(5, raw, at(22, 16, 42), len(raw)), lambda: at(22, 16, 43))

    run_import(config_path, eml_files[0])

    assert stored(database)["outcomes"] == {"accepted": 1}


def test_import_uid_taken_moves_on(config_path, database, eml_files):
    raw = eml_files[0].read_bytes()
    derived = int(hashlib.sha256(raw).hexdigest()[:8], 16) % (2**31 - 1) + 1
    other = eml_files[1].read_bytes()
    archive(database, IMPORT_MAILBOX, 0, FetchedMessage(derived, other, at(22, 17), len(other)),
            lambda: at(22, 17))

    run_import(config_path, eml_files[0])

    assert [m.uid for m in messages(database)] == [derived, derived + 1]


@pytest.fixture
def oversized(tmp_path, config_path):
    """GIVEN a limit of 1 MB and a saved mail of about 1.4 MB with a photo instead of the table."""
    with config_path.open("a", encoding="utf-8") as config:
        config.write("\n[limits]\nmax_message_mb = 1\n")
    path = tmp_path / "large.eml"
    path.write_bytes(shuiding_mail(attachment=b"\xff\xd8\xff\xe0" + os.urandom(1024 * 1024), filename="照片.jpg"))
    return path


def test_import_oversized_unreadable(config_path, database, oversized):
    result = run_import(config_path, oversized)
    assert result.exit_code == 0, result.output
    assert stored(database)["outcomes"] == {"unreadable": 1}


def test_import_oversized_keeps_header(config_path, database, oversized):
    run_import(config_path, oversized)
    with database.session() as session:
        raw, size = session.execute(select(Message.raw, Message.size)).one()
    assert raw.endswith(b"\r\n\r\n")
    assert b"Content-Transfer-Encoding: base64" not in raw
    assert size == oversized.stat().st_size


def test_import_oversized_reply_names_limit(config_path, database, oversized):
    run_import(config_path, oversized, reply=True)
    with database.session() as session:
        outbox = repository.list_outbox(session)
        text = email.message_from_bytes(outbox[0].raw, policy=policy.default).get_body(("plain",)).get_content()
    assert "超过本系统可接收的 1 MB 上限" in text


@pytest.mark.parametrize(("header", "expected"), [
    ("Fri, 22 Dec 2023 16:42:00 +0800", dt.datetime(2023, 12, 22, 16, 42, tzinfo=BEIJING)),
    ("Fri, 22 Dec 2023 08:42:00 -0000", dt.datetime(2023, 12, 22, 8, 42, tzinfo=dt.timezone.utc)),
    ("星期五, 22 十二月 2023", None),
])
def test_date_header_parsed(header, expected):
    raw = f"From: a@example.test\r\nDate: {header}\r\n\r\nbody\r\n".encode("utf-8")
    assert date_header(raw) == expected


def test_date_header_missing():
    assert date_header(b"From: a@example.test\r\n\r\nbody\r\n") is None
