"""Add the outbox's notice key, explained 核实性 findings and the units' summary materials.

Revision ID: 0004
Revises: 0003
Create Date: 2024-03-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    # One row per notice and recipient: a second planner that races the first fails on insert.
    op.add_column("outbox", sa.Column("notice_key", sa.String(400), nullable=True))
    # Scheduled notices queued before this revision have a kind such as "reminder; week=3".
    op.execute(sa.text(
        "UPDATE outbox SET notice_key = kind || '; to=' || lower(recipient) WHERE kind LIKE '%; %'"
    ))
    op.create_index("uq_outbox_notice_key", "outbox", ["notice_key"], unique=True)

    op.create_table(
        "finding_explanations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(),
                  sa.ForeignKey("submissions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code", sa.String(8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _timestamp("explained_at"),
        sa.UniqueConstraint("submission_id", "code", name="uq_finding_explanations"),
    )

    op.create_table(
        "summary_materials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        # [{"name", "size", "sha256"}] of the files kept in the archived mail's raw bytes.
        sa.Column("files", sa.JSON(), nullable=False),
        # Download links of large attachments (163 and QQ Mail), which expire.
        sa.Column("links", sa.JSON(), nullable=False),
        _timestamp("received_at"),
        _timestamp("created_at"),
        sa.UniqueConstraint("message_id", "unit_id", name="uq_summary_materials_message"),
    )
    op.create_index("ix_summary_materials_unit_id", "summary_materials", ["unit_id"])


def downgrade() -> None:
    op.drop_index("ix_summary_materials_unit_id", table_name="summary_materials")
    op.drop_table("summary_materials")
    op.drop_table("finding_explanations")
    op.drop_index("uq_outbox_notice_key", table_name="outbox")
    op.drop_column("outbox", "notice_key")
