"""Record each intake run in the database and mail the admin when intake turns unhealthy or recovers.

The health itself is worked out by :mod:`service.health` from the recorded runs. The alert and
the all-clear go through the outbox under notice keys that name the mailbox and the failure
episode, so that two processes, or one restarted, queue each of them once.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ingest.errors import AuthenticationFailed, ConfigError, StoreError
from notify.notices import AlertNotice
from service.clock import Clock
from service.config import Settings
from service.health import Health, HealthPolicy, Problem, RunRecord, evaluate, failed_runs
from service.health_text import alert_notice, recovery_notice
from service.intake import CycleReport, mailbox_key, run_intake
from service.replies import queue_alert
from store import health as store
from store.models import IntakeRun
from store.session import Database

logger = logging.getLogger(__name__)

# Runs older than this are deleted at the start of each run; the latest successful one is kept.
RUN_RETENTION = dt.timedelta(days=60)
# The recorded error text is cut to this many characters.
MAX_ERROR_LENGTH = 1000
SECRET_MASK = "**********"

_ALERT = "health-alert"
_RECOVERED = "health-recovered"
_EPISODE = re.compile(r"; after-run=(\d+); ")


def health_policy(settings: Settings) -> HealthPolicy:
    """Return the thresholds that ``[service]`` and ``[mailbox] poll_interval`` set."""
    return HealthPolicy.from_interval(settings.mailbox.poll_interval,
                                      settings.health.alert_after_failures,
                                      settings.health.alert_after_intervals)


def mailbox_label(settings: Settings) -> str:
    """Name the mailbox for the admin: ``county@163.com（imap.163.com，文件夹“INBOX”）``."""
    box = settings.mailbox
    return f"{box.username}（{box.host}，文件夹“{box.folder}”）"


def describe_error(err: BaseException, settings: Settings) -> str:
    """Return ``ExceptionClass: message`` on one line, with every configured secret masked."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    for secret in _secrets(settings):
        text = text.replace(secret, SECRET_MASK)
    return text[:MAX_ERROR_LENGTH]


def _secrets(settings: Settings) -> list[str]:
    found = []
    for secret in (settings.mailbox.password, settings.smtp.password):
        try:
            found.append(secret.reveal())
        except ConfigError:
            continue
    found.append(make_url(settings.database.url).password or "")
    # Longest first, so that a password containing another is masked whole.
    return sorted((secret for secret in found if secret), key=len, reverse=True)


# --- recording runs ----------------------------------------------------------------------------


def run_recorded_intake(settings: Settings, database: Database, now: Callable[[], dt.datetime],
                        should_stop: Callable[[], bool] = lambda: False) -> CycleReport:
    """Run :func:`service.intake.run_intake` and record it in intake_runs at its start and end.

    An exception is recorded as the run's error, then raised again. When the database cannot
    record the run, the error is logged and intake goes on without the record.
    """
    key = mailbox_key(settings)
    run_id = _start_run(database, key, now())
    report = CycleReport()
    try:
        run_intake(settings, database, now, should_stop, report)
    except Exception as err:
        _finish_run(database, key, run_id, now(), report, describe_error(err, settings))
        raise
    _finish_run(database, key, run_id, now(), report, None)
    return report


def _start_run(database: Database, key: str, now: dt.datetime) -> int | None:
    try:
        with database.session() as session:
            pruned = store.prune_runs(session, key, now - RUN_RETENTION)
            run = store.start_run(session, key, now)
    except SQLAlchemyError as err:
        logger.error("mailbox %s: recording the intake run's start failed: %s", key, err)
        return None
    if pruned:
        logger.info("mailbox %s: %d intake run(s) older than %d days deleted", key, pruned, RUN_RETENTION.days)
    return run.id


def _finish_run(database: Database, key: str, run_id: int | None, now: dt.datetime,
                report: CycleReport, error: str | None) -> None:
    if run_id is None:
        return
    counts = store.RunCounts(report.seen, report.processed, report.moved, report.failed)
    try:
        with database.session() as session:
            store.finish_run(session, run_id, now, counts, error)
    except SQLAlchemyError as err:
        logger.error("mailbox %s: recording the end of intake run #%d failed: %s", key, run_id, err)


# --- reading the health ------------------------------------------------------------------------


def read_health(session: Session, settings: Settings, now: dt.datetime) -> Health:
    """Return the configured mailbox's health at ``now`` from its recorded runs."""
    runs = [_record(run) for run in store.runs_since_success(session, mailbox_key(settings))]
    return evaluate(runs, now, health_policy(settings))


def _record(run: IntakeRun) -> RunRecord:
    return RunRecord(id=run.id, started_at=run.started_at, finished_at=run.finished_at, ok=run.ok,
                     error=run.error, seen=run.seen, processed=run.processed, moved=run.moved,
                     failed=run.failed)


# --- alerting ----------------------------------------------------------------------------------


def health_job(settings: Settings, database: Database, clock: Clock) -> bool:
    """Queue the admin's alert or all-clear when due; True unless the database failed."""
    try:
        with database.session() as session:
            queue_health_mail(session, settings, clock.now())
    except (StoreError, SQLAlchemyError) as err:
        logger.error("health: checking mailbox %s failed: %s", mailbox_key(settings), err)
        return False
    return True


def queue_health_mail(session: Session, settings: Settings, now: dt.datetime) -> int:
    """Queue the alert of the current failure episode, or the all-clear of the last one; no commit.

    Returns the number of mails queued: none when both are already in the outbox.
    """
    health = read_health(session, settings, now)
    if _login_rejected(health):
        # service.alerts mails the admin once about a rejected login, and again when it works.
        return 0
    if Problem.FAILING in health.problems or Problem.STALE in health.problems:
        notice = alert_notice(health, health_policy(settings), mailbox_label(settings),
                              settings.campaign.timezone)
        return _queue_once(session, settings, notice, _ALERT, health.episode, now)
    if health.healthy:
        return _queue_recovery(session, settings, health, now)
    return 0


def _login_rejected(health: Health) -> bool:
    """Tell whether the latest failure is a login the server rejected."""
    last = health.last_failure
    return last is not None and (last.error or "").startswith(f"{AuthenticationFailed.__name__}:")


def _queue_recovery(session: Session, settings: Settings, health: Health, now: dt.datetime) -> int:
    """Queue the all-clear of the newest alerted episode once a run after it succeeded."""
    key = mailbox_key(settings)
    alerts = store.queued_notice_keys(session, f"{_ALERT}; mailbox={key}; after-run=")
    episode = _episode_of(alerts[0]) if alerts else None
    if episode is None or health.last_success is None or health.last_success.id <= episode:
        return 0
    if store.queued_notice_keys(session, _episode_prefix(_RECOVERED, key, episode)):
        return 0

    runs = [_record(run) for run in store.runs_until_success(session, key, episode)]
    if not runs:
        return 0
    failures = failed_runs(runs[:-1], now, health_policy(settings))
    notice = recovery_notice(failures, runs[-1], mailbox_label(settings), settings.campaign.timezone)
    return _queue_once(session, settings, notice, _RECOVERED, episode, now)


def _queue_once(session: Session, settings: Settings, notice: AlertNotice, name: str, episode: int,
                now: dt.datetime) -> int:
    """Queue ``notice`` to every admin address that has not got this episode's ``name`` mail yet."""
    count = queue_alert(session, settings, notice, _episode_key(name, mailbox_key(settings), episode), now)
    if count:
        level = logging.WARNING if name == _ALERT else logging.INFO
        logger.log(level, "health: mailbox %s: %s mail for the episode after run #%d queued for %d address(es)",
                   mailbox_key(settings), name, episode, count)
    return count


def _episode_key(name: str, key: str, episode: int) -> str:
    return f"{name}; mailbox={key}; after-run={episode}"


def _episode_prefix(name: str, key: str, episode: int) -> str:
    """Return the start of the notice keys of one episode's mail, to each recipient."""
    return f"{_episode_key(name, key, episode)}; "


def _episode_of(notice_key: str) -> int | None:
    match = _EPISODE.search(notice_key)
    return int(match.group(1)) if match else None
