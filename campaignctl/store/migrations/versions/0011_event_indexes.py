"""event indexes: two secondary indexes instead of four, so that recording events is cheap

Every event adds an entry to each index of the event table, and a big `events ingest`
spent most of its time there (issue 17: 1M events). The four secondary indexes become
two:

- `ix_event_campaign` (campaign_id, type, outbox_id, record_id, at) takes the place of
  ix_event_campaign_type (campaign_id, type, at), ix_event_campaign_type_target and
  ix_event_outbox: per campaign and type it still covers the report's counts of
  distinct messages and records and the answers' times, and a message's events are
  found by (its campaign, the type, the message), as every query now asks;
- `ix_event_record` (record_id, type) stays: what a record did (relaunch, automation
  conditions), and the record removals its foreign key follows.

And `ix_outbox_provider` gains the message id: an event naming an SMS by its provider's
id is linked to the first message with that id, which PostgreSQL found by walking the
whole outbox in id order (SQLite's index holds the id already): 200,000 events took
two minutes there.

Revision ID: 0011_event_indexes
Revises: 0010_automations
Create Date: 2026-12-06 14:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0011_event_indexes"
down_revision = "0010_automations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_event_campaign_type", table_name="event")
    op.drop_index("ix_event_outbox", table_name="event")
    op.drop_index("ix_event_campaign_type_target", table_name="event")
    op.create_index(
        "ix_event_campaign", "event", ["campaign_id", "type", "outbox_id", "record_id", "at"]
    )
    op.drop_index("ix_outbox_provider", table_name="outbox")
    op.create_index("ix_outbox_provider", "outbox", ["provider_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_provider", table_name="outbox")
    op.create_index("ix_outbox_provider", "outbox", ["provider_id"])
    op.drop_index("ix_event_campaign", table_name="event")
    op.create_index(
        "ix_event_campaign_type_target", "event", ["campaign_id", "type", "outbox_id", "record_id"]
    )
    op.create_index("ix_event_outbox", "event", ["outbox_id", "type"])
    op.create_index("ix_event_campaign_type", "event", ["campaign_id", "type", "at"])
