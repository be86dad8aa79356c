"""outbox_handover: the slices of claimed messages a send handed to its transport

A send claims outbox rows in batches (`sending`), renders them, and hands them
to the transport a slice at a time. Just before a slice goes, a row here names
its messages (outbox id and Message-ID, as JSON) in a committed transaction;
`done_at` is set once every message of the slice has its outcome, and the send
deletes the row when it records the batch. After a crash, a dead sender's
claimed rows are: sent, when their slice is done and no other outcome was
written; uncertain, when their slice was handed over but not done; queued
again, when no slice names them (never handed over).

One small row per slice, rather than a mark on every outbox row, keeps the
per-slice writes off the outbox table and its indexes (benchmarks/send.py).

Revision ID: 0005_outbox_handover
Revises: 0004
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_handover"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("messages", sa.String(), nullable=False),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["wave_id"], ["wave.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_handover_holder", "outbox_handover", ["wave_id", "holder"])


def downgrade() -> None:
    op.drop_index("ix_outbox_handover_holder", table_name="outbox_handover")
    op.drop_table("outbox_handover")
