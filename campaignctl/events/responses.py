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

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.audience.accepted import same
from campaignctl.enums import ResponseStatus
from campaignctl.errors import StateError, UsageError
from campaignctl.store.audit import audit
from campaignctl.store.store import Store, utcnow
from campaignctl.store.tables import CAMPAIGN, RECORD, RESPONSE


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
        if same(old, new):
            continue
        changes[name] = {"old": old, "new": new}
    return changes


def open_responses(
    conn: Connection, submissions: Iterable[tuple[int, int, int | None, Any, datetime]]
) -> int:
    """Make or update the responses of `(campaign_id, record_id, outbox_id, data, at)`
    submissions, in the caller's transaction, in a few statements whatever their number
    (the last submission of a record counts, as it replaces the earlier ones); the number
    of responses written."""
    latest: dict[tuple[int, int], tuple[int | None, dict[str, Any], datetime]] = {}
    for campaign_id, record_id, outbox_id, data, at in submissions:
        if isinstance(data, str):  # SQLite, through a text() query
            data = json.loads(data)
        latest[(campaign_id, record_id)] = (outbox_id, answers_of(data), at)
    record_ids = sorted({record_id for _, record_id in latest})
    attributes: dict[int, Any] = {}
    still_open: dict[tuple[int, int], int] = {}
    for start in range(0, len(record_ids), _CHUNK):
        chunk = record_ids[start : start + _CHUNK]
        attributes.update(
            (record_id, values)
            for record_id, values in conn.execute(
                sa.select(RECORD.c.id, RECORD.c.attributes).where(RECORD.c.id.in_(chunk))
            )
        )
        for campaign_id, record_id, response_id in conn.execute(
            sa.select(RESPONSE.c.campaign_id, RESPONSE.c.record_id, sa.func.max(RESPONSE.c.id))
            .where(RESPONSE.c.record_id.in_(chunk), RESPONSE.c.status == ResponseStatus.TO_PROCESS)
            .group_by(RESPONSE.c.campaign_id, RESPONSE.c.record_id)
        ):
            still_open[(campaign_id, record_id)] = response_id
    updates, inserts = [], []
    for (campaign_id, record_id), (outbox_id, answers, at) in latest.items():
        values = {
            "data": answers,
            "changes": changes_of(dict(attributes.get(record_id) or {}), answers),
            "submitted_at": at,
        }
        if (campaign_id, record_id) in still_open:
            updates.append({"response_id": still_open[(campaign_id, record_id)], **values})
        else:
            inserts.append(
                {
                    "campaign_id": campaign_id,
                    "record_id": record_id,
                    "outbox_id": outbox_id,
                    "status": ResponseStatus.TO_PROCESS,
                    **values,
                }
            )
    if updates:
        conn.execute(
            sa.update(RESPONSE)
            .where(RESPONSE.c.id == sa.bindparam("response_id"))
            .values(
                data=sa.bindparam("data"),
                changes=sa.bindparam("changes"),
                submitted_at=sa.bindparam("submitted_at"),
            ),
            updates,
        )
    if inserts:
        conn.execute(sa.insert(RESPONSE), inserts)
    return len(latest)


_CHUNK = 5_000  # records looked up per statement (a bound on its parameters)


# ---------------------------------------------------------------------- review


@dataclass(frozen=True)
class ContactFields:
    """Which answered fields are also the record's contact columns (its email, phone and
    category live in columns of their own, not only in its attributes)."""

    email: str | None = None
    phone: str | None = None
    category: str | None = "category"


@dataclass
class ResponseView:
    """One response as `responses list/show` print it (and --json)."""

    id: int
    campaign: str
    record: str | None
    audience: str | None
    status: str
    submitted_at: datetime
    processed_at: datetime | None
    processed_by: str | None
    changes: dict[str, Any]
    answers: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign": self.campaign,
            "record": self.record,
            "audience": self.audience,
            "status": self.status,
            "submitted_at": _iso(self.submitted_at),
            "processed_at": _iso(self.processed_at),
            "processed_by": self.processed_by,
            "changes": [
                {"field": name, "old": change.get("old"), "new": change.get("new")}
                for name, change in self.changes.items()
            ],
            "answers": self.answers,
        }


def _iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


_COLUMNS = (
    RESPONSE.c.id,
    CAMPAIGN.c.name.label("campaign"),
    RECORD.c.key.label("record"),
    RECORD.c.audience,
    RESPONSE.c.status,
    RESPONSE.c.submitted_at,
    RESPONSE.c.processed_at,
    RESPONSE.c.processed_by,
    RESPONSE.c.changes,
    RESPONSE.c.data,
)
_FROM = RESPONSE.join(CAMPAIGN, CAMPAIGN.c.id == RESPONSE.c.campaign_id).outerjoin(
    RECORD, RECORD.c.id == RESPONSE.c.record_id
)


def _view(row: Any) -> ResponseView:
    return ResponseView(
        row.id,
        row.campaign,
        row.record,
        row.audience,
        str(row.status),
        row.submitted_at,
        row.processed_at,
        row.processed_by,
        dict(sorted((row.changes or {}).items())),  # JSONB keeps no order: by field name
        dict(row.data or {}),
    )


def list_responses(
    store: Store, campaign: str | None = None, status: ResponseStatus | None = None
) -> list[ResponseView]:
    """The responses (of one campaign, in one status), oldest first."""
    query = sa.select(*_COLUMNS).select_from(_FROM).order_by(RESPONSE.c.id)
    if campaign:
        query = query.where(CAMPAIGN.c.name == campaign)
    if status:
        query = query.where(RESPONSE.c.status == status)
    with store.read() as conn:
        return [_view(row) for row in conn.execute(query)]


def get_response(store: Store, response_id: int) -> ResponseView:
    with store.read() as conn:
        row = conn.execute(
            sa.select(*_COLUMNS).select_from(_FROM).where(RESPONSE.c.id == response_id)
        ).first()
    if row is None:
        raise UsageError(
            f"response {response_id} does not exist",
            hint="`campaignctl responses list` shows the ids",
        )
    return _view(row)


def decide(
    store: Store,
    response_ids: list[int],
    decision: ResponseStatus,
    *,
    by: str,
    contact_fields: dict[str, ContactFields] | None = None,
) -> list[ResponseView]:
    """Accept or reject responses still to process, in one transaction. Accepting writes
    each changed field into its record (and its email, phone or category column) and the
    audit log. A response already processed is refused (StateError), the others untouched."""
    contact_fields = contact_fields or {}
    views = [get_response(store, i) for i in response_ids]
    done = [v for v in views if v.status != ResponseStatus.TO_PROCESS]
    if done:
        first = done[0]
        raise StateError(
            f"response {first.id} is already {first.status} "
            f"({first.processed_by or 'unknown'}, {_iso(first.processed_at)})",
            hint="only responses to process can be accepted or rejected "
            "(`campaignctl responses list --status to_process`)",
        )
    now = utcnow()
    with store.transaction() as conn:
        for view in views:
            if decision == ResponseStatus.ACCEPTED and view.changes:
                _apply(conn, view, contact_fields.get(view.audience or "", ContactFields()), now)
            changes = {
                name: {**change, "decision": str(decision)} for name, change in view.changes.items()
            }
            conn.execute(
                sa.update(RESPONSE)
                .where(RESPONSE.c.id == view.id, RESPONSE.c.status == ResponseStatus.TO_PROCESS)
                .values(status=decision, processed_at=now, processed_by=by, changes=changes)
            )
            audit(
                conn,
                f"response.{'accept' if decision == ResponseStatus.ACCEPTED else 'reject'}",
                f"record:{view.audience}:{view.record}",
                {"response": view.id, "campaign": view.campaign, "changes": view.changes},
                by=by,
            )
    return [get_response(store, i) for i in response_ids]


def _apply(conn: Connection, view: ResponseView, contact: ContactFields, now: datetime) -> None:
    row = conn.execute(
        sa.select(RECORD.c.id, RECORD.c.attributes).where(
            RECORD.c.audience == view.audience, RECORD.c.key == view.record
        )
    ).first()
    if row is None:
        raise StateError(
            f"response {view.id}: record {view.record!r} is no longer in the store",
            hint=f"reject it: campaignctl responses reject {view.id}",
        )
    attributes = dict(row.attributes or {})
    values: dict[str, Any] = {"updated_at": now}
    for name, change in view.changes.items():
        new = change.get("new")
        attributes[name] = new
        if name == contact.email:
            values["email"] = new or None
            values["email_normalized"] = new.lower() if isinstance(new, str) and new else None
        elif name == contact.phone:
            values["phone"] = new or None
        elif name == contact.category:
            values["category"] = new or None
    values["attributes"] = attributes
    conn.execute(sa.update(RECORD).where(RECORD.c.id == row.id).values(**values))


def export_rows(store: Store, campaign: str | None = None) -> list[list[Any]]:
    """The accepted changes, one row per field, for the source system (header first)."""
    rows: list[list[Any]] = [
        ["response", "campaign", "audience", "record", "field", "old", "new", "accepted_at"]
    ]
    for view in list_responses(store, campaign, ResponseStatus.ACCEPTED):
        for name, change in view.changes.items():
            rows.append(
                [
                    view.id,
                    view.campaign,
                    view.audience,
                    view.record,
                    name,
                    cell_text(change.get("old")),
                    cell_text(change.get("new")),
                    _iso(view.processed_at),
                ]
            )
    return rows


def cell_text(value: Any) -> str:
    """A value as CSV text the way the audience CSV writes it: periods `a..b;c..d`, lists
    `x;y`, booleans `true`/`false`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if all(isinstance(v, list) and len(v) == 2 for v in value):
            return ";".join(f"{a}..{b}" for a, b in value)
        return ";".join(cell_text(v) for v in value)
    return str(value)
