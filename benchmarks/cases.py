"""Run one benchmark case in this process and print its time and peak memory as JSON.

Usage: ``python -m benchmarks.cases KIND FILE [--tracemalloc]``. The driver (benchmarks/run.py)
starts one process per case and run. Memory is read from /proc/self/status (Linux only):
``ru_maxrss`` would not do, because Linux carries the parent's peak over into a child across
fork and exec, and the driver's peak includes building the million-row inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.calendar import Campaign
from ingest.containers import Limits, expand_files
from ingest.locate import locate_tables
from ingest.message import Attachment, parse_message
from ingest.pipeline import Context, decide, oversized_decision
from ingest.readers import read_grids
from ingest.units import UnitDirectory, UnitSettings
from service.importer import header_bytes

_BEIJING = ZoneInfo("Asia/Shanghai")

# The default of [limits] max_message_mb.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024

CONTEXT = Context(
    units=UnitDirectory([UnitSettings("水定镇", emails=("shuiding_kx@163.com",))]),
    campaign=Campaign(
        first_deadline=dt.datetime(2023, 12, 8, 18, tzinfo=_BEIJING),
        last_deadline=dt.datetime(2024, 3, 15, 18, tzinfo=_BEIJING),
        timezone=_BEIJING,
    ),
    own_addresses=frozenset({"hckexie-county@example.test"}),
    received_at=dt.datetime(2023, 12, 22, 16, 42, tzinfo=_BEIJING),
)


def read_table(data: bytes) -> str:
    """Read an .xlsx file and locate the weekly tables; return a summary of both."""
    grids = read_grids(data, "xlsx")
    tables = locate_tables(grids)
    rows = sum(len(grid.rows) for grid in grids)
    return f"{rows} grid rows, {len(tables)} table(s)"


def unpack_zip(data: bytes) -> str:
    """Unpack a zip attachment with the default limits and read each .xlsx found in it."""
    attachment = Attachment(filename="水定镇.zip", data=data, content_type="application/zip", kind="zip")
    files, problems = expand_files([attachment], Limits())
    tables = [table for item in files if item.kind == "xlsx" for table in locate_tables(read_grids(item.data, "xlsx"))]
    reasons = "; ".join(problem.reason for problem in problems)
    return f"{len(files)} file(s), {len(tables)} table(s) {reasons}".strip()


def decide_mail(data: bytes) -> str:
    """Parse a raw mail and decide its outcome as the intake does; return the outcome."""
    decision = decide(parse_message(data), CONTEXT)
    reasons = "; ".join(problem.reason for problem in decision.problems)
    return f"{decision.outcome} {reasons}".strip()


def decide_over_cap(data: bytes) -> str:
    """Decide a mail over the size cap from its header alone, as the intake does.

    The intake sees RFC822.SIZE and fetches only the header (BODY.PEEK[HEADER]), so the body is
    never in memory there; here the header is cut from the file, which was read before timing.
    """
    mail = parse_message(header_bytes(data))
    decision = oversized_decision(mail, len(data), MAX_MESSAGE_BYTES, CONTEXT.units)
    reasons = "; ".join(problem.reason for problem in decision.problems)
    return f"{decision.outcome} {reasons}".strip()


KINDS: dict[str, Callable[[bytes], str]] = {"table": read_table, "zip": unpack_zip, "mail": decide_mail,
                                            "over-cap": decide_over_cap}


def measure(kind: str, data: bytes, trace: bool) -> dict[str, object]:
    """Run the case once and return seconds, peak RSS and (with ``trace``) the traced peak."""
    work = KINDS[kind]
    rss_before = reset_peak_rss()
    if trace:
        tracemalloc.start()

    started = time.perf_counter()
    result = work(data)
    seconds = time.perf_counter() - started

    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    peak = status_kib("VmHWM")
    return {
        "seconds": seconds,
        "peak_rss_kib": peak,
        "rss_growth_kib": peak - rss_before,
        "traced_peak_bytes": traced_peak,
        "result": result,
    }


def reset_peak_rss() -> int:
    """Reset the peak RSS (VmHWM) to the current RSS and return that, in KiB.

    Writing 5 to clear_refs resets the peak (Linux 4.0 and later, proc(5)).
    """
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmRSS")


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise LookupError(f"/proc/self/status has no {field}")


def main(argv: list[str]) -> None:
    kind, path = argv[0], Path(argv[1])
    trace = "--tracemalloc" in argv[2:]
    data = path.read_bytes()
    json.dump(measure(kind, data, trace), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
