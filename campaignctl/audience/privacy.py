"""Privacy and opt-outs: export everything about a record, forget it, suppress addresses.

A suppression is matched by the SHA-256 of the normalised address, so that a
forgotten address (whose text is erased) still blocks every later message. The rule and
the writer are the store's (`store.suppressions`); this module normalises what people
type and keeps the commands' vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from campaignctl.audience.records import RECORD, find_records
from campaignctl.audience.values import ValueProblem, normalize_email, normalize_phone
from campaignctl.enums import Channel, RecordStatus, SuppressionReason
from campaignctl.errors import InputError, UsageError
from campaignctl.store import suppressions
from campaignctl.store.store import Store, utcnow
from campaignctl.store.suppressions import SuppressionEntry, address_hash
from campaignctl.store.tables import (
    AUDIT_LOG,
    EVENT,
    OUTBOX,
    RECIPIENT,
    RESPONSE,
    SUPPRESSION,
)

__all__ = ["SuppressionEntry", "address_hash", "suppress", "suppress_many"]


def normalize_address(channel: Channel, address: str, region: str) -> str:
    """The form addresses are stored and matched in: lower-cased email, E.164 phone."""
    try:
        if channel == Channel.EMAIL:
            return normalize_email(address).lower()
        return normalize_phone(address, region)
    except ValueProblem as problem:
        raise InputError(
            f"{address!r}: {problem.message}", hint=f"give a valid {channel} address"
        ) from None


def guess_channel(address: str) -> Channel:
    return Channel.EMAIL if "@" in address else Channel.SMS


@dataclass(frozen=True)
class SuppressionChange:
    channel: str
    address: str
    category: str | None
    changed: bool

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, **self.__dict__}


def add_suppression(
    store: Store,
    address: str,
    *,
    channel: Channel,
    category: str | None = None,
    reason: SuppressionReason = SuppressionReason.MANUAL,
    source: str | None = None,
    region: str = "FR",
) -> SuppressionChange:
    """Never contact `address` on `channel` (for `category`, or all when None). Idempotent."""
    normal = normalize_address(channel, address, region)
    with store.transaction() as conn:
        changed = _insert_suppression(conn, channel, normal, normal, category, reason, source)
    return SuppressionChange(str(channel), normal, category, changed)


def _insert_suppression(
    conn: sa.Connection,
    channel: Channel,
    normal: str,
    shown: str | None,
    category: str | None,
    reason: SuppressionReason,
    source: str | None,
) -> bool:
    entry = SuppressionEntry(channel, normal, category, reason, source, shown is not None)
    return bool(suppressions.add(conn, [entry]))


# every producer adds its suppressions through the store's one writer
suppress_many = suppressions.add


def remove_suppression(
    store: Store, address: str, *, channel: Channel, category: str | None, region: str = "FR"
) -> SuppressionChange:
    normal = normalize_address(channel, address, region)
    with store.transaction() as conn:
        deleted = suppressions.remove(conn, channel, normal, category)
    return SuppressionChange(str(channel), normal, category, deleted)


def list_suppressions(
    store: Store, *, channel: Channel | None = None, category: str | None = None
) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [
            {
                "channel": r.channel,
                "address": r.address,
                "address_hash": r.address_hash,
                "category": r.category,
                "reason": str(r.reason),
                "source": r.source,
                "created_at": r.created_at.isoformat() if r.created_at else None,
            }
            for r in suppressions.listing(conn, channel, category)
        ]


def is_suppressed(conn: sa.Connection, channel: Channel, normal: str, category: str | None) -> bool:
    """Whether a normalised address may not be contacted for that category."""
    return bool(
        conn.execute(sa.select(suppressions.applies(normal, str(channel), category))).scalar()
    )


def _rows(conn: sa.Connection, table: sa.Table, column: sa.Column[Any], ids: list[int]) -> list:
    return [dict(r._mapping) for r in conn.execute(sa.select(table).where(column.in_(ids)))]


def export_contact(store: Store, key: str, audience: str | None = None) -> dict[str, Any]:
    """Everything stored about the record(s) with that key: the record, messages, events,
    responses, recipients snapshots and suppressions of its addresses."""
    records = find_records(store, key, audience)
    with store.read() as conn:
        ids = [
            r.id
            for r in conn.execute(
                sa.select(RECORD.c.id).where(
                    RECORD.c.key == key, *([RECORD.c.audience == audience] if audience else [])
                )
            )
        ]
        addresses = [a for r in records for a in (r["email"], r["phone"]) if a]
        digests = [address_hash(a.lower() if "@" in a else a) for a in addresses]
        document = {
            "format_version": 1,
            "key": key,
            "records": records,
            "messages": _rows(conn, OUTBOX, OUTBOX.c.record_id, ids),
            "events": _rows(conn, EVENT, EVENT.c.record_id, ids),
            "responses": _rows(conn, RESPONSE, RESPONSE.c.record_id, ids),
            "recipients": _rows(conn, RECIPIENT, RECIPIENT.c.record_id, ids),
            "suppressions": _rows(conn, SUPPRESSION, SUPPRESSION.c.address_hash, digests),
        }
    return document


def forget_contact(store: Store, key: str, audience: str | None = None) -> dict[str, Any]:
    """Erase the personal data of the record(s) with that key, keeping hashed suppressions so
    that their addresses are never contacted again. The record row stays (status forgotten,
    no attributes) so that reports keep their counts."""
    records = find_records(store, key, audience)
    if all(r["status"] == RecordStatus.FORGOTTEN for r in records):
        raise UsageError(f"record {key!r} is already forgotten")
    now = utcnow()
    with store.transaction() as conn:
        for record in records:
            for channel, address in (
                (Channel.EMAIL, record["email"]),
                (Channel.SMS, record["phone"]),
            ):
                if address:
                    normal = address.lower() if channel == Channel.EMAIL else address
                    suppressions.keep_hash_only(conn, normal)
                    _insert_suppression(
                        conn, channel, normal, None, None, SuppressionReason.FORGOTTEN, "forget"
                    )
        ids = sa.select(RECORD.c.id).where(
            RECORD.c.key == key, *([RECORD.c.audience == audience] if audience else [])
        )
        conn.execute(
            sa.update(RECORD)
            .where(RECORD.c.id.in_(ids))
            .values(
                email=None, email_normalized=None, phone=None, attributes={},
                status=RecordStatus.FORGOTTEN, source_hash=None, updated_at=now,
            )
        )  # fmt: skip
        for table in (OUTBOX, RECIPIENT):
            conn.execute(
                sa.update(table).where(table.c.record_id.in_(ids)).values(address="forgotten")
            )
        conn.execute(
            sa.update(EVENT).where(EVENT.c.record_id.in_(ids)).values(address=None, data=None)
        )
        conn.execute(
            sa.update(RESPONSE).where(RESPONSE.c.record_id.in_(ids)).values(data=None, changes=None)
        )
        conn.execute(
            sa.insert(AUDIT_LOG),
            {
                "at": now,
                "action": "contacts.forget",
                "object": key,
                "data": {"records": len(records)},
            },
        )
    return {"format_version": 1, "key": key, "forgotten": len(records)}


def suppress(
    conn: sa.Connection,
    channel: Channel,
    normal: str,
    *,
    category: str | None,
    reason: SuppressionReason,
    source: str | None,
) -> bool:
    """Add a suppression in the caller's transaction (events record theirs with the event).

    `normal` is already normalised (see `normalize_address`); False when it existed.
    """
    return _insert_suppression(conn, channel, normal, normal, category, reason, source)
