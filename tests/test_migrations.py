"""Every Alembic migration applied over data: from each earlier revision to head, on SQLite and
PostgreSQL.

The revisions are read from the package's Alembic script directory, so a new migration is tested
as soon as it exists. What it needs here is a seed: SEEDS maps each revision to a function that
writes one row into every table that revision creates, with the columns the table has at that
revision. The database is brought up one revision at a time and each revision's seed runs right
after it, so every seed meets the schema it was written for, and older rows pass through every
later migration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from store.models import Base
from store.session import MIGRATIONS, Database
from tests.test_bounces import fill_0002
from tests.test_demand import fill_0001, migrate

SEEN = dt.datetime(2024, 1, 12, 11, 5, tzinfo=dt.timezone.utc)

BOUNCING_ADDRESSES_0003 = sa.table(
    "bouncing_addresses", *(sa.column(name, type_) for name, type_ in {
        "address": sa.String(), "first_seen_at": sa.DateTime(timezone=True),
        "last_seen_at": sa.DateTime(timezone=True), "reason": sa.Text(), "count": sa.Integer(),
    }.items()))


def fill_0003(database: Database) -> None:
    """Write one row into the table that revision 0003 adds."""
    with database.engine.begin() as connection:
        connection.execute(sa.insert(BOUNCING_ADDRESSES_0003).values(
            address="sangong_kx@example.test", first_seen_at=SEEN, last_seen_at=SEEN,
            reason="5.1.1 smtp; 550 User not found", count=1))


FINDING_EXPLANATIONS_0004 = sa.table(
    "finding_explanations", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Integer(), "submission_id": sa.Integer(), "code": sa.String(), "note": sa.Text(),
        "explained_at": sa.DateTime(timezone=True),
    }.items()))
SUMMARY_MATERIALS_0004 = sa.table(
    "summary_materials", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Integer(), "message_id": sa.Integer(), "unit_id": sa.Integer(), "files": sa.JSON(),
        "links": sa.JSON(), "received_at": sa.DateTime(timezone=True),
        "created_at": sa.DateTime(timezone=True),
    }.items()))


def fill_0004(database: Database) -> None:
    """Write one row into each table that revision 0004 adds."""
    with database.engine.begin() as connection:
        connection.execute(sa.insert(FINDING_EXPLANATIONS_0004).values(
            id=1, submission_id=1, code="C1", note="已电话核实", explained_at=SEEN))
        connection.execute(sa.insert(SUMMARY_MATERIALS_0004).values(
            id=1, message_id=1, unit_id=1, files=[{"name": "总结.docx", "size": 2048, "sha256": "a" * 64}],
            links=[], received_at=SEEN, created_at=SEEN))


def fill_0005(database: Database) -> None:
    """Write one row into the lease table that revision 0005 adds."""
    with database.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO mailbox_leases (mailbox, holder, expires_at) "
                                   "VALUES ('INBOX', 'zhoubao-host:4242', :at)"), {"at": SEEN})


INTAKE_RUNS_0006 = sa.table(
    "intake_runs", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Integer(), "mailbox": sa.String(), "started_at": sa.DateTime(timezone=True),
        "finished_at": sa.DateTime(timezone=True), "seen": sa.Integer(), "processed": sa.Integer(),
        "moved": sa.Integer(), "failed": sa.Integer(), "ok": sa.Boolean(), "error": sa.Text(),
    }.items()))


def fill_0006(database: Database) -> None:
    """Write one row into the table that revision 0006 adds: a failed intake run."""
    with database.engine.begin() as connection:
        connection.execute(sa.insert(INTAKE_RUNS_0006).values(
            id=1, mailbox="county@example.test@127.0.0.1/INBOX", started_at=SEEN, finished_at=SEEN,
            seen=2, processed=1, moved=1, failed=1, ok=False,
            error="AuthenticationFailed: mailbox county@example.test@127.0.0.1:143/INBOX: login rejected"))


def seed_nothing(database: Database) -> None:
    """Seed of a revision that creates no table, such as one that only adds a column or index."""


# Seed of each revision, keyed by the revision that introduced its tables. A new migration adds
# its entry here: a function that inserts one row into each table it creates, or seed_nothing.
SEEDS: dict[str, Callable[[Database], None]] = {
    "0001": fill_0001,
    "0002": fill_0002,
    "0003": fill_0003,
    "0004": fill_0004,
    "0005": fill_0005,
    "0006": fill_0006,
}


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def revisions() -> list[str]:
    """Return every revision from the first to head, in the order they apply."""
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


REVISIONS = revisions()
HEAD = REVISIONS[-1]


def seed(database: Database, revision: str) -> None:
    """Run the seed of ``revision``, failing with instructions when it has none."""
    if revision not in SEEDS:
        script = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
        pytest.fail(
            f"Alembic revision {revision} ({script.path}) has no seed in SEEDS of "
            f"tests/test_migrations.py. Add a function that inserts one row into each table "
            f"{revision} creates, using that revision's columns, or map it to seed_nothing "
            f"when it creates no table."
        )
    SEEDS[revision](database)


def table_counts(database: Database) -> dict[str, int]:
    """Count the rows of every table but alembic_version."""
    with database.engine.connect() as connection:
        names = [name for name in sa.inspect(connection).get_table_names() if name != "alembic_version"]
        return {name: connection.scalar(sa.select(sa.func.count()).select_from(sa.table(name)))
                for name in sorted(names)}


def fill_up_to(database: Database, start: str) -> dict[str, int]:
    """Migrate to ``start`` one revision at a time, seeding after each; return the row counts."""
    for revision in REVISIONS[:REVISIONS.index(start) + 1]:
        migrate(database, command.upgrade, revision)
        seed(database, revision)
        empty = [name for name, count in table_counts(database).items() if count == 0]
        assert empty == [], (
            f"at revision {revision} the tables {empty} have no rows: the seed of the revision "
            f"that creates each of them must insert one (see SEEDS in tests/test_migrations.py)"
        )
    return table_counts(database)


def load_every_model(database: Database) -> dict[str, int]:
    """Load every row of every mapped model through the ORM; return the count per table."""
    loaded = {}
    with Session(database.engine) as session:
        for mapper in Base.registry.mappers:
            rows = session.scalars(sa.select(mapper.class_)).all()
            loaded[mapper.local_table.name] = len(rows)
    return loaded


def test_every_revision_has_seed():
    missing = [revision for revision in REVISIONS if revision not in SEEDS]

    assert missing == [], (
        f"revisions without a seed in SEEDS of tests/test_migrations.py: {missing}. Add a "
        f"function that inserts one row into each table the revision creates, or seed_nothing."
    )


def test_seeds_name_real_revisions():
    assert sorted(set(SEEDS) - set(REVISIONS)) == []


def test_revisions_form_one_line():
    script = ScriptDirectory.from_config(alembic_config())

    assert script.get_heads() == [HEAD]
    assert script.get_bases() == [REVISIONS[0]]


@pytest.fixture(params=REVISIONS[:-1])
def upgraded(request, database_url):
    """A database filled at an earlier revision, then migrated to head as the service does at
    start-up; yielded with the row counts it had before the upgrade."""
    database = Database(database_url)
    before = fill_up_to(database, request.param)
    database.upgrade()
    yield database, before
    database.dispose()


def test_upgrade_reaches_head(upgraded):
    database, _ = upgraded

    assert database.revision() == HEAD


def test_upgrade_keeps_every_row(upgraded):
    database, before = upgraded

    after = table_counts(database)

    assert {name: after[name] for name in before} == before


def test_upgrade_matches_models(upgraded):
    database, _ = upgraded

    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgraded_rows_load_through_models(upgraded):
    database, before = upgraded

    loaded = load_every_model(database)

    assert {name: loaded[name] for name in before} == before


def test_0004_keys_queued_notices(database_url):
    # GIVEN a reminder queued at revision 0003, before the outbox had a notice key
    database = Database(database_url)
    fill_up_to(database, "0003")
    with database.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO outbox (id, kind, recipient, subject, mail_message_id, raw, status, attempts,"
            " next_attempt_at, created_at) VALUES (2, 'reminder; week=3', 'HuiYuan_kx@Example.test',"
            " '报送提醒', '<n2@example.test>', :raw, 'sent', 1, :at, :at)"), {"raw": b"x", "at": SEEN})

    # WHEN it is migrated to 0004
    migrate(database, command.upgrade, "0004")

    # THEN the reminder has the key the planner looks for, and the reply has none
    with database.engine.connect() as connection:
        keys = dict(connection.execute(sa.text("SELECT id, notice_key FROM outbox ORDER BY id")).all())
    database.dispose()
    assert keys == {1: None, 2: "reminder; week=3; to=huiyuan_kx@example.test"}


def test_0005_gives_replies_their_mailbox(database_url):
    # GIVEN a reply (to message 1, read from INBOX) queued at revision 0004
    database = Database(database_url)
    fill_up_to(database, "0004")

    # WHEN it is migrated to 0005
    migrate(database, command.upgrade, "0005")

    # THEN the reply is scoped to the mailbox of the mail it answers
    with database.engine.connect() as connection:
        mailboxes = connection.execute(sa.text("SELECT mailbox FROM outbox")).scalars().all()
    database.dispose()
    assert mailboxes == ["INBOX"]
