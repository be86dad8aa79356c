"""A `form_submitted` event makes a response "to process" (DESIGN.md §4).

Whoever records the event (the web form, `POST /api/events`, `events ingest`), the
one event writer calls `open_responses` for the submissions it inserted: each names
its campaign and record, and its `data` holds the answers (or `data.answers` does).
The response keeps the answers and, per field, the record's value then and the
answer (`{"field": {"old": …, "new": …}}`), for a person to accept or reject. A new
submission for a record whose response is still to process replaces its answers
(the recipient corrected them); once processed, a new submission is a new response.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.enums import ResponseStatus
from campaignctl.store.tables import RECORD, RESPONSE


def answers_of(data: Any) -> dict[str, Any]:
    """The answers an event's `data` carries: `data.answers`, else `data` itself."""
    if not isinstance(data, dict):
        return {}
    nested = data.get("answers")
    return dict(nested) if isinstance(nested, dict) else dict(data)


def changes_of(attributes: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """Per answered field whose value differs from the record's: {old, new}."""
    changes = {}
    for name, new in answers.items():
        old = attributes.get(name)
        if _same(old, new):
            continue
        changes[name] = {"old": old, "new": new}
    return changes


def _same(old: Any, new: Any) -> bool:
    if old == new:
        return True
    empty = (None, "", [])
    if old in empty and new in empty:
        return True
    return isinstance(old, (int, float)) and isinstance(new, str) and str(old) == new


def open_responses(
    conn: Connection, submissions: Iterable[tuple[int, int, int | None, Any, datetime]]
) -> int:
    """Make or update the responses of `(campaign_id, record_id, outbox_id, data, at)`
    submissions, in the caller's transaction; the number of responses written."""
    written = 0
    for campaign_id, record_id, outbox_id, data, at in submissions:
        if isinstance(data, str):  # SQLite, through a text() query
            import json

            data = json.loads(data)
        answers = answers_of(data)
        attributes = conn.execute(
            sa.select(RECORD.c.attributes).where(RECORD.c.id == record_id)
        ).scalar_one_or_none()
        changes = changes_of(dict(attributes or {}), answers)
        open_id = conn.execute(
            sa.select(RESPONSE.c.id)
            .where(
                RESPONSE.c.campaign_id == campaign_id,
                RESPONSE.c.record_id == record_id,
                RESPONSE.c.status == ResponseStatus.TO_PROCESS,
            )
            .order_by(RESPONSE.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        values = {"data": answers, "changes": changes, "submitted_at": at}
        if open_id is not None:
            conn.execute(sa.update(RESPONSE).where(RESPONSE.c.id == open_id).values(**values))
        else:
            conn.execute(
                sa.insert(RESPONSE).values(
                    campaign_id=campaign_id,
                    record_id=record_id,
                    outbox_id=outbox_id,
                    status=ResponseStatus.TO_PROCESS,
                    **values,
                )
            )
        written += 1
    return written
