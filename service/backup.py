"""The ``backup`` command's work: pick the backup file, copy or dump, and word the result."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from sqlalchemy.engine import URL

from store.backup import backup_sqlite, backup_target, libpq_url, pg_dump_command, run_pg_dump

logger = logging.getLogger(__name__)


def backup_sqlite_file(url: URL, path: Path, stamp: str) -> str:
    """Copy the SQLite database to ``path`` (a file, or a folder for a stamped file); return the notice."""
    copy = backup_sqlite(url, backup_target(path, stamp, ".sqlite3"))
    logger.info("backup: database %s copied to %s (%d bytes, revision %s)",
                url.database, copy.path, copy.size, copy.revision)
    return (f"已把数据库 {url.database} 备份到 {copy.path}（{copy.size:,} 字节，数据库版本 "
            f"{copy.revision or '未建表'}，完整性检查通过）。\n"
            "恢复时，先停止服务，再用备份文件替换数据库文件，并删除数据库文件旁同名的 -wal 和 -shm 文件。")


def backup_postgresql(url: URL, path: Path, stamp: str, run: bool) -> str:
    """Run pg_dump when ``run`` is set, else return the pg_dump command to run; return the notice."""
    target = backup_target(path, stamp, ".sql")
    restore = "恢复时，在新建的空数据库上运行 psql --single-transaction --set=ON_ERROR_STOP=1 --file=备份文件。"
    if run:
        size = run_pg_dump(url, target)
        logger.info("backup: database %s dumped to %s (%d bytes)", libpq_url(url), target, size)
        return f"已用 pg_dump 把数据库备份到 {target}（{size:,} 字节）。\n{restore}"

    command = shlex.join(pg_dump_command(url, target))
    return (
        "数据库为 PostgreSQL，请用 pg_dump 备份，命令如下（命令中不含密码）：\n"
        f"{command}\n"
        "数据库设有密码时，请在运行前用环境变量 PGPASSWORD 或 ~/.pgpass 文件提供。"
        "pg_dump 的版本不能低于数据库服务器的版本。\n"
        f"{restore}\n"
        "加上 --run-pg-dump 时，zhoubao 会直接运行上述命令。"
    )
