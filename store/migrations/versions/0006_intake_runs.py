"""Add the record of intake runs, which the health check and the admin's alerts read.

Revision ID: 0006
Revises: 0005
Create Date: 2024-03-10 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        # The folder's key, as messages.mailbox has it: user@host/folder.
        sa.Column("mailbox", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        # NULL while the run goes on, and for good when the process died during it.
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_intake_runs_mailbox_started", "intake_runs", ["mailbox", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_runs_mailbox_started", table_name="intake_runs")
    op.drop_table("intake_runs")
