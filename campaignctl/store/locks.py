"""The lock in force of a campaign: the one query `lock`, `send` and `export` share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from campaignctl.store.tables import LOCK


def active_lock(conn: sa.Connection, campaign_id: int) -> Any:
    """The campaign's lock in force (the latest not released) as a row, or None."""
    return conn.execute(
        sa.select(LOCK)
        .where(LOCK.c.campaign_id == campaign_id, LOCK.c.released_at.is_(None))
        .order_by(LOCK.c.id.desc())
    ).first()


def active_lock_id(conn: sa.Connection, campaign_id: int) -> int | None:
    """The id of the campaign's lock in force (the latest not released), if any."""
    row = active_lock(conn, campaign_id)
    return int(row.id) if row is not None else None
