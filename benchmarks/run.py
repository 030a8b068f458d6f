"""Measure the bounded cases against a normal table in one run and print a Markdown table.

Usage, from the repository root: ``python -m benchmarks.run [--repeat N] [CASE ...]``.

Each case runs ``--repeat`` times, each time in a fresh process (benchmarks/cases.py), and once
more under tracemalloc. The table shows the median time and the largest growth of the peak
resident set size during the work. It also shows the peak that tracemalloc traced, which counts
Python objects only and not the buffers of C libraries such as lxml or zlib. Time and RSS growth
are also given as ratios to the baseline case of the same kind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import inputs
from benchmarks.report import format_duration, format_ratio, format_size, machine

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One measured input: ``kind`` selects the work in benchmarks/cases.py."""

    name: str
    kind: str
    build: Callable[[Path], Path]
    baseline: str


CASES = (
    Case("normal table", "table", inputs.normal_table, "normal table"),
    Case("million-row used range, empty", "table", inputs.million_styled_rows, "normal table"),
    Case("million-row used range, filled", "table", inputs.million_filled_rows, "normal table"),
    Case("normal table in a zip", "zip", inputs.normal_zip, "normal table in a zip"),
    Case("zip bomb, 1 GiB of zeros", "zip", inputs.zip_bomb, "normal table in a zip"),
    Case("zip bomb, size declared 1 MiB", "zip", inputs.zip_bomb_lying, "normal table in a zip"),
    Case("zip of 10,000 members", "zip", inputs.zip_many_members, "normal table in a zip"),
    Case("zip of 112 MiB, each member under the ratio", "zip", inputs.zip_over_total, "normal table in a zip"),
    Case("zip in a zip in a zip", "zip", inputs.zip_nested, "normal table in a zip"),
    Case("normal mail", "mail", inputs.normal_mail, "normal mail"),
    Case("mail carrying the zip bomb", "mail", inputs.mail_zip_bomb, "normal mail"),
    Case("24 MiB mail: table with an 18 MiB photo", "mail", inputs.mail_large_table, "normal mail"),
    Case("24 MiB mail: an 18 MiB photo", "mail", inputs.mail_large_photo, "normal mail"),
    Case("40 MiB mail over the 25 MiB cap", "over-cap", inputs.mail_over_cap, "normal mail"),
)


@dataclass(frozen=True)
class Result:
    """The measurements of one case over its runs."""

    case: Case
    input_bytes: int
    seconds: float
    rss_growth_kib: int
    peak_rss_kib: int
    traced_peak_bytes: int
    outcome: str


def run_case(case: Case, path: Path, repeat: int) -> Result:
    runs = [_child(case.kind, path, trace=False) for _ in range(repeat)]
    traced = _child(case.kind, path, trace=True)
    return Result(
        case=case,
        input_bytes=path.stat().st_size,
        seconds=statistics.median(run["seconds"] for run in runs),
        rss_growth_kib=max(run["rss_growth_kib"] for run in runs),
        peak_rss_kib=max(run["peak_rss_kib"] for run in runs),
        traced_peak_bytes=traced["traced_peak_bytes"],
        outcome=runs[0]["result"],
    )


def _child(kind: str, path: Path, trace: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.cases", kind, str(path)]
    if trace:
        command.append("--tracemalloc")
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def format_table(results: list[Result]) -> str:
    by_name = {result.case.name: result for result in results}
    lines = [
        "| case | input | time | × baseline | RSS growth | × baseline | peak RSS | traced peak | result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        base = by_name.get(result.case.baseline, result)
        lines.append(
            f"| {result.case.name} | {format_size(result.input_bytes)} | {format_duration(result.seconds)}"
            f" | {result.seconds / base.seconds:.1f}"
            f" | {format_size(result.rss_growth_kib * 1024)}"
            f" | {format_ratio(result.rss_growth_kib, base.rss_growth_kib)}"
            f" | {format_size(result.peak_rss_kib * 1024)} | {format_size(result.traced_peak_bytes)}"
            f" | {result.outcome[:60]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median time)")
    parser.add_argument("cases", nargs="*", help="case names to run (default: all)")
    options = parser.parse_args()

    selected = [case for case in CASES if not options.cases or case.name in options.cases]
    results = []
    with tempfile.TemporaryDirectory(prefix="zhoubao-bench-") as folder:
        for case in selected:
            path = case.build(Path(folder))
            results.append(run_case(case, path, options.repeat))
            print(f"measured: {case.name}", file=sys.stderr)

    print(f"{dt.date.today().isoformat()}, {machine()}\n")
    print(format_table(results))


if __name__ == "__main__":
    main()
