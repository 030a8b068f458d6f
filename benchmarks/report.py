"""Format the numbers of the benchmark reports and describe the machine they ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def format_ratio(value: int, base: int) -> str:
    # A normal table may not raise the process's peak at all (growth 0), so no ratio exists.
    return f"{value / base:.1f}" if base > 0 else "–"


def format_duration(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / 1024 / 1024:.1f} MiB"
    return f"{count / 1024:.0f} KiB"


def machine() -> str:
    """Describe this machine: OS, CPU model and count, memory and Python version."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.machine()
    memory = _proc_field("/proc/meminfo", "MemTotal")
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} × {cpu}, "
            f"{memory} RAM, Python {platform.python_version()}")


def _proc_field(path: str, name: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None
