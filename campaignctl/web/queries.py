"""The store reads and writes of the web side (records of a link, suppressions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from campaignctl.audience.privacy import address_hash
from campaignctl.enums import Channel, RecordStatus, SuppressionReason
from campaignctl.store.audit import audit
from campaignctl.store.store import Store
from campaignctl.store.tables import CAMPAIGN, RECORD, RESPONSE, SUPPRESSION


@dataclass(frozen=True)
class LinkedRecord:
    id: int
    key: str
    audience: str
    email: str | None
    phone: str | None
    category: str | None
    attributes: dict[str, Any]


def records_by_keys(
    store: Store, keys: Sequence[str], audience: str | None = None
) -> list[LinkedRecord]:
    """The active records a link names, in the link's order (a key in several audiences:
    the one of `audience` when given, else the first imported)."""
    if not keys:
        return []
    with store.read() as conn:
        return _records_by_keys(conn, keys, audience)


def _records_by_keys(
    conn: sa.Connection, keys: Sequence[str], audience: str | None
) -> list[LinkedRecord]:
    query = (
        sa.select(
            RECORD.c.id,
            RECORD.c.key,
            RECORD.c.audience,
            RECORD.c.email_normalized,
            RECORD.c.phone,
            RECORD.c.category,
            RECORD.c.attributes,
        )
        .where(RECORD.c.key.in_(list(keys)), RECORD.c.status != str(RecordStatus.FORGOTTEN))
        .order_by(RECORD.c.id)
    )
    if audience:
        query = query.where(RECORD.c.audience == audience)
    found: dict[str, LinkedRecord] = {}
    for row in conn.execute(query):
        found.setdefault(
            row.key,
            LinkedRecord(
                row.id,
                row.key,
                row.audience,
                row.email_normalized,
                row.phone,
                row.category,
                dict(row.attributes or {}),
            ),
        )
    return [found[k] for k in keys if k in found]


def form_record(
    store: Store, key: str, audience: str | None, campaign: str
) -> tuple[LinkedRecord, tuple[str, dict[str, Any]] | None] | None:
    """The record a form link names and its latest response to `campaign` (status,
    answers), in one read; None when the record is gone."""
    with store.read() as conn:
        records = _records_by_keys(conn, [key], audience)
        if not records:
            return None
        return records[0], _latest_response(conn, campaign, records[0].id)


def suppressed_categories(store: Store, address: str) -> tuple[set[str], str | None]:
    """(categories the address opted out of, the reason when every category is suppressed)."""
    digest = address_hash(address)
    categories: set[str] = set()
    everything = None
    with store.read() as conn:
        for row in conn.execute(
            sa.select(SUPPRESSION.c.category, SUPPRESSION.c.reason).where(
                SUPPRESSION.c.channel == str(Channel.EMAIL),
                SUPPRESSION.c.address_hash == digest,
            )
        ):
            if row.category is None:
                everything = str(row.reason)
            else:
                categories.add(row.category)
    return categories, everything


def resubscribe(store: Store, address: str, categories: Sequence[str], by: str) -> int:
    """Lift the address's unsubscriptions from `categories` (only those it made itself),
    audited; the number lifted."""
    if not categories:
        return 0
    with store.transaction() as conn:
        lifted = conn.execute(
            sa.delete(SUPPRESSION).where(
                SUPPRESSION.c.channel == str(Channel.EMAIL),
                SUPPRESSION.c.address_hash == address_hash(address),
                SUPPRESSION.c.category.in_(list(categories)),
                SUPPRESSION.c.reason == str(SuppressionReason.UNSUBSCRIBED),
            )
        ).rowcount
        if lifted:
            audit(
                conn,
                "resubscribe",
                f"suppression:{address_hash(address)[:16]}",
                {"categories": sorted(categories)},
                by=by,
            )
    return int(lifted or 0)


def _latest_response(
    conn: sa.Connection, campaign: str, record_id: int
) -> tuple[str, dict[str, Any]] | None:
    """(status, answers) of the record's latest response to `campaign`, None before any."""
    row = conn.execute(
        sa.select(RESPONSE.c.status, RESPONSE.c.data)
        .select_from(RESPONSE.join(CAMPAIGN, CAMPAIGN.c.id == RESPONSE.c.campaign_id))
        .where(CAMPAIGN.c.name == campaign, RESPONSE.c.record_id == record_id)
        .order_by(RESPONSE.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return str(row.status), dict(row.data or {})


def answered(store: Store, campaign: str, record_ids: Sequence[int]) -> set[int]:
    """Which of the records answered `campaign` (a response, processed or not)."""
    if not record_ids:
        return set()
    with store.read() as conn:
        return set(
            conn.execute(
                sa.select(RESPONSE.c.record_id)
                .select_from(RESPONSE.join(CAMPAIGN, CAMPAIGN.c.id == RESPONSE.c.campaign_id))
                .where(CAMPAIGN.c.name == campaign, RESPONSE.c.record_id.in_(list(record_ids)))
            ).scalars()
        )
