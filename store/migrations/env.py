"""Alembic environment for zhoubao.

``store.session.Database.upgrade`` passes its open connection in ``config.attributes["connection"]``
so the migration runs inside the caller's transaction. Run from the command line instead, the
environment connects to ``sqlalchemy.url`` from the Alembic config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from ingest.failpoints import failpoint
from store.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most column or constraint properties; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # SQLite runs DDL inside transactions too (store.session turns the driver's implicit
        # commits off), so a migration is applied whole or not at all on both backends.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        failpoint("after-migrations")


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
