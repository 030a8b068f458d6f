"""Consistent copies of the database, taken while the service may be writing to it.

A SQLite database is copied with SQLite's online backup API, which reads the whole database in
one read transaction, the WAL included. So the copy contains every committed transaction and no
part of an uncommitted one. A PostgreSQL database is copied by pg_dump, which also reads one snapshot;
this module composes its command line and can run it.

Neither path migrates the database, so a backup taken before an upgrade keeps the old revision.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from ingest.errors import StoreError

# Seconds the backup waits for a locked database. In WAL mode a writer blocks a reader only briefly.
SQLITE_BUSY_TIMEOUT = 30


class BackupError(StoreError):
    """A backup could not be made. ``reason`` is the Chinese sentence for the admin."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SqliteCopy:
    """A finished SQLite backup: where it is, its size in bytes and its schema revision."""

    path: Path
    size: int
    revision: str | None


def backup_target(path: Path, stamp: str, suffix: str) -> Path:
    """Return the backup file for ``path``: the path itself, or a stamped file inside a folder."""
    if path.is_dir():
        return path / f"zhoubao-{stamp}{suffix}"
    return path


def backup_sqlite(url: URL, target: Path) -> SqliteCopy:
    """Copy the SQLite database of ``url`` to ``target``, which must not exist yet.

    The copy is written to a hidden file beside ``target``, checked with PRAGMA integrity_check
    and only then linked to its name, so an interrupted backup leaves no file that looks whole.
    The copy uses the rollback journal, so it is one self-contained file.
    """
    source = _sqlite_source(url)
    _check_target(target)

    with _partial_file(target) as partial:
        _copy_sqlite(source, partial)
        revision = _check_copy(partial)
        _publish(partial, target)
    return SqliteCopy(target, target.stat().st_size, revision)


def _sqlite_source(url: URL) -> Path:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"database {database!r} is not a file",
                          f"数据库地址 {database or '（空）'} 不是 SQLite 数据库文件，无法备份。")
    source = Path(database)
    if not source.is_file():
        raise BackupError(f"database file {source} not found",
                          f"数据库文件 {source} 不存在：请检查配置文件 [database] url 和 [service] data_dir。")
    return source


def _check_target(target: Path) -> None:
    if target.exists():
        raise BackupError(f"backup target {target} exists",
                          f"备份文件 {target} 已存在：请换一个文件名，或给出文件夹，由 zhoubao 按时间命名。")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} not found",
                          f"文件夹 {target.parent} 不存在：请先创建它，或换一个位置。")


@contextlib.contextmanager
def _partial_file(target: Path) -> Iterator[Path]:
    """Yield a new hidden file beside ``target``, removed again when the block ends."""
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as err:
        raise BackupError(f"cannot write in {target.parent}: {err}",
                          f"无法在文件夹 {target.parent} 中写入文件（{err.strerror}）：请检查权限和剩余空间。") from err
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def _copy_sqlite(source: Path, partial: Path) -> None:
    # mode=ro: the backup never writes to the live database, nor creates one at a wrong path.
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True,
                             timeout=SQLITE_BUSY_TIMEOUT)
    try:
        writer = sqlite3.connect(partial)
        try:
            # pages=-1 copies every page in one step, so the copy is one snapshot of the source.
            reader.backup(writer, pages=-1)
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
    except sqlite3.Error as err:
        raise BackupError(f"sqlite backup of {source} failed: {err}",
                          f"备份数据库 {source} 失败：{err}。请检查文件权限和剩余空间后重试。") from err
    finally:
        reader.close()


def _check_copy(partial: Path) -> str | None:
    """Run PRAGMA integrity_check on the copy and return its Alembic revision."""
    connection = sqlite3.connect(partial)
    try:
        result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise BackupError(f"copy failed integrity_check: {result}",
                              f"备份副本未通过完整性检查（{result}），请重新备份。")
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None
    finally:
        connection.close()


def _publish(partial: Path, target: Path) -> None:
    """Flush the copy to disk and give it its name. Unlike a rename, os.link never replaces a file."""
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    try:
        os.link(partial, target)
    except FileExistsError as err:
        raise BackupError(f"backup target {target} exists",
                          f"备份文件 {target} 已存在：请换一个文件名。") from err


# --- PostgreSQL --------------------------------------------------------------------------------


def libpq_url(url: URL) -> str:
    """Return the libpq connection URI of ``url`` without its password, for pg_dump and psql.

    The query (sslmode, the host of a Unix socket and the like) is kept, because psycopg passes
    it to libpq too.
    """
    bare = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                      database=url.database, query=url.query)
    return bare.render_as_string(hide_password=False)


def pg_dump_command(url: URL, target: Path, executable: str = "pg_dump") -> list[str]:
    """Return the pg_dump command that writes a plain SQL dump of ``url`` to ``target``.

    Owners and grants are left out so the dump restores into a new database under any role.
    """
    return [executable, "--format=plain", "--no-owner", "--no-privileges",
            f"--file={target}", f"--dbname={libpq_url(url)}"]


def run_pg_dump(url: URL, target: Path) -> int:
    """Run pg_dump into ``target``, which must not exist yet, and return the dump's size in bytes.

    The password goes to pg_dump in PGPASSWORD, never on the command line. The dump is written to
    a hidden file beside ``target`` and linked to its name only when pg_dump succeeded.
    """
    executable = shutil.which("pg_dump")
    if executable is None:
        raise BackupError("pg_dump not found on PATH",
                          "找不到 pg_dump 命令：请安装 PostgreSQL 客户端（Debian 上为 apt-get install "
                          "postgresql-client），其版本不能低于数据库服务器的版本。")
    _check_target(target)

    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = url.password
    with _partial_file(target) as partial:
        command = pg_dump_command(url, partial, executable)
        completed = subprocess.run(command, env=environment, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            detail = completed.stderr.strip() or f"exit code {completed.returncode}"
            raise BackupError(f"pg_dump failed: {detail}",
                              f"pg_dump 运行失败（退出码 {completed.returncode}）：{detail}")
        _publish(partial, target)
    return target.stat().st_size
