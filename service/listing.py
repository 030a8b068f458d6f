"""Read stored submissions for the ``submissions`` command, as JSON-ready dicts or a text table."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from store import repository
from store.models import Message, Submission
from store.session import Database


def submission_as_dict(submission: Submission) -> dict:
    """Return one submission in the documented JSON shape of ``zhoubao submissions --json``."""
    rows = []
    for row in submission.rows:
        values: dict[str, int | str | None] = {str(column): value for column, value in row.values().items()}
        values["备注"] = row.remark
        rows.append(values)
    return {
        "id": submission.id,
        "unit": submission.unit.name,
        "week": submission.week,
        "status": str(submission.status),
        "late": submission.late,
        "rules": sorted({violation.rule for violation in submission.violations}),
        "message_id": submission.message.message_id_header,
        "file_name": submission.file_name,
        "received_at": submission.received_at.isoformat(),
        "rows": rows,
    }


def submissions_as_dicts(database: Database, units: Collection[str] | None = None) -> list[dict]:
    """Return every submission as :func:`submission_as_dict` does, of ``units`` only when given."""
    with database.session() as session:
        return [submission_as_dict(item) for item in repository.list_submissions(session)
                if units is None or item.unit.name in units]


STATUS_LABELS = {"accepted": "已通过", "rejected": "已退回", "superseded": "已被新报表替代"}


def submissions_as_text(database: Database, units: Collection[str] | None = None) -> str:
    """Return one line per submission, of ``units`` only when given, in Chinese, for a terminal."""
    items = submissions_as_dicts(database, units)
    if not items:
        return "数据库中还没有报表。"
    lines = []
    for item in items:
        late = "，逾期" if item["late"] else ""
        rules = f"，不符合：{'、'.join(item['rules'])}" if item["rules"] else ""
        lines.append(f"#{item['id']} {item['unit']} 第{item['week']}周：{STATUS_LABELS[item['status']]}{late}{rules}"
                     f"（{item['file_name']}）")
    return "\n".join(lines)


OUTCOME_LABELS = {
    "pending": "待处理",
    "accepted": "已通过",
    "rejected": "已退回",
    "unreadable": "无法读取",
    "held": "待人工核对",
    "ignored": "已忽略（自动回复、退信或本邮箱发出）",
    "failed": "处理出错",
    "summary": "总结材料",
}


def messages_as_text(database: Database, outcomes: list[str], tz, mailbox: str | None = None) -> str:
    """Return one block per archived mail with one of ``outcomes``, newest first, in Chinese.

    With ``mailbox`` (``Message.mailbox`` form), only the mail read from that mailbox.
    """
    statement = (
        select(Message.id, Message.internal_date, Message.received_at, Message.sender, Message.subject,
               Message.outcome, Message.error)
        .where(Message.outcome.in_(outcomes))
        .order_by(Message.id.desc())
    )
    if mailbox is not None:
        statement = statement.where(Message.mailbox == mailbox)
    with database.session() as session:
        rows = session.execute(statement).all()
    if not rows:
        return "没有符合条件的邮件。"
    blocks = []
    for pk, internal_date, received_at, sender, subject, outcome, error in rows:
        when = _chinese_time((internal_date or received_at).astimezone(tz))
        lines = [f"#{pk}  {when}收到  {OUTCOME_LABELS[str(outcome)]}", f"  发件人：{sender or '（无）'}",
                 f"  主题：{subject or '（无）'}"]
        if error and str(outcome) == "failed":
            lines.append(f"  错误：{error.strip().splitlines()[-1]}")
        elif error:
            lines.append(f"  原因：{error}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _chinese_time(moment) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"
