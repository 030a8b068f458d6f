"""Scope outbox mail to the mailbox it is sent for, and add the mailbox leases.

Revision ID: 0005
Revises: 0004
Create Date: 2024-03-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each mailbox of a prefecture sends its mail through its own SMTP account. Replies take
    # the mailbox of the mail they answer; the service assigns the remaining rows at start-up.
    op.add_column("outbox", sa.Column("mailbox", sa.String(200), nullable=True))
    op.execute(sa.text(
        "UPDATE outbox SET mailbox = (SELECT messages.mailbox FROM messages"
        " WHERE messages.id = outbox.message_id) WHERE message_id IS NOT NULL"
    ))
    op.create_index("ix_outbox_mailbox_due", "outbox", ["mailbox", "status", "next_attempt_at"])

    # One row per mailbox: the process that may run intake on it until expires_at.
    op.create_table(
        "mailbox_leases",
        sa.Column("mailbox", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailbox_leases")
    op.drop_index("ix_outbox_mailbox_due", table_name="outbox")
    op.drop_column("outbox", "mailbox")
