"""The prefecture benchmark at a tiny size: 4 units in 2 county mailboxes over 2 weeks.

These tests check what the benchmark measures, never how fast: the generated season is imported
whole through the real pipeline, every mail once, and each digest lists every unit of its county.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.phases import import_season, load_season, stored_counts, summarise_season
from benchmarks.prefecture import Size, count_problems
from benchmarks.season import mail_folder, plan_season, weekly_rows, write_season
from service.clock import Clock
from service.runtime import open_database
from store.models import MessageOutcome

ROOT = Path(__file__).resolve().parent.parent
UNITS, WEEKS, MAILBOXES = 4, 2, 2
MAILS = UNITS * WEEKS


@pytest.fixture
def season_config(tmp_path, database_url):
    return write_season(plan_season(UNITS, WEEKS, MAILBOXES), tmp_path / "season", database_url)


@pytest.fixture
def imported(season_config, database_url):
    deployments = load_season(season_config, database_url)
    database = open_database(*deployments)
    clock = Clock(deployments[0].campaign.last_deadline)
    summaries = import_season(deployments, database, clock, mail_folder(season_config.parent))
    yield deployments, database, clock, summaries
    database.dispose()


def test_units_spread_over_mailboxes():
    season = plan_season(UNITS, WEEKS, MAILBOXES)

    assert [len(county.units) for county in season.counties] == [2, 2]
    assert len({unit.name for unit in season.units}) == UNITS
    assert len({unit.address for unit in season.units}) == UNITS


def test_one_file_per_unit_and_week(season_config):
    files = sorted(mail_folder(season_config.parent).rglob("*.eml"))

    assert len(files) == MAILS
    assert len({path.read_bytes() for path in files}) == MAILS


def test_running_totals_add_up():
    season = plan_season(UNITS, 5, MAILBOXES)
    for unit in season.units:
        rows = weekly_rows(unit, 5)
        for previous, current in zip(rows, rows[1:]):
            # Columns 4 and 5 (indexes 2, 3) are last week's plus this week's 6 and 7 (indexes 4, 5).
            assert current[2] == previous[2] + current[4]
            assert current[3] == previous[3] + current[5]


def test_every_mail_accepted(imported):
    deployments, *_, summaries = imported

    outcomes = {name: dict(summary.outcomes) for name, summary in summaries.items()}

    assert outcomes == {settings.name: {MessageOutcome.ACCEPTED: MAILS // MAILBOXES} for settings in deployments}


def test_every_mail_stored_once(imported):
    _, database, _, _ = imported

    assert stored_counts(database) == {"messages": MAILS, "message_ids": MAILS, "accepted": MAILS}


def test_import_again_stores_nothing(imported, season_config):
    deployments, database, clock, _ = imported

    again = import_season(deployments, database, clock, mail_folder(season_config.parent))

    assert sum(summary.known for summary in again.values()) == MAILS
    assert stored_counts(database)["messages"] == MAILS


def test_digest_per_mailbox_and_week(imported):
    deployments, database, _, _ = imported

    digests = summarise_season(deployments, database)

    assert sorted((digest.mailbox, digest.week) for digest in digests) == sorted(
        (settings.name, week) for settings in deployments for week in range(1, WEEKS + 1))


def test_digests_list_every_unit(imported):
    deployments, database, _, _ = imported
    units = {settings.name: [unit.name for unit in settings.units] for settings in deployments}

    for digest in summarise_season(deployments, database):
        assert [item.unit for item in digest.notice.on_time] == units[digest.mailbox]
        assert digest.notice.missing == []
        assert digest.notice.findings == []
        for name in units[digest.mailbox]:
            assert name in digest.rendered.text


def test_count_problems_names_missing_mail():
    size = Size(UNITS, WEEKS, MAILBOXES)
    run = {"imported": {"accepted": MAILS - 1}, "already_stored": 0,
           "stored": {"messages": MAILS - 1, "message_ids": MAILS - 1, "accepted": MAILS - 1},
           "digests": size.digests, "digest_gaps": []}

    problems = count_problems(size, run)

    assert f"stored messages: expected {MAILS}, found {MAILS - 1}" in problems


def test_driver_runs_tiny_season():
    command = [sys.executable, "-m", "benchmarks.prefecture", f"--units={UNITS}", f"--weeks={WEEKS}",
               f"--mailboxes={MAILBOXES}", "--repeat=1"]

    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert completed.returncode == 0, completed.stderr
    assert f"| {UNITS} units × {WEEKS} weeks, {MAILBOXES} mailboxes | {MAILS} |" in completed.stdout
    assert f"| {UNITS} units × {WEEKS} weeks, {MAILBOXES} mailboxes | {MAILBOXES * WEEKS} |" in completed.stdout
