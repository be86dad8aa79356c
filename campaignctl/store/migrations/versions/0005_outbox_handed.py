"""outbox.handed_at: when a claimed message was handed to its transport

A send claims rows in batches (`sending`), renders them, and hands them to the
transport a few at a time. `handed_at` is written, in its own committed
transaction, just before a row goes to the transport. After a crash, a dead
sender's rows with `handed_at` set may have reached the server and become
`uncertain`; the others were never handed over and go back to `queued`.
A claim clears it.

Revision ID: 0005_outbox_handed
Revises: 0004
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_handed"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("handed_at")
