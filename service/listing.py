"""Read stored submissions for the ``submissions`` command, as JSON-ready dicts or a text table."""

from __future__ import annotations

from store import repository
from store.models import Submission
from store.session import Database


def submission_as_dict(submission: Submission) -> dict:
    """Return one submission in the documented JSON shape of ``zhoubao submissions --json``."""
    rows = []
    for row in submission.rows:
        values: dict[str, int | str | None] = {str(column): value for column, value in row.values().items()}
        values["备注"] = row.remark
        rows.append(values)
    return {
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


def submissions_as_dicts(database: Database) -> list[dict]:
    with database.session() as session:
        return [submission_as_dict(item) for item in repository.list_submissions(session)]


STATUS_LABELS = {"accepted": "已通过", "rejected": "已退回", "superseded": "已被新报表替代"}


def submissions_as_text(database: Database) -> str:
    """Return one line per submission, in Chinese, for a terminal."""
    items = submissions_as_dicts(database)
    if not items:
        return "数据库中还没有报表。"
    lines = []
    for item in items:
        late = "，逾期" if item["late"] else ""
        rules = f"，不符合：{'、'.join(item['rules'])}" if item["rules"] else ""
        lines.append(f"{item['unit']} 第{item['week']}周：{STATUS_LABELS[item['status']]}{late}{rules}"
                     f"（{item['file_name']}）")
    return "\n".join(lines)
