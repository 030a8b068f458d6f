"""Add the addresses that mail bounced from.

Revision ID: 0003
Revises: 0002
Create Date: 2024-01-12 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bouncing_addresses",
        # Lower-case addr-spec; RFC 5321 section 4.5.3.1.3 allows 320 characters in a path.
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bouncing_addresses")
