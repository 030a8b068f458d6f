"""Import a generated season, summarise it in this process and print time, memory and counts as JSON.

Usage: ``python -m benchmarks.phases CONFIG DATABASE_URL [--tracemalloc]``. The driver
(benchmarks/prefecture.py) starts one such process per run, with an empty database each time.

Before the measurement the process loads the config, creates the database's schema, records the
units and builds one digest on the empty database, so that the templates are compiled. Then two
phases are timed one after the other:

1. import: ``import_paths`` on each county's folder of .eml files, with that county's settings
   and no replies, as ``zhoubao --mailbox NAME import FOLDER`` does;
2. summary: for each county and week, the admin's digest as known at the digest's scheduled
   moment (``build_digest``), rendered to the mail's subject, text and HTML (``render_notice``).

Before each phase the peak RSS is reset (see benchmarks/cases.py), so the growth of each phase
is its own. ``peak_rss_kib`` is the process's ``ru_maxrss`` from ``resource.getrusage``: it
includes the interpreter and the modules, and on Linux it carries over the parent's peak at fork
time, so it is only meaningful when the parent is smaller (the driver checks that).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.cases import reset_peak_rss, status_kib
from benchmarks.season import mail_folder
from ingest.calendar import ScheduledNotice, notice_moments
from notify.notices import DigestNotice
from notify.render import Rendered, render_notice
from service.clock import Clock
from service.config import DatabaseSettings, Settings, load_deployments
from service.importer import ImportSummary, SourceMail, import_paths
from service.notices import build_digest
from service.runtime import open_database
from store.models import Message, Submission, SubmissionStatus
from store.session import Database


@dataclass(frozen=True)
class Digest:
    """One county's digest of one week, as built and as rendered for the admin's mail."""

    mailbox: str
    week: int
    notice: DigestNotice
    rendered: Rendered
    seconds: float  # building and rendering it


def load_season(config: Path, database_url: str) -> tuple[Settings, ...]:
    """Load the season's config with its [database] url replaced by ``database_url``."""
    deployments = load_deployments(config, environ={}, require_secrets=False)
    return tuple(dataclasses.replace(settings, database=DatabaseSettings(database_url))
                 for settings in deployments)


class MailTimer:
    """A ``progress`` wrapper for ``import_paths`` that records the seconds each mail took, by county."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def for_county(self, name: str):
        timings = self.seconds.setdefault(name, [])

        @contextlib.contextmanager
        def progress(sources: list[SourceMail]) -> Iterator[Iterator[SourceMail]]:
            yield _timed(sources, timings)

        return progress


def _timed(sources: list[SourceMail], timings: list[float]) -> Iterator[SourceMail]:
    for source in sources:
        started = time.perf_counter()
        # The importer processes the mail before it requests the next one.
        yield source
        timings.append(time.perf_counter() - started)


def import_season(deployments: Sequence[Settings], database: Database, clock: Clock, mails: Path,
                  timer: MailTimer | None = None) -> dict[str, ImportSummary]:
    """Import each county's folder under ``mails`` with its own settings and return the summaries."""
    timer = timer or MailTimer()
    return {settings.name: import_paths(settings, database, clock, [mails / settings.name], reply=False,
                                        progress=timer.for_county(settings.name))
            for settings in deployments}


def mail_medians(timer: MailTimer) -> dict[str, float]:
    """Return the median seconds per mail: of all mails, of the first tenth and of the last tenth.

    The tenths follow the order of the import, county after county, so the first tenth goes into
    a nearly empty database and the last tenth into one that contains nine tenths of the season.
    The first tenth starts at the second mail, because the first one also compiles the SQL
    statements and opens the database connection.
    """
    every = [seconds for timings in timer.seconds.values() for seconds in timings]
    tenth = max(1, len(every) // 10)
    return {"median": statistics.median(every), "first_median": statistics.median(every[1:tenth + 1]),
            "last_median": statistics.median(every[-tenth:])}


def summarise_season(deployments: Sequence[Settings], database: Database) -> list[Digest]:
    """Build and render each county's digest of each week at the moment it is scheduled."""
    digests = []
    for settings in deployments:
        moments = [item for item in notice_moments(settings.campaign.calendar(), settings.notices)
                   if item.kind is ScheduledNotice.DIGEST]
        for item in moments:
            started = time.perf_counter()
            with database.session() as session:
                notice = build_digest(settings, session, item.week, item.moment)
            rendered = render_notice(notice, settings.template_dir, signature=settings.smtp.from_name)
            digests.append(Digest(settings.name, item.week, notice, rendered, time.perf_counter() - started))
    return digests


def digest_medians(digests: Sequence[Digest]) -> dict[str, float]:
    """Return the median seconds per digest: of all digests, of the first week's and of the last week's."""
    last_week = max(digest.week for digest in digests)
    return {
        "median": statistics.median(digest.seconds for digest in digests),
        "first_median": statistics.median(digest.seconds for digest in digests if digest.week == 1),
        "last_median": statistics.median(digest.seconds for digest in digests if digest.week == last_week),
    }


def stored_counts(database: Database) -> dict[str, int]:
    """Count the stored messages, the accepted submissions and the distinct Message-IDs."""
    with database.session() as session:
        return {
            "messages": session.scalar(select(func.count()).select_from(Message)),
            "message_ids": session.scalar(select(func.count(func.distinct(Message.message_id_header)))),
            "accepted": session.scalar(select(func.count()).select_from(Submission)
                                       .where(Submission.status == SubmissionStatus.ACCEPTED)),
        }


def digest_gaps(deployments: Sequence[Settings], digests: Sequence[Digest]) -> list[str]:
    """Return a line for each digest that does not list every unit of its county as on time."""
    units = {settings.name: [unit.name for unit in settings.units] for settings in deployments}
    gaps = []
    for digest in digests:
        on_time = [item.unit for item in digest.notice.on_time]
        if on_time != units[digest.mailbox] or digest.notice.due_count != len(on_time):
            gaps.append(f"{digest.mailbox} week {digest.week}: {len(on_time)} of "
                        f"{len(units[digest.mailbox])} on time, {digest.notice.due_count} due")
        missing_text = [name for name in units[digest.mailbox] if name not in digest.rendered.text]
        if missing_text:
            gaps.append(f"{digest.mailbox} week {digest.week}: text leaves out {'、'.join(missing_text)}")
    return gaps


def measure(config: Path, database_url: str, trace: bool) -> dict[str, object]:
    """Run both phases once on an empty database and return their time, memory and counts."""
    deployments = load_season(config, database_url)
    database = open_database(*deployments)
    # Two weeks after the last deadline, as a backfill runs. Lateness follows each mail's Date header.
    clock = Clock(deployments[0].campaign.last_deadline + dt.timedelta(days=14))
    _warm_up(deployments[0], database)
    if trace:
        tracemalloc.start()
    try:
        timer = MailTimer()
        summaries, imported = _phase(
            lambda: import_season(deployments, database, clock, mail_folder(config.parent), timer), trace)
        digests, summarised = _phase(lambda: summarise_season(deployments, database), trace)
    finally:
        tracemalloc.stop()

    counts = stored_counts(database)
    database.dispose()
    imported.update(mail_medians(timer))
    summarised.update(digest_medians(digests))
    return {
        "import": imported,
        "summary": summarised,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "imported": {str(outcome): count for outcome, count in _outcomes(summaries.values()).items()},
        "already_stored": sum(summary.known for summary in summaries.values()),
        "stored": counts,
        "digests": len(digests),
        "digest_gaps": digest_gaps(deployments, digests),
    }


def _warm_up(settings: Settings, database: Database) -> None:
    """Build and render one digest on the still empty database, which writes nothing.

    The first digest of a process compiles the templates and the digest's SQL statements, so it
    takes several times as long as the next ones. A running service pays that once.
    """
    first = settings.campaign.first_deadline
    with database.session() as session:
        notice = build_digest(settings, session, 1, first)
    render_notice(notice, settings.template_dir, signature=settings.smtp.from_name)


def _outcomes(summaries) -> Counter:
    total: Counter = Counter()
    for summary in summaries:
        total.update(summary.outcomes)
    return total


def _phase(work: Callable[[], object], trace: bool) -> tuple[object, dict[str, object]]:
    rss_before = reset_peak_rss()
    if trace:
        tracemalloc.reset_peak()

    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started

    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    return result, {"seconds": seconds, "rss_growth_kib": status_kib("VmHWM") - rss_before,
                    "traced_peak_bytes": traced_peak}


def main(argv: list[str]) -> None:
    config, database_url = Path(argv[0]), argv[1]
    json.dump(measure(config, database_url, "--tracemalloc" in argv[2:]), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
