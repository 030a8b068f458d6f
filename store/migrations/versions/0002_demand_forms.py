"""Add the 附件1 demand forms and their rows.

Revision ID: 0002
Revises: 0001
Create Date: 2024-01-05 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "demand_forms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("units.id"), nullable=False),
        # StrEnum values as plain VARCHAR(16), as in 0001.
        sa.Column("status", sa.String(16), nullable=False),
        _text("file_name"),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("unit_text", sa.Text(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(100), nullable=True),
        _timestamp("received_at"),
        sa.Column(
            "superseded_by_id", sa.Integer(), sa.ForeignKey("demand_forms.id"), nullable=True
        ),
        _timestamp("created_at"),
        sa.UniqueConstraint("unit_id", "file_sha256", "source", name="uq_demand_forms_file"),
    )
    op.create_index("ix_demand_forms_message_id", "demand_forms", ["message_id"])
    # At most one accepted demand form per unit; older ones become 'superseded'.
    op.create_index(
        "uq_demand_forms_accepted",
        "demand_forms",
        ["unit_id"],
        unique=True,
        postgresql_where=sa.text("status = 'accepted'"),
        sqlite_where=sa.text("status = 'accepted'"),
    )

    op.create_table(
        "demand_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "demand_form_id",
            sa.Integer(),
            sa.ForeignKey("demand_forms.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        _text("experts"),
        _text("audience"),
        _text("time"),
        _text("place_mode"),
        _text("content"),
        _text("resources"),
        sa.Column("ref", sa.String(200), nullable=False),
    )
    op.create_index("ix_demand_rows_demand_form_id", "demand_rows", ["demand_form_id"])


def downgrade() -> None:
    op.drop_table("demand_rows")
    op.drop_table("demand_forms")
