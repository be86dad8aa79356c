"""report indexes: covering indexes so that the report's counts read indexes, not rows

`campaignctl report` counts distinct records per campaign in the outbox and
distinct messages and records per campaign and event type: with these indexes
each count is one ordered scan of an index (no table row read, no sort), which
keeps the campaign list and a campaign report under a second on a million
messages and three million events (benchmarks/report.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_campaign_record", "outbox", ["campaign_id", "record_id", "state", "channel"]
    )
    # the few grouped messages (one email for several records), found without a table scan
    grouped = sa.text("group_key IS NOT NULL")
    op.create_index(
        "ix_outbox_grouped",
        "outbox",
        ["campaign_id", "wave_id", "channel", "group_key"],
        sqlite_where=grouped,
        postgresql_where=grouped,
    )
    op.create_index(
        "ix_event_campaign_type_target", "event", ["campaign_id", "type", "outbox_id", "record_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_event_campaign_type_target", table_name="event")
    op.drop_index("ix_outbox_grouped", table_name="outbox")
    op.drop_index("ix_outbox_campaign_record", table_name="outbox")
