"""Create the initial schema: units, messages, submissions, report rows, violations, outbox.

Revision ID: 0001
Revises:
Create Date: 2023-12-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _state(name: str) -> sa.Column:
    # The models store StrEnum values as plain VARCHAR(16), without a database ENUM type.
    return sa.Column(name, sa.String(16), nullable=False)


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.UniqueConstraint("name", name="uq_units_name"),
    )

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mailbox", sa.String(200), nullable=False),
        sa.Column("uid_validity", sa.Integer(), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("message_id_header", sa.Text(), nullable=True),
        sa.Column("message_key", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _timestamp("internal_date", nullable=True),
        sa.Column("sender", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        _state("outcome"),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("received_at"),
        _timestamp("processed_at", nullable=True),
        _timestamp("moved_at", nullable=True),
        sa.UniqueConstraint("mailbox", "uid_validity", "uid", name="uq_messages_uid"),
        sa.UniqueConstraint("message_key", "sha256", name="uq_messages_content"),
    )

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("week", sa.Integer(), nullable=False),
        _state("status"),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("unit_text", sa.Text(), nullable=True),
        sa.Column("reporter", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(100), nullable=True),
        sa.Column("fill_date", sa.Date(), nullable=True),
        _timestamp("received_at"),
        sa.Column(
            "superseded_by_id", sa.Integer(), sa.ForeignKey("submissions.id"), nullable=True
        ),
        _timestamp("created_at"),
        sa.UniqueConstraint(
            "unit_id", "week", "file_sha256", "source", name="uq_submissions_file"
        ),
    )
    op.create_index("ix_submissions_message_id", "submissions", ["message_id"])
    # At most one accepted submission per unit and week; older ones become 'superseded'.
    op.create_index(
        "uq_submissions_accepted",
        "submissions",
        ["unit_id", "week"],
        unique=True,
        postgresql_where=sa.text("status = 'accepted'"),
        sqlite_where=sa.text("status = 'accepted'"),
    )

    op.create_table(
        "report_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "submission_id",
            sa.Integer(),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        *[sa.Column(f"c{column}", sa.Integer(), nullable=True) for column in range(2, 21)],
        sa.Column("remark", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
    )
    op.create_index("ix_report_rows_submission_id", "report_rows", ["submission_id"])

    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "submission_id",
            sa.Integer(),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rule", sa.String(8), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("cell", sa.String(200), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("found", sa.JSON(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
    )
    op.create_index("ix_violations_submission_id", "violations", ["submission_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("mail_message_id", sa.String(300), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        _state("status"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        sa.UniqueConstraint("mail_message_id", name="uq_outbox_mail_message_id"),
    )
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("violations")
    op.drop_table("report_rows")
    op.drop_table("submissions")
    op.drop_table("messages")
    op.drop_table("units")
