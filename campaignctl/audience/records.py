"""Looking at records: one by key, and their JSON shape (a listing by segment is in
`segments`, which uses this shape)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from campaignctl.errors import UsageError
from campaignctl.store.store import Store
from campaignctl.store.tables import RECORD


def record_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as documented in docs/json.md."""
    attributes = row["attributes"]
    if isinstance(attributes, str):
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
