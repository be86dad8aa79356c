"""An import does not silently revert a value an accepted response wrote.

`responses accept` writes a recipient's answer into its record (DESIGN.md §4); the source
CSV still holds the old value until the office updates its own system (`responses export`
gives it the changes). A later `audience import` of a row that changed for another reason
would upsert the whole row, the old value included. As a CRM does, the accepted answer is
taken for newer than the import row: a field whose record still holds the value a response
accepted, and whose import row holds the value that response replaced, keeps the accepted
value. The import counts them ("kept N values changed by accepted responses") and the
audit log lists them. A source that holds anything else (the accepted value, or a third
value someone typed since) is imported as usual.

`accepted_values` reads, before the import writes, the fields to watch; `keep_accepted`
puts them back after it, in the import's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.enums import ResponseStatus
from campaignctl.store.tables import RECORD, RESPONSE

CHUNK = 1_000  # records read back at once


@dataclass(frozen=True)
class Accepted:
    """A field of a record whose value an accepted response wrote (and it still holds)."""

    response: int
    old: Any
    new: Any


def same(old: Any, new: Any) -> bool:
    """Whether an answer leaves a value as it was (the one comparison `responses` makes
    changes with, and the import keeps accepted values by): empty is empty, 20 is "20"."""
    if old == new:
        return True
    empty = (None, "", [])
    if old in empty and new in empty:
        return True
    for a, b in ((old, new), (new, old)):
        if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, str):
            return str(a) == b
    return False


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def accepted_values(conn: Connection, audience: str) -> dict[int, dict[str, Accepted]]:
    """record id -> field -> the latest accepted change of the field, for the records of
    `audience` that still hold the accepted value."""
    rows = conn.execute(
        sa.select(RESPONSE.c.id, RESPONSE.c.record_id, RESPONSE.c.changes, RECORD.c.attributes)
        .select_from(RESPONSE.join(RECORD, RECORD.c.id == RESPONSE.c.record_id))
        .where(RECORD.c.audience == audience, RESPONSE.c.status == str(ResponseStatus.ACCEPTED))
        .order_by(RESPONSE.c.processed_at, RESPONSE.c.id)
    )
    latest: dict[int, dict[str, Accepted]] = {}
    attributes: dict[int, dict[str, Any]] = {}
    for response, record_id, changes, record_attributes in rows:
        attributes[record_id] = dict(_json(record_attributes) or {})
        for name, change in (_json(changes) or {}).items():
            if isinstance(change, dict) and change.get("decision", "accepted") == "accepted":
                latest.setdefault(record_id, {})[name] = Accepted(
                    response, change.get("old"), change.get("new")
                )
    return {
        record_id: held
        for record_id, fields in latest.items()
        if (
            held := {
                name: a
                for name, a in fields.items()
                if same(attributes[record_id].get(name), a.new)
            }
        )
    }


def keep_accepted(
    conn: Connection,
    watched: dict[int, dict[str, Accepted]],
    *,
    email_field: str | None,
    phone_field: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Put back the accepted values the import replaced by the value they had replaced
    (and the record's email, phone or category column when the field is one); what was
    kept: one {record, field, response, kept, source} each."""
    if not watched:
        return []
    kept: list[dict[str, Any]] = []
    ids = sorted(watched)
    rows = sorted(
        (
            row
            for start in range(0, len(ids), CHUNK)  # SQLite takes 32,766 parameters at most
            for row in conn.execute(
                sa.select(RECORD.c.id, RECORD.c.key, RECORD.c.attributes).where(
                    RECORD.c.id.in_(ids[start : start + CHUNK])
                )
            )
        ),
        key=lambda row: row.key,
    )
    for record_id, key, raw in rows:
        attributes = dict(_json(raw) or {})
        values: dict[str, Any] = {}
        changed = False
        for name, accepted in sorted(watched[record_id].items()):
            now_value = attributes.get(name)
            if same(now_value, accepted.new) or not same(now_value, accepted.old):
                continue  # the import left it, or brought a value of its own
            attributes[name] = accepted.new
            changed = True
            if name == email_field:
                new = accepted.new
                values["email"] = new or None
                values["email_normalized"] = new.lower() if isinstance(new, str) and new else None
            elif name == phone_field:
                values["phone"] = accepted.new or None
            elif name == "category":
                values["category"] = accepted.new or None
            kept.append(
                {
                    "record": key,
                    "field": name,
                    "response": accepted.response,
                    "kept": accepted.new,
                    "source": now_value,
                }
            )
        if changed:
            conn.execute(
                sa.update(RECORD)
                .where(RECORD.c.id == record_id)
                .values(attributes=attributes, updated_at=now, **values)
            )
    return kept
