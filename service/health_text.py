"""Chinese wording of the health state: ``zhoubao health`` output, its JSON, and the admin's alerts.

Pure formatting of a :class:`service.health.Health`; nothing here reads the database or the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from notify.notices import AlertNotice
from notify.render import format_datetime
from service.health import Health, HealthPolicy, Problem, RunRecord, RunState

# Advice for the last error, by the exception class name that starts the recorded error text.
_DATABASE_ADVICE = ("数据库无法访问。请检查数据库服务是否在运行、配置文件 [database] 一节的 url 是否正确，"
                    "以及数据所在的磁盘是否已满。")
_ADVICE = {
    "AuthenticationFailed": (
        "邮箱拒绝登录，通常是客户端授权码已失效或被重置，或邮箱的 IMAP 服务被关闭。请登录邮箱网页版，"
        "在“设置 → POP3/SMTP/IMAP”中确认 IMAP/SMTP 服务已开启，重新生成授权码，"
        "写入配置文件 [mailbox] 一节 password_env 指定的环境变量（或 password_file 指定的文件），然后重启服务。"
    ),
    "ConfigError": "配置文件有误或授权码无法读取，错误信息中写明了出错的项目和修改方法。改正后请重启服务。",
    "MailboxError": (
        "无法连接邮箱服务器，或服务器拒绝了收信命令。请检查服务器能否访问外网，以及配置文件 [mailbox] 一节的 "
        "host、port、security 是否正确；错误信息含 Unsafe Login 时，请在邮箱网页版中确认 IMAP 服务已开启。"
    ),
    "StoreError": _DATABASE_ADVICE,
    "OperationalError": _DATABASE_ADVICE,
}
_UNKNOWN_ADVICE = "请查看服务日志中这一时刻的 ERROR 行，其中有完整的出错信息。"
_NEVER_RUN_ADVICE = ("服务还没有完成过一轮收信。请启动服务（zhoubao --config 配置文件 run，或 systemctl start zhoubao），"
                     "几分钟后再查看；已启动的，请查看服务日志。")
_ABANDONED_ADVICE = ("这一轮收信开始后没有结束，服务进程可能在收信过程中被终止（例如服务器重启或内存不足）。"
                     "请查看服务日志和系统日志。")
_STALE_ADVICE = ("服务可能已停止运行，或收信过程卡住了。请确认 zhoubao 服务正在运行，查看服务日志，"
                 "必要时重启服务。")
_CHECK_ADVICE = ("请在服务器上运行 zhoubao doctor：它逐项检查配置文件、数据库、收信和发信登录、磁盘空间和时区，"
                 "并给出每一项的处理办法。运行 zhoubao health 可随时查看收信状态。")

_STATE_TEXT = {
    RunState.SUCCEEDED: "成功",
    RunState.FAILED: "失败",
    RunState.RUNNING: "进行中",
    RunState.ABANDONED: "未结束（进程可能已中断）",
}


def describe_duration(delta: dt.timedelta) -> str:
    """Return a duration as ``2 天 3 小时``, ``1 小时 5 分钟`` or ``15 分钟`` (at least 1 分钟)."""
    minutes = max(1, int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {minutes} 分钟" if minutes else f"{hours} 小时"
    return f"{minutes} 分钟"


def problem_sentences(health: Health, policy: HealthPolicy, mailbox: str, tz: ZoneInfo) -> list[str]:
    """Return one Chinese sentence for each problem of ``health``."""
    sentences = []
    if Problem.NEVER_RUN in health.problems:
        sentences.append(f"邮箱 {mailbox}还没有任何收信记录：服务可能从未启动，或配置的数据库不是服务所用的那个。")
    if Problem.FAILING in health.problems:
        last = health.last_failure
        sentences.append(
            f"自{format_datetime(health.failing_since, tz)}起，从邮箱 {mailbox}收取报表已连续失败 "
            f"{health.consecutive_failures} 次，最近一次在{format_datetime(last.started_at, tz)}。"
        )
    if Problem.LOGIN_REJECTED in health.problems:
        sentences.append(f"邮箱 {mailbox}在最近一轮收信时拒绝了登录，授权码可能已过期；"
                         "系统已另发邮件提示管理员，更新授权码并重启服务后恢复。")
    if Problem.STALE in health.problems:
        idle = health.checked_at - health.last_activity
        sentences.append(
            f"已有 {describe_duration(idle)}没有完成一轮收信（最近一次在{format_datetime(health.last_activity, tz)}），"
            f"超过了 {describe_duration(policy.stale_after)}的报警时限。"
        )
    return sentences


def advice(health: Health) -> str:
    """Return what the admin should check, from the last failure's error or the problem."""
    last = health.last_failure
    if last is not None and last.finished_at is None:
        return _ABANDONED_ADVICE
    if last is not None and last.error:
        return _ADVICE.get(_error_class(last.error), _UNKNOWN_ADVICE)
    if Problem.NEVER_RUN in health.problems:
        return _NEVER_RUN_ADVICE
    if Problem.STALE in health.problems:
        return _STALE_ADVICE
    return _UNKNOWN_ADVICE


def alert_notice(health: Health, policy: HealthPolicy, mailbox: str, tz: ZoneInfo) -> AlertNotice:
    """Return the alert mailed to the admin when the service turns unhealthy."""
    if Problem.FAILING in health.problems:
        title = f"收信已连续失败 {health.consecutive_failures} 次，乡镇报表暂时无法自动接收"
    else:
        title = f"已有 {describe_duration(health.checked_at - health.last_activity)}没有完成收信，乡镇报表暂时无法自动接收"
    lines = problem_sentences(health, policy, mailbox, tz)
    last = health.last_failure
    if last is not None and last.error:
        lines.append(f"最近一次的错误信息：{last.error}")
    lines += [
        advice(health),
        _CHECK_ADVICE,
        "故障期间乡镇发来的邮件仍留在邮箱中，恢复后会按顺序处理并回复，无需乡镇重新发送。"
        "恢复正常时，系统会再发一封邮件告知；在此之前，本提示不再重复发送。",
    ]
    return AlertNotice(title=title, lines=lines, as_of=health.checked_at, tz=tz)


def recovery_notice(failures: Sequence[RunRecord], recovered: RunRecord, mailbox: str,
                    tz: ZoneInfo) -> AlertNotice:
    """Return the all-clear mailed to the admin when intake works again after an alert.

    ``failures`` are the episode's failed runs, oldest first; ``recovered`` the successful run
    that ended it.
    """
    finished = recovered.finished_at or recovered.started_at
    lines = []
    if failures:
        lines.append(
            f"自{format_datetime(failures[0].started_at, tz)}起的收信故障已经结束，期间共有 "
            f"{len(failures)} 轮收信失败。"
        )
    lines += [
        f"{format_datetime(finished, tz)}，从邮箱 {mailbox}收信成功：查看 {recovered.seen} 封，"
        f"处理 {recovered.processed} 封。",
        "故障期间到达的邮件在恢复后照常处理并回复，无需乡镇重新发送。",
    ]
    return AlertNotice(title="收信已恢复正常", lines=lines, as_of=finished, tz=tz)


def format_health(health: Health, policy: HealthPolicy, mailbox: str,
                  outbox: dict[str, int], tz: ZoneInfo) -> str:
    """Return the ``zhoubao health`` report: the state, the runs, the outbox, the problems."""
    lines = [
        f"收信状态：{'正常' if health.healthy else '异常'}",
        f"邮箱：{mailbox}",
        f"检查时间：{format_datetime(health.checked_at, tz)}",
        f"最近一轮收信：{_run_text(health.last_run, health.last_run_state, tz)}",
        f"最近一次成功：{_time_text(health.last_success, tz)}",
        f"连续失败：{health.consecutive_failures} 次（达到 {policy.alert_after_failures} 次即报警）",
        f"发送队列：待发送 {outbox.get('pending', 0)} 封，发送失败 {outbox.get('failed', 0)} 封",
    ]
    if health.healthy:
        return "\n".join(lines)

    lines += [f"问题：{sentence}" for sentence in problem_sentences(health, policy, mailbox, tz)]
    last = health.last_failure
    if last is not None and last.error:
        lines.append(f"最近一次错误：{last.error}")
    lines.append(f"处理办法：{advice(health)}")
    lines.append(_CHECK_ADVICE)
    return "\n".join(lines)


def health_as_dict(health: Health, mailbox_key: str, outbox: dict[str, int]) -> dict[str, object]:
    """Return the health as JSON-ready data for ``zhoubao health --json``; times in ISO 8601."""
    last = health.last_failure
    return {
        "healthy": health.healthy,
        "problems": [str(problem) for problem in health.problems],
        "checked_at": health.checked_at.isoformat(),
        "mailbox": mailbox_key,
        "last_run": _run_dict(health.last_run, health.last_run_state),
        "last_success": _run_dict(health.last_success, RunState.SUCCEEDED),
        "consecutive_failures": health.consecutive_failures,
        "failing_since": _iso(health.failing_since),
        "last_error": last.error if last is not None else None,
        "outbox": dict(outbox),
    }


def _error_class(error: str) -> str:
    return error.partition(":")[0].strip()


def _run_text(run: RunRecord | None, state: RunState | None, tz: ZoneInfo) -> str:
    if run is None:
        return "无"
    text = f"{format_datetime(run.started_at, tz)}开始，{_STATE_TEXT[state]}"
    if run.finished_at is None:
        return text
    return (f"{text}；查看 {run.seen} 封，处理 {run.processed} 封，移入已处理文件夹 {run.moved} 封，"
            f"处理出错 {run.failed} 封")


def _time_text(run: RunRecord | None, tz: ZoneInfo) -> str:
    if run is None:
        return "无"
    return format_datetime(run.finished_at or run.started_at, tz)


def _run_dict(run: RunRecord | None, state: RunState | None) -> dict[str, object] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "state": str(state),
        "started_at": run.started_at.isoformat(),
        "finished_at": _iso(run.finished_at),
        "seen": run.seen,
        "processed": run.processed,
        "moved": run.moved,
        "failed": run.failed,
        "error": run.error,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
