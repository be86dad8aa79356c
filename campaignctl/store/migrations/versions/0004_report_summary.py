"""report summary: figures kept up to date by `report` itself, from watermarks

A report over a million messages and three million events cannot aggregate the
raw rows in under a second, so `report` keeps (on SQLite) a summary it brings up
to date before reading, from what changed since it last looked: the events
added since the last event rowid it saw, and the outbox rows that reached a
final state (sent, bounced, failed, suppressed, skipped: rows never leave those)
in the waves that were still open or got new rows. campaignctl/report/summary.py
says what each table holds. Nothing else writes these tables, and they can be
emptied at any time: the next report rebuilds them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_mark",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_mark", sa.BigInteger, nullable=False),
        sa.Column("outbox_mark", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "report_message",
        sa.Column("outbox_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("counted", sa.Integer, nullable=False),
    )
    op.create_table(
        "report_cell",
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("wave_id", sa.Integer, nullable=False),
        sa.Column("segment", sa.String, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("sms_parts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("wave_id", "segment", "channel", "state", "flags"),
    )
    op.create_index("ix_report_cell_campaign", "report_cell", ["campaign_id"])
    op.create_table(
        "report_open_wave",
        sa.Column("wave_id", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "report_seen",
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "scope", "record_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_count",
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "scope"),
    )
    op.create_table(
        "report_first_answer",
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("answer_key", sa.String, nullable=False),
        sa.Column("first_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "answer_key"),
    )


def downgrade() -> None:
    for table in (
        "report_first_answer",
        "report_count",
        "report_seen",
        "report_open_wave",
        "report_cell",
        "report_message",
        "report_mark",
    ):
        op.drop_table(table)
