"""Looking at records: one by key, a listing by segment, their JSON shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa

from campaignctl.errors import UsageError
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.store.tables import RECORD


def record_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as documented in docs/json.md."""
    attributes = row["attributes"]
    if isinstance(attributes, str):
        import json

        attributes = json.loads(attributes)
    return {
        "audience": row["audience"],
        "key": row["key"],
        "email": row["email"],
        "phone": row["phone"],
        "category": row["category"],
        "status": str(row["status"]),
        "attributes": attributes or {},
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "removed_at": _iso(row["removed_at"]),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def find_records(store: Store, key: str, audience: str | None = None) -> list[dict[str, Any]]:
    """Records with that key (one per audience holding it); raises UsageError when none."""
    query = sa.select(RECORD).where(RECORD.c.key == key).order_by(RECORD.c.audience)
    if audience:
        query = query.where(RECORD.c.audience == audience)
    with store.read() as conn:
        rows = [record_json(r._mapping) for r in conn.execute(query)]
    if not rows:
        where = f" in audience {audience!r}" if audience else ""
        raise UsageError(
            f"no record with key {key!r}{where}",
            hint="import the audience first: campaignctl audience import",
        )
    return rows


def list_records(
    store: Store,
    workspace: Workspace,
    *,
    segment: str | None,
    audience: str | None,
    limit: int,
    today: date,
) -> list[dict[str, Any]]:
    """Active records of a segment or an audience, by key, at most `limit`."""
    query = sa.select(RECORD).where(RECORD.c.status == "active")
    if segment:
        from campaignctl.audience.segments import segment_condition

        query = sa.select(RECORD).where(segment_condition(workspace, segment, today, store.dialect))
    elif audience:
        query = query.where(RECORD.c.audience == audience)
    with store.read() as conn:
        rows = conn.execute(query.order_by(RECORD.c.audience, RECORD.c.key).limit(limit))
        return [record_json(r._mapping) for r in rows]
