"""Results of ``zhoubao doctor``'s checks, the pure verdicts behind them, and their Chinese report.

Nothing here does I/O: :mod:`service.doctor` gathers the facts and passes them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ingest.calendar import Campaign
from notify.render import format_datetime, format_deadline

GIB = 1024 ** 3
MIB = 1024 ** 2
# Free space in the data folder below which the check warns, and below which it fails: the
# database grows by each archived mail (up to [limits] max_message_mb) and SQLite needs room for
# its write-ahead log.
DISK_WARN_BYTES = 1 * GIB
DISK_FAIL_BYTES = 100 * MIB


class Status(StrEnum):
    """Outcome of one check; only FAILED makes ``zhoubao doctor`` exit non-zero."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"


SYMBOLS = {Status.OK: "✓", Status.WARNING: "!", Status.FAILED: "✗"}


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: what was checked, the outcome, what was found and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.OK, detail)


def warned(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARNING, detail, fix)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAILED, detail, fix)


def exit_code(results: Sequence[CheckResult]) -> int:
    """Return 1 when any check failed, else 0: warnings do not count."""
    return 1 if any(result.status is Status.FAILED for result in results) else 0


def format_report(results: Sequence[CheckResult]) -> str:
    """Return one line per check, each failure or warning followed by its fix, then a summary."""
    lines = []
    for result in results:
        lines.append(f"{SYMBOLS[result.status]} {result.name}：{result.detail}")
        if result.fix:
            lines.append(f"    处理办法：{result.fix}")
    lines.append(_summary(results))
    return "\n".join(lines)


def _summary(results: Sequence[CheckResult]) -> str:
    failures = sum(result.status is Status.FAILED for result in results)
    warnings = sum(result.status is Status.WARNING for result in results)
    if failures:
        return (f"共 {len(results)} 项检查，{failures} 项未通过，{warnings} 项警告。"
                "请按上面的处理办法解决后，再运行 zhoubao doctor 检查。")
    if warnings:
        return f"共 {len(results)} 项检查，全部通过，其中 {warnings} 项警告不影响收报，可按处理办法改进。"
    return f"共 {len(results)} 项检查，全部通过。"


def format_bytes(size: int) -> str:
    """Return a size as ``35.2 GiB`` or ``850 MiB``."""
    if size >= GIB:
        return f"{size / GIB:.1f} GiB"
    return f"{size // MIB} MiB"


def disk_result(folder: Path, free: int) -> CheckResult:
    """Judge the free space, in bytes, of the disk that contains ``folder``."""
    name = "磁盘空间"
    detail = f"{folder} 所在磁盘可用 {format_bytes(free)}"
    fix = (f"请清理该磁盘（例如删除旧日志和旧备份）或把 [service] data_dir 移到更大的磁盘。"
           f"可用空间低于 {format_bytes(DISK_FAIL_BYTES)} 时数据库可能无法写入，收到的邮件将无法保存。")
    if free < DISK_FAIL_BYTES:
        return failed(name, detail, fix)
    if free < DISK_WARN_BYTES:
        return warned(name, f"{detail}，少于 {format_bytes(DISK_WARN_BYTES)}", fix)
    return passed(name, detail)


def revision_result(current: str | None, head: str, known: Sequence[str], upgrade_command: str,
                    where: str) -> CheckResult:
    """Judge the database's Alembic revision against the newest one this program ships.

    ``where`` names the database (its URL without the password); ``upgrade_command`` is the
    command line that migrates it.
    """
    name = "数据库"
    if current == head:
        return passed(name, f"{where} 已连接，版本 {head}（最新）")
    if current is None:
        return failed(name, f"{where} 已连接，但其中还没有本系统的数据表",
                      f"请运行 {upgrade_command} 建表；启动服务时也会自动建表。")
    if current in known:
        return failed(name, f"{where} 的版本为 {current}，低于本程序所需的 {head}",
                      f"请先备份数据库，再运行 {upgrade_command} 升级；启动服务时也会自动升级。")
    return failed(name, f"{where} 的版本为 {current}，本程序不认识（本程序最新为 {head}），可能由更新版本的 zhoubao 建立",
                  "请安装与该数据库相应的新版 zhoubao，不要用旧版程序运行，以免数据出错。")


def timezone_result(campaign: Campaign, zone_name: str, now: dt.datetime) -> CheckResult:
    """Print the local time in the campaign's zone and the next deadline; warn once it is over."""
    name = "时区"
    tz = campaign.timezone
    local = f"{zone_name}，当地时间 {format_datetime(now, tz)}"
    week = campaign.week_due_after(now)
    if week is None:
        return warned(name, f"{local}；本次活动最后一周的截止时间 {format_deadline(campaign.last_deadline, tz)} 已过",
                      "新一期活动开始前，请在配置文件 [campaign] 一节填写新的 name、first_deadline 和 last_deadline。")
    return passed(name, f"{local}；下一个截止时间：第{week}周 {format_deadline(campaign.deadline(week), tz)}")
