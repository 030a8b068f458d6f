"""Measure a prefecture's season: import every county's mails into one database, then every digest.

Usage, from the repository root::

    python -m benchmarks.prefecture [--units 100] [--weeks 15] [--mailboxes 4]
                                    [--database sqlite|postgresql] [--repeat 3]

The season is generated first (benchmarks/season.py), once at the full size and once as a small
season (10 units over 2 weeks, same number of mailboxes), each in a process of its own. Then each
season runs ``--repeat`` times, each time in a fresh process on an empty database
(benchmarks/phases.py), and once more under tracemalloc. Each phase's table gives the median
time per item (mail or digest) as a ratio to the small season measured in the same run. Within
each run it also compares the last items with the first: the last tenth of the mails imported
with the first tenth, and the last week's digests with week 1's. Medians, because the first
mail of a process takes about twice as long as the others: it compiles the SQL statements and
opens the first database connection. The first digest's one-time cost is paid before the timing
(see benchmarks/phases.py).

``--database postgresql`` creates a throwaway database on 127.0.0.1:5432 (user postgres, trust
authentication) for each run and drops it afterwards. Nothing else is contacted and no reply is
sent: the import runs with ``reply=False`` and the digests are only rendered.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.report import format_duration, format_size, machine

ROOT = Path(__file__).resolve().parent.parent

POSTGRES = dict(host="127.0.0.1", port=5432, user="postgres")
SMALL_UNITS = 10
SMALL_WEEKS = 2


@dataclass(frozen=True)
class Size:
    """The dimensions of one generated season."""

    units: int
    weeks: int
    mailboxes: int

    @property
    def label(self) -> str:
        return f"{self.units} units × {self.weeks} weeks, {self.mailboxes} mailboxes"

    @property
    def mails(self) -> int:
        return self.units * self.weeks

    @property
    def digests(self) -> int:
        return self.mailboxes * self.weeks


@dataclass(frozen=True)
class Phase:
    """One phase's measurements over the runs: medians of the times, maximum of the RSS growth.

    ``median`` is the median seconds per item (a mail or a digest). ``first`` and ``last`` are
    the same over the first and the last items: a tenth of the mails in the order imported, or
    the digests of week 1 and of the last week.
    """

    seconds: float
    median: float
    first: float
    last: float
    rss_growth_kib: int
    traced_bytes: int


@dataclass(frozen=True)
class Result:
    """The measurements of one season: its import, its summary and the process's peak RSS."""

    size: Size
    imported: Phase
    summary: Phase
    peak_rss_kib: int


# --- running the processes -----------------------------------------------------------------------


def generate(size: Size, folder: Path) -> Path:
    """Write the season in a process of its own and return the path of its config."""
    command = [sys.executable, "-m", "benchmarks.season", str(folder), f"--units={size.units}",
               f"--weeks={size.weeks}", f"--mailboxes={size.mailboxes}"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(json.loads(completed.stdout)["config"])


def run_phases(size: Size, config: Path, database_url: str, trace: bool) -> dict:
    """Run both phases in a fresh process and check what it stored and summarised."""
    command = [sys.executable, "-m", "benchmarks.phases", str(config), database_url]
    if trace:
        command.append("--tracemalloc")
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmarks.phases failed ({completed.returncode}):\n{completed.stderr}")
    run = json.loads(completed.stdout)
    problems = count_problems(size, run)
    if problems:
        raise RuntimeError("the run did not import or summarise the whole season:\n" + "\n".join(problems))
    return run


def count_problems(size: Size, run: dict) -> list[str]:
    """Return what differs from one accepted report per mail and a full digest per county and week."""
    expected = {
        "accepted imports": ({"accepted": size.mails}, run["imported"]),
        "mails already stored": (0, run["already_stored"]),
        "stored messages": (size.mails, run["stored"]["messages"]),
        "distinct Message-IDs": (size.mails, run["stored"]["message_ids"]),
        "accepted submissions": (size.mails, run["stored"]["accepted"]),
        "digests": (size.digests, run["digests"]),
    }
    problems = [f"{name}: expected {want}, found {found}" for name, (want, found) in expected.items()
                if want != found]
    return problems + run["digest_gaps"]


@contextlib.contextmanager
def throwaway_database(kind: str, folder: Path) -> Iterator[str]:
    """Yield the URL of an empty database, removed afterwards: a SQLite file or a PostgreSQL database."""
    if kind == "sqlite":
        path = folder / f"run-{secrets.token_hex(4)}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in folder.glob(f"{path.name}*"):
                leftover.unlink()
        return

    name = f"zhoubao_bench_{secrets.token_hex(6)}"
    _postgres_admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
    finally:
        _postgres_admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _postgres_admin(statement: sql.Composable) -> None:
    with _postgres_connection() as connection:
        connection.execute(statement)


def _postgres_connection() -> psycopg.Connection:
    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **POSTGRES)


def measure(size: Size, config: Path, kind: str, repeat: int) -> Result:
    """Run the season ``repeat`` times and once under tracemalloc, each on an empty database."""
    runs = []
    for _ in range(repeat + 1):
        with throwaway_database(kind, config.parent) as url:
            runs.append(run_phases(size, config, url, trace=len(runs) == repeat))
    traced, runs = runs[-1], runs[:-1]
    return Result(size, _phase(runs, traced, "import"), _phase(runs, traced, "summary"),
                  peak_rss_kib=max(run["peak_rss_kib"] for run in runs))


def _phase(runs: list[dict], traced: dict, name: str) -> Phase:
    phases = [run[name] for run in runs]
    return Phase(
        seconds=statistics.median(phase["seconds"] for phase in phases),
        median=statistics.median(phase["median"] for phase in phases),
        first=statistics.median(phase["first_median"] for phase in phases),
        last=statistics.median(phase["last_median"] for phase in phases),
        rss_growth_kib=max(phase["rss_growth_kib"] for phase in phases),
        traced_bytes=traced[name]["traced_peak_bytes"],
    )


# --- the report ----------------------------------------------------------------------------------


def database_version(kind: str) -> str:
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} (a file)"
    with _postgres_connection() as connection:
        version = connection.info.parameter_status("server_version")
    return f"PostgreSQL {version} on {POSTGRES['host']}:{POSTGRES['port']}"


def format_report(small: Result, full: Result) -> str:
    """Return the two phases' tables and the peak RSS, with ratios to the small season."""
    imports = [(result.size.label, result.size.mails, result.imported) for result in (small, full)]
    summaries = [(result.size.label, result.size.digests, result.summary) for result in (small, full)]
    peaks = ", ".join(f"{format_size(result.peak_rss_kib * 1024)} ({result.size.label})" for result in (small, full))
    return "\n".join([
        "Import (an item is a mail; first and last: a tenth of the mails, in the order imported):", "",
        format_phase(imports, small.imported), "",
        "Summary (an item is one county's digest of one week; first and last: week 1 and the last week):", "",
        format_phase(summaries, small.summary), "",
        f"Peak RSS of the process: {peaks}.",
    ])


def format_phase(rows: list[tuple[str, int, Phase]], small: Phase) -> str:
    lines = [
        "| season | items | time | items/s | per item, median | × small | first, median"
        " | last, median | last ÷ first | RSS growth | traced peak |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, count, phase in rows:
        lines.append(
            f"| {label} | {count} | {format_duration(phase.seconds)} | {count / phase.seconds:.1f}"
            f" | {format_duration(phase.median)} | {phase.median / small.median:.2f}"
            f" | {format_duration(phase.first)} | {format_duration(phase.last)}"
            f" | {phase.last / phase.first:.2f}"
            f" | {format_size(phase.rss_growth_kib * 1024)} | {format_size(phase.traced_bytes)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100, help="townships in the full season (default 100)")
    parser.add_argument("--weeks", type=int, default=15, help="weekly deadlines in the full season (default 15)")
    parser.add_argument("--mailboxes", type=int, default=4, help="county mailboxes the units are spread over (default 4)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="a SQLite file, or a throwaway database on PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--repeat", type=int, default=3, help="runs per season (median time, default 3)")
    options = parser.parse_args(argv)

    full = Size(options.units, options.weeks, options.mailboxes)
    small = Size(SMALL_UNITS, SMALL_WEEKS, min(options.mailboxes, SMALL_UNITS))
    results = []
    with tempfile.TemporaryDirectory(prefix="zhoubao-prefecture-") as folder:
        for name, size in (("small", small), ("full", full)):
            config = generate(size, Path(folder) / name)
            print(f"generated: {size.label}", file=sys.stderr)
            results.append(measure(size, config, options.database, options.repeat))
            print(f"measured: {size.label}", file=sys.stderr)

    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if own_peak >= min(result.peak_rss_kib for result in results):
        # On Linux a child's ru_maxrss starts at its parent's peak at fork, across exec.
        print(f"warning: this process's peak RSS ({format_size(own_peak * 1024)}) is not below the "
              "children's, so the peak RSS reported may be this process's", file=sys.stderr)

    print(f"{dt.date.today().isoformat()}, {machine()}, {database_version(options.database)}, "
          f"{options.repeat} runs per season\n")
    print(format_report(*results))


if __name__ == "__main__":
    main()
