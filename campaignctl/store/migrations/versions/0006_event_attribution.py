"""event attribution: records found by key alone; no index on event.message_id

`events ingest` (and every event producer) resolves an event naming
`campaign` + `record` to that record, then to its latest message of the
campaign sent before the event: the record is looked up by its key, which
the (audience, key) unique index cannot serve without the audience.

Events are resolved to their message through outbox.message_id; no query reads
event.message_id by value, and its index (long, random keys) was a sixth of
the work of storing each event.

Revision ID: 0006_event_attribution
Revises: 0005_outbox_handover
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_event_attribution"
down_revision = "0005_outbox_handover"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_record_key", "record", ["key"])
    op.drop_index("ix_event_message", table_name="event")


def downgrade() -> None:
    op.create_index("ix_event_message", "event", ["message_id"])
    op.drop_index("ix_record_key", table_name="record")
