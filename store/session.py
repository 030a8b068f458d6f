"""Database connections, sessions and schema migration.

Only this package opens database sessions. The schema comes from the Alembic migrations shipped
inside the package (``store/migrations``), so an installed zhoubao needs no ``alembic.ini``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.errors import StoreError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Key of the PostgreSQL advisory lock that serialises migrations when two service processes
# start against the same database at once. Any constant works if no other code uses it.
_MIGRATION_LOCK_KEY = 0x7A686F75


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite database file."""
    return f"sqlite:///{Path(path).resolve()}"


def sqlite_file(url: str | URL) -> Path | None:
    """Return the file of a SQLite database URL; None for PostgreSQL, memory and URI databases."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Database:
    """An engine, a session factory and the migration entry point for one database URL.

    ``url`` is any SQLAlchemy URL; PostgreSQL uses psycopg 3 (``postgresql+psycopg://``).
    """

    def __init__(self, url: str, *, echo: bool = False):
        self.url = make_url(url)
        self.engine: Engine = create_engine(self.url, echo=echo)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _configure_sqlite)
            event.listen(self.engine, "begin", _begin_sqlite)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits when the block ends and rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def upgrade(self) -> None:
        """Create the database schema or migrate it to the newest revision.

        Creates the folder of a SQLite file. Running it on an up-to-date database changes nothing.
        Raises StoreError when the database cannot be reached or a migration fails.
        """
        self._create_sqlite_folder()
        config = _alembic_config(self.url.render_as_string(hide_password=False))
        try:
            with self.engine.begin() as connection:
                _lock_migrations(connection)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as err:
            raise StoreError(f"database {self!r}: migration failed: {err}") from err
        logger.info("database %r: schema at revision %s", self, self.revision())

    def revision(self) -> str | None:
        """Return the schema revision the database is at, or None before the first upgrade."""
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except SQLAlchemyError as err:
            raise StoreError(f"database {self!r}: reading the revision failed: {err}") from err

    def head_revision(self) -> str | None:
        """Return the newest revision shipped with this package."""
        return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()

    def revisions(self) -> list[str]:
        """Return every revision shipped with this package, newest first."""
        script = ScriptDirectory.from_config(_alembic_config(None))
        return [revision.revision for revision in script.walk_revisions()]

    def missing_file(self) -> Path | None:
        """Return the path of a SQLite database file that does not exist yet, else None.

        Connecting would create the file empty, so callers that only read check this first.
        """
        path = sqlite_file(self.url)
        return path if path is not None and not path.exists() else None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _create_sqlite_folder(self) -> None:
        path = sqlite_file(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)



def _alembic_config(url: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser treats "%" as interpolation, and URL-encoded passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _lock_migrations(connection: Connection) -> None:
    # The transaction-scoped lock is released at commit, after Alembic has written the version.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})


def _begin_sqlite(connection: Connection) -> None:
    # With the driver's own transaction handling off (see _configure_sqlite), SQLAlchemy's
    # transaction starts here, so CREATE TABLE is inside it and a killed migration rolls back.
    connection.exec_driver_sql("BEGIN")


def _configure_sqlite(dbapi_connection, connection_record) -> None:
    # SQLite turns foreign keys off for each new connection. WAL lets readers (the CLI, tests) read
    # while the service writes, and busy_timeout waits for a writer instead of failing at once.
    # The sqlite3 module commits before every DDL statement unless it leaves transactions alone
    # (isolation_level None): a migration killed halfway then left some tables behind for good.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()
