"""The health state as a pure function of the recorded intake runs, and its Chinese wording."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from notify.render import render_notice
from service.health import Health, HealthPolicy, Problem, RunRecord, RunState, evaluate, run_state
from service.health_text import (
    alert_notice,
    describe_duration,
    format_health,
    health_as_dict,
    recovery_notice,
)

UTC = dt.timezone.utc
BEIJING = ZoneInfo("Asia/Shanghai")
# 2024年1月12日 19:00 in Beijing.
T0 = dt.datetime(2024, 1, 12, 11, 0, tzinfo=UTC)
# Polls every 5 minutes; alert after 3 failures or 15 minutes without a finished run.
POLICY = HealthPolicy.from_interval(300, alert_after_failures=3, alert_after_intervals=3)
MAILBOX = "county@example.test（127.0.0.1，文件夹“INBOX”）"
LOGIN_ERROR = "AuthenticationFailed: mailbox county@example.test@127.0.0.1:143/INBOX: login rejected"


def minutes(value: float) -> dt.timedelta:
    return dt.timedelta(minutes=value)


def run(run_id: int, start: float, *, ok: bool = True, error: str | None = None,
        finished: bool = True, seen: int = 0) -> RunRecord:
    """A run that started ``start`` minutes after T0 and, when finished, took one minute."""
    started = T0 + minutes(start)
    return RunRecord(id=run_id, started_at=started, finished_at=started + minutes(1) if finished else None,
                     ok=ok, error=error if not ok else None, seen=seen, processed=seen, moved=seen)


CONNECT_ERROR = "MailboxError: mailbox county@example.test@127.0.0.1:143/INBOX: connect failed: timed out"


def failure(run_id: int, start: float, error: str = CONNECT_ERROR) -> RunRecord:
    return run(run_id, start, ok=False, error=error)


def at(offset: float) -> dt.datetime:
    return T0 + minutes(offset)


# --- run states --------------------------------------------------------------------------------


def test_finished_run_succeeded():
    assert run_state(run(1, 0), at(2), POLICY) is RunState.SUCCEEDED


def test_finished_run_failed():
    assert run_state(failure(1, 0), at(2), POLICY) is RunState.FAILED


def test_unfinished_run_within_interval_running():
    assert run_state(run(1, 0, finished=False), at(5), POLICY) is RunState.RUNNING


def test_unfinished_run_past_interval_abandoned():
    assert run_state(run(1, 0, finished=False), at(5.1), POLICY) is RunState.ABANDONED


# --- evaluation --------------------------------------------------------------------------------


def test_no_runs_never_run():
    health = evaluate([], at(0), POLICY)

    assert health.problems == (Problem.NEVER_RUN,)
    assert health.episode == 0
    assert health.last_run is None


def test_recent_success_healthy():
    health = evaluate([run(7, 0)], at(3), POLICY)

    assert health.healthy
    assert health.episode == 7
    assert health.consecutive_failures == 0
    assert health.last_success.id == 7


def test_two_failures_still_healthy():
    health = evaluate([run(1, 0), failure(2, 5), failure(3, 10)], at(12), POLICY)

    assert health.healthy
    assert health.consecutive_failures == 2
    assert health.failing_since == at(5)


def test_three_failures_unhealthy():
    health = evaluate([run(1, 0), failure(2, 5), failure(3, 10), failure(4, 15)], at(17), POLICY)

    assert health.problems == (Problem.FAILING,)
    assert health.consecutive_failures == 3
    assert health.failing_since == at(5)
    assert health.last_failure.id == 4
    assert health.episode == 1


def test_failures_before_success_not_counted():
    runs = [failure(1, 0), failure(2, 5), failure(3, 10), run(4, 15), failure(5, 20)]

    health = evaluate(runs, at(22), POLICY)

    assert health.healthy
    assert health.consecutive_failures == 1
    assert health.episode == 4


def test_never_succeeded_episode_zero():
    health = evaluate([failure(1, 0), failure(2, 5), failure(3, 10)], at(12), POLICY)

    assert health.problems == (Problem.FAILING,)
    assert health.episode == 0
    assert health.last_success is None


def test_runs_ordered_by_id():
    runs = [failure(4, 15), run(1, 0), failure(3, 10), failure(2, 5)]

    health = evaluate(runs, at(17), POLICY)

    assert health.last_run.id == 4
    assert [item.id for item in health.failures] == [2, 3, 4]


def test_threshold_of_one():
    policy = HealthPolicy.from_interval(300, alert_after_failures=1, alert_after_intervals=3)

    assert evaluate([run(1, 0), failure(2, 5)], at(10), policy).problems == (Problem.FAILING,)


def test_quick_retries_need_an_interval():
    # Intake retried after 6 and 12 seconds, as its back-off does after a failed cycle.
    runs = [run(1, 0), failure(2, 2), failure(3, 2.1), failure(4, 2.2)]

    assert evaluate(runs, at(4), POLICY).healthy
    assert evaluate(runs, at(7), POLICY).problems == (Problem.FAILING,)


def test_running_run_not_a_failure():
    runs = [run(1, 0), failure(2, 5), failure(3, 10), run(4, 15, finished=False)]

    health = evaluate(runs, at(17), POLICY)

    assert health.healthy
    assert health.last_run_state is RunState.RUNNING
    assert health.consecutive_failures == 2


def test_abandoned_run_counts_as_failure():
    runs = [run(1, 0), failure(2, 5), failure(3, 10), run(4, 15, finished=False)]

    health = evaluate(runs, at(21), POLICY)

    assert Problem.FAILING in health.problems
    assert health.last_failure.id == 4
    assert health.last_run_state is RunState.ABANDONED


def test_stale_after_three_intervals():
    # The last run finished at minute 1; 15 minutes later is the limit.
    assert evaluate([run(1, 0)], at(16), POLICY).healthy
    assert evaluate([run(1, 0)], at(16.1), POLICY).problems == (Problem.STALE,)


def test_stale_counts_failed_runs_as_activity():
    health = evaluate([run(1, 0), failure(2, 20)], at(30), POLICY)

    assert health.healthy
    assert health.last_activity == at(21)


def test_running_run_not_stale():
    # The service was down for an hour; its first run after the restart has just started.
    health = evaluate([run(1, 0), run(2, 60, finished=False)], at(61), POLICY)

    assert health.healthy


def test_first_run_hung_stale():
    health = evaluate([run(1, 0, finished=False)], at(16), POLICY)

    assert health.problems == (Problem.STALE,)
    assert health.last_activity == at(0)
    assert health.consecutive_failures == 1


def test_failing_and_stale_together():
    runs = [run(1, 0), failure(2, 5), failure(3, 10), failure(4, 15)]

    health = evaluate(runs, at(40), POLICY)

    assert health.problems == (Problem.FAILING, Problem.STALE)


@pytest.mark.parametrize("failures, intervals, stale_minutes", [(3, 3, 15), (5, 2, 10), (1, 10, 50)])
def test_policy_from_interval(failures, intervals, stale_minutes):
    policy = HealthPolicy.from_interval(300, failures, intervals)

    assert policy.alert_after_failures == failures
    assert policy.failing_for == minutes(5)
    assert policy.abandoned_after == minutes(5)
    assert policy.stale_after == minutes(stale_minutes)


# --- wording -----------------------------------------------------------------------------------


@pytest.mark.parametrize("delta, text", [
    (dt.timedelta(seconds=20), "1 分钟"),
    (minutes(15), "15 分钟"),
    (minutes(65), "1 小时 5 分钟"),
    (minutes(120), "2 小时"),
    (dt.timedelta(days=2), "2 天"),
    (dt.timedelta(days=1, hours=3, minutes=20), "1 天 3 小时"),
])
def test_describe_duration(delta, text):
    assert describe_duration(delta) == text


def failing_health(error: str = LOGIN_ERROR) -> Health:
    return evaluate([run(1, 0), failure(2, 5, error), failure(3, 10, error), failure(4, 15, error)], at(17), POLICY)


def alert_text(health: Health) -> str:
    return render_notice(alert_notice(health, POLICY, MAILBOX, BEIJING), signature="霍城县科协").text


def test_alert_title_counts_failures():
    assert alert_notice(failing_health(), POLICY, MAILBOX, BEIJING).title.startswith("收信已连续失败 3 次")


def test_alert_says_since_when():
    assert "自2024年1月12日 19:05（北京时间）起" in alert_text(failing_health())


def test_alert_quotes_last_error():
    assert f"最近一次的错误信息：{LOGIN_ERROR}" in alert_text(failing_health())


def test_alert_login_advice():
    assert "重新生成授权码" in alert_text(failing_health())


def test_alert_database_advice():
    assert "数据库服务是否在运行" in alert_text(failing_health("OperationalError: connection refused"))


def test_alert_unknown_error_advice():
    assert "服务日志" in alert_text(failing_health("KeyError: 'x'"))


def test_alert_names_doctor():
    assert "zhoubao doctor" in alert_text(failing_health())


def test_alert_promises_recovery_mail():
    assert "恢复正常时，系统会再发一封邮件告知" in alert_text(failing_health())


def test_alert_abandoned_run_advice():
    health = evaluate([run(1, 0), failure(2, 5), failure(3, 10), run(4, 15, finished=False)], at(21), POLICY)

    assert "进程可能在收信过程中被终止" in alert_text(health)


def test_stale_alert_title():
    health = evaluate([run(1, 0)], at(31), POLICY)

    notice = alert_notice(health, POLICY, MAILBOX, BEIJING)

    assert notice.title.startswith("已有 30 分钟没有完成收信")
    assert "超过了 15 分钟的报警时限" in alert_text(health)


def test_alert_subject_marked():
    rendered = render_notice(alert_notice(failing_health(), POLICY, MAILBOX, BEIJING))

    assert rendered.subject.startswith("系统提示：收信已连续失败 3 次")


def test_recovery_notice_summarises_episode():
    failures = [failure(2, 5), failure(3, 10), failure(4, 15)]

    notice = recovery_notice(failures, run(5, 20, seen=4), MAILBOX, BEIJING)
    text = render_notice(notice).text

    assert notice.title == "收信已恢复正常"
    assert "自2024年1月12日 19:05（北京时间）起的收信故障已经结束，期间共有 3 轮收信失败" in text
    assert "查看 4 封，处理 4 封" in text


def test_report_healthy():
    health = evaluate([run(1, 0, seen=2)], at(3), POLICY)

    text = format_health(health, POLICY, MAILBOX, {"pending": 1, "failed": 0}, BEIJING)

    assert text.splitlines()[0] == "收信状态：正常"
    assert "最近一轮收信：2024年1月12日 19:00（北京时间）开始，成功；查看 2 封" in text
    assert "发送队列：待发送 1 封，发送失败 0 封" in text
    assert "问题：" not in text


def test_report_unhealthy():
    text = format_health(failing_health(), POLICY, MAILBOX, {"pending": 0, "failed": 2}, BEIJING)

    assert text.splitlines()[0] == "收信状态：异常"
    assert "连续失败：3 次（达到 3 次即报警）" in text
    assert "问题：自2024年1月12日 19:05（北京时间）起" in text
    assert f"最近一次错误：{LOGIN_ERROR}" in text
    assert "处理办法：邮箱拒绝登录" in text


def test_report_never_run():
    text = format_health(evaluate([], at(0), POLICY), POLICY, MAILBOX, {}, BEIJING)

    assert "还没有任何收信记录" in text
    assert "最近一轮收信：无" in text


def test_report_abandoned_run():
    health = evaluate([run(1, 0, finished=False)], at(6), POLICY)

    text = format_health(health, POLICY, MAILBOX, {}, BEIJING)

    assert "开始，未结束（进程可能已中断）" in text


def test_json_fields():
    data = health_as_dict(failing_health(), "county@example.test@127.0.0.1/INBOX", {"pending": 0, "failed": 2})

    assert json.loads(json.dumps(data)) == data
    assert data["healthy"] is False
    assert data["problems"] == ["failing", "login-rejected"]
    assert data["consecutive_failures"] == 3
    assert data["failing_since"] == "2024-01-12T11:05:00+00:00"
    assert data["last_error"] == LOGIN_ERROR
    assert data["last_run"]["state"] == "failed"
    assert data["last_success"]["id"] == 1
    assert data["outbox"] == {"pending": 0, "failed": 2}


# --- a rejected login --------------------------------------------------------------------------


def test_rejected_login_unhealthy_at_once():
    health = evaluate([run(1, 0), failure(2, 5, error=LOGIN_ERROR)], at(7), POLICY)

    assert Problem.LOGIN_REJECTED in health.problems
    assert not health.healthy


def test_other_single_failure_still_healthy():
    assert evaluate([run(1, 0), failure(2, 5)], at(7), POLICY).healthy


def test_login_works_again_healthy():
    assert evaluate([run(1, 0), failure(2, 5, error=LOGIN_ERROR), run(3, 10)], at(12), POLICY).healthy
