"""Queries and writes behind the health check: intake runs, outbox counts, health alerts queued.

Every function takes an open :class:`~sqlalchemy.orm.Session` and flushes at most, as in
:mod:`store.repository`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.models import IntakeRun, OutboxMail, OutboxStatus


@dataclass(frozen=True)
class RunCounts:
    """Counts of one intake run: messages seen, decided, moved and failed."""

    seen: int = 0
    processed: int = 0
    moved: int = 0
    failed: int = 0


def start_run(session: Session, mailbox: str, now: dt.datetime) -> IntakeRun:
    """Insert a run that started at ``now``; it counts as unfinished until :func:`finish_run`."""
    run = IntakeRun(mailbox=mailbox, started_at=now, finished_at=None, seen=0, processed=0,
                    moved=0, failed=0, ok=False, error=None)
    session.add(run)
    session.flush()
    return run


def finish_run(session: Session, run_id: int, now: dt.datetime, counts: RunCounts,
               error: str | None) -> None:
    """Mark run ``run_id`` finished at ``now``: successful when ``error`` is None."""
    run = session.get_one(IntakeRun, run_id)
    run.finished_at = now
    run.seen, run.processed = counts.seen, counts.processed
    run.moved, run.failed = counts.moved, counts.failed
    run.ok = error is None
    run.error = error
    session.flush()


def prune_runs(session: Session, mailbox: str, before: dt.datetime) -> int:
    """Delete the mailbox's runs started before ``before``, except its latest successful run.

    That run dates the current failure episode, so keeping it keeps each episode's alert key
    stable however long the episode lasts. Returns the number of rows deleted.
    """
    keep = latest_success_id(session, mailbox)
    statement = delete(IntakeRun).where(IntakeRun.mailbox == mailbox, IntakeRun.started_at < before)
    if keep is not None:
        statement = statement.where(IntakeRun.id != keep)
    return session.execute(statement).rowcount


def latest_success_id(session: Session, mailbox: str) -> int | None:
    """Return the id of the mailbox's latest successful run, or None when none succeeded."""
    statement = select(func.max(IntakeRun.id)).where(IntakeRun.mailbox == mailbox, IntakeRun.ok.is_(True))
    return session.scalar(statement)


def runs_since_success(session: Session, mailbox: str) -> list[IntakeRun]:
    """Return the mailbox's latest successful run and every run after it, oldest first.

    Without a successful run, every recorded run of the mailbox is returned.
    """
    statement = select(IntakeRun).where(IntakeRun.mailbox == mailbox).order_by(IntakeRun.id)
    success = latest_success_id(session, mailbox)
    if success is not None:
        statement = statement.where(IntakeRun.id >= success)
    return list(session.scalars(statement))


def runs_until_success(session: Session, mailbox: str, after_id: int) -> list[IntakeRun]:
    """Return the mailbox's runs after run ``after_id`` up to its first successful one, oldest first.

    Empty when no run after ``after_id`` succeeded.
    """
    success = session.scalar(select(func.min(IntakeRun.id)).where(
        IntakeRun.mailbox == mailbox, IntakeRun.id > after_id, IntakeRun.ok.is_(True)))
    if success is None:
        return []
    statement = (select(IntakeRun)
                 .where(IntakeRun.mailbox == mailbox, IntakeRun.id > after_id, IntakeRun.id <= success)
                 .order_by(IntakeRun.id))
    return list(session.scalars(statement))


def outbox_counts(session: Session) -> dict[OutboxStatus, int]:
    """Count the outbox's mails in each delivery state."""
    statement = select(OutboxMail.status, func.count()).group_by(OutboxMail.status)
    counts = dict.fromkeys(OutboxStatus, 0)
    counts.update({OutboxStatus(status): count for status, count in session.execute(statement)})
    return counts


def queued_notice_keys(session: Session, prefix: str) -> list[str]:
    """Return the outbox's notice keys that start with ``prefix``, newest first."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    statement = (
        select(OutboxMail.notice_key)
        .where(OutboxMail.notice_key.like(f"{escaped}%", escape="\\"))
        .order_by(OutboxMail.id.desc())
    )
    return list(session.scalars(statement))
