"""``zhoubao backup``: a SQLite copy taken while another connection writes, and a pg_dump of
PostgreSQL restored with psql into a fresh database, each opened again with zhoubao and compared."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner

from service.cli import main
from store import repository
from store.session import Database, sqlite_url
from tests.fixtures.service import config_text
from tests.test_demand import migrate
from tests.test_store import R1_VIOLATION, VALID_ROW, archive, make_report, submit

NOW = "2024-03-20T09:30:00+08:00"
# The writer thread stops by itself after this many transactions if the test never stops it.
MAX_WRITES = 2000


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def write_config(folder: Path, database_url: str, name: str = "config.toml") -> Path:
    """Write a config for ``database_url``; its mail servers are never contacted."""
    path = folder / name
    path.write_text(config_text(imap_port=1143, imap_user="county@example.test", imap_password="x",
                                smtp_port=1025, database_url=database_url), encoding="utf-8")
    return path


def submissions_json(config: Path) -> list[dict]:
    result = invoke("--config", str(config), "submissions", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def add_submission(database: Database, uid: int) -> None:
    """Store one mail with a rejected report (a row and a violation) in one transaction."""
    with database.session() as session:
        unit = repository.sync_units(session, [("水定镇", [])])["水定镇"]
        message = archive(session, uid=uid, message_id=f"<backup-{uid}@example.test>")
        submit(session, message, unit, make_report(VALID_ROW, [R1_VIOLATION]),
               file_sha256=f"{uid:064x}", week=1 + uid % 15)


@pytest.fixture
def sqlite_setup(tmp_path):
    """A migrated SQLite database with three submissions and a config that points at it."""
    url = sqlite_url(tmp_path / "data" / "zhoubao.sqlite3")
    database = Database(url)
    database.upgrade()
    for uid in (1, 2, 3):
        add_submission(database, uid)
    yield write_config(tmp_path, url), database
    database.dispose()


# --- SQLite ------------------------------------------------------------------------------------


def test_backup_sqlite_copy_matches(sqlite_setup, tmp_path):
    config, _ = sqlite_setup
    target = tmp_path / "backup.sqlite3"

    result = invoke("--config", str(config), "backup", str(target))

    assert result.exit_code == 0, result.output
    assert f"备份到 {target}" in result.stdout
    assert "完整性检查通过" in result.stdout
    copy_config = write_config(tmp_path, sqlite_url(target), "copy.toml")
    assert len(submissions_json(copy_config)) == 3
    assert submissions_json(copy_config) == submissions_json(config)


def test_backup_sqlite_includes_wal_not_open_write(sqlite_setup, tmp_path):
    # GIVEN committed submissions still in the WAL and a write transaction left open
    config, database = sqlite_setup
    source = Path(database.url.database)
    assert Path(f"{source}-wal").stat().st_size > 0
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM violations")

    # WHEN the backup runs while that transaction is open
    target = tmp_path / "backup.sqlite3"
    result = invoke("--config", str(config), "backup", str(target))
    writer.execute("COMMIT")
    writer.close()

    # THEN the copy has the committed rows and none of the uncommitted change
    assert result.exit_code == 0, result.output
    copy = submissions_json(write_config(tmp_path, sqlite_url(target), "copy.toml"))
    assert [item["rules"] for item in copy] == [["R1"]] * 3
    assert [item["rules"] for item in submissions_json(config)] == [[]] * 3


def test_backup_sqlite_during_writes(sqlite_setup, tmp_path):
    # GIVEN a thread that keeps adding submissions, one transaction each
    config, database = sqlite_setup
    stop = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        writer = Database(database.url.render_as_string(hide_password=False))
        try:
            for uid in range(4, 4 + MAX_WRITES):
                if stop.is_set():
                    break
                add_submission(writer, uid)
                if uid == 8:
                    started.set()
        except BaseException as err:  # reported by the assert below
            errors.append(err)
        finally:
            started.set()
            writer.dispose()

    thread = threading.Thread(target=write)
    thread.start()
    started.wait()

    # WHEN the backup runs while it writes
    target = tmp_path / "backup.sqlite3"
    try:
        result = invoke("--config", str(config), "backup", str(target))
    finally:
        stop.set()
        thread.join()

    # THEN the copy contains whole submissions, the earliest ones, exactly as the source has them
    assert errors == []
    assert result.exit_code == 0, result.output
    copy = submissions_json(write_config(tmp_path, sqlite_url(target), "copy.toml"))
    original = {item["id"]: item for item in submissions_json(config)}
    copied_ids = sorted(item["id"] for item in copy)
    assert len(copied_ids) >= 8
    assert copied_ids == list(range(1, len(copied_ids) + 1))
    for item in copy:
        assert item == original[item["id"]]


def test_backup_sqlite_into_folder_named_by_time(sqlite_setup, tmp_path):
    config, _ = sqlite_setup
    folder = tmp_path / "backups"
    folder.mkdir()

    result = invoke("--config", str(config), "--now", NOW, "backup", str(folder))

    assert result.exit_code == 0, result.output
    assert [path.name for path in folder.iterdir()] == ["zhoubao-20240320-093000.sqlite3"]


def test_backup_sqlite_copy_private(sqlite_setup, tmp_path):
    config, _ = sqlite_setup
    target = tmp_path / "backup.sqlite3"

    invoke("--config", str(config), "backup", str(target))

    assert target.stat().st_mode & 0o077 == 0


def test_backup_sqlite_existing_target_kept(sqlite_setup, tmp_path):
    config, _ = sqlite_setup
    target = tmp_path / "backup.sqlite3"
    target.write_bytes(b"older backup")

    result = invoke("--config", str(config), "backup", str(target))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"错误：备份文件 {target} 已存在")
    assert target.read_bytes() == b"older backup"


def test_backup_sqlite_missing_folder(sqlite_setup, tmp_path):
    config, _ = sqlite_setup

    result = invoke("--config", str(config), "backup", str(tmp_path / "none" / "backup.sqlite3"))

    assert result.exit_code == 1
    assert "不存在：请先创建它" in result.stderr


def test_backup_sqlite_missing_database(tmp_path):
    config = write_config(tmp_path, sqlite_url(tmp_path / "none.sqlite3"))

    result = invoke("--config", str(config), "backup", str(tmp_path / "backup.sqlite3"))

    assert result.exit_code == 1
    assert "none.sqlite3 不存在" in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()
    assert not (tmp_path / "backup.sqlite3").exists()


def test_backup_sqlite_no_partial_left(sqlite_setup, tmp_path):
    config, _ = sqlite_setup
    folder = tmp_path / "backups"
    folder.mkdir()

    invoke("--config", str(config), "backup", str(folder / "a.sqlite3"))

    assert [path.name for path in folder.iterdir()] == ["a.sqlite3"]


def test_backup_keeps_old_revision(tmp_path):
    # GIVEN a database at revision 0002, before the newest migration
    url = sqlite_url(tmp_path / "zhoubao.sqlite3")
    database = Database(url)
    migrate(database, command.upgrade, "0002")
    database.dispose()
    config = write_config(tmp_path, url)

    # WHEN it is backed up
    result = invoke("--config", str(config), "backup", str(tmp_path / "backup.sqlite3"))

    # THEN neither the database nor the copy was migrated
    assert result.exit_code == 0, result.output
    assert "数据库版本 0002" in result.stdout
    database = Database(url)
    try:
        assert database.revision() == "0002"
    finally:
        database.dispose()


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def postgres_client() -> None:
    """Skip without pg_dump and psql, except under CI, whose .ci/run installs them."""
    if shutil.which("pg_dump") and shutil.which("psql"):
        return
    if os.environ.get("CI"):
        pytest.fail("pg_dump or psql not found on PATH")
    pytest.skip("pg_dump or psql not found on PATH")


@pytest.fixture
def postgres_setup(postgres_databases, postgres_client, tmp_path):
    """Create a PostgreSQL database with three submissions and a config that points at it.

    The config's URL has a password, which trust authentication ignores, so that a test can
    check that the password is never shown."""
    url = postgres_databases.create()
    database = Database(url)
    database.upgrade()
    for uid in (1, 2, 3):
        add_submission(database, uid)
    database.dispose()
    with_password = url.replace("postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:dbsecret42@")
    return write_config(tmp_path, with_password), postgres_databases


def restore(dump: Path, databases) -> Path:
    """Restore ``dump`` with psql into a new database; return a config for that database."""
    url = databases.create()
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run(["psql", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
                    f"--dbname={libpq}", f"--file={dump}"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return write_config(dump.parent, url, "restored.toml")


def printed_pg_dump(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if line.startswith("pg_dump ")]
    assert len(lines) == 1, output
    return shlex.split(lines[0])


@pytest.mark.postgres
def test_backup_postgres_prints_command(postgres_setup, tmp_path):
    config, _ = postgres_setup
    target = tmp_path / "backup.sql"

    result = invoke("--config", str(config), "backup", str(target))

    assert result.exit_code == 0, result.output
    assert f"--file={target}" in printed_pg_dump(result.stdout)
    assert "dbsecret42" not in result.output
    assert not target.exists()


@pytest.mark.postgres
def test_backup_postgres_printed_command_restores(postgres_setup, tmp_path):
    # GIVEN the pg_dump command that zhoubao prints for the configured database
    config, databases = postgres_setup
    target = tmp_path / "backup.sql"
    result = invoke("--config", str(config), "backup", str(target))
    assert result.exit_code == 0, result.output

    # WHEN the admin runs it and restores the dump into a fresh database
    subprocess.run(printed_pg_dump(result.stdout), check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    restored = restore(target, databases)

    # THEN zhoubao lists the same submissions from the restored database
    assert len(submissions_json(restored)) == 3
    assert submissions_json(restored) == submissions_json(config)


@pytest.mark.postgres
def test_backup_postgres_run_pg_dump_restores(postgres_setup, tmp_path):
    config, databases = postgres_setup
    target = tmp_path / "backup.sql"

    result = invoke("--config", str(config), "backup", "--run-pg-dump", str(target))

    assert result.exit_code == 0, result.output
    assert f"已用 pg_dump 把数据库备份到 {target}" in result.stdout
    assert submissions_json(restore(target, databases)) == submissions_json(config)


@pytest.mark.postgres
def test_backup_postgres_without_pg_dump(postgres_setup, tmp_path, monkeypatch):
    config, _ = postgres_setup
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    result = invoke("--config", str(config), "backup", "--run-pg-dump", str(tmp_path / "backup.sql"))

    assert result.exit_code == 1
    assert "找不到 pg_dump 命令" in result.stderr


@pytest.mark.postgres
def test_backup_postgres_failed_dump_leaves_nothing(postgres_databases, postgres_client, tmp_path):
    # GIVEN a config naming a database that does not exist on the server
    url = postgres_databases.create()
    missing = url.rsplit("/", 1)[0] + "/zhoubao_missing_database"
    config = write_config(tmp_path, missing)
    folder = tmp_path / "backups"
    folder.mkdir()

    # WHEN pg_dump is run against it
    result = invoke("--config", str(config), "backup", "--run-pg-dump", str(folder / "backup.sql"))

    # THEN the error from pg_dump is shown and no file is left behind
    assert result.exit_code == 1
    assert "pg_dump 运行失败" in result.stderr
    assert "zhoubao_missing_database" in result.stderr
    assert list(folder.iterdir()) == []

