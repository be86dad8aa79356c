"""Recording events: the one function every producer calls (DESIGN.md §3).

`events ingest`, the web side (`serve`), delivery receipts and the send engine
all describe what happened with an `Event` and hand it to `record_event`, inside
their own transaction. Recording is idempotent by event id (a re-ingested line
adds nothing); the event is linked to its message (message_id → outbox row →
campaign, record) or its record (campaign + record key); and the events that
say "never again" add the suppression at once:

- a hard bounce → the address, every category, reason `bounced` (a soft bounce
  adds nothing: the send engine retries it);
- a complaint → the address, every category, reason `complained`;
- an unsubscribe → the address, the campaign's category (every category when the
  campaign is unknown), reason `unsubscribed`;
- an SMS reply STOP / ARRET / STOP PUB → the phone number, the campaign's category
  (every category when unknown), reason `sms_stop`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl import clock
from campaignctl.audience.privacy import guess_channel, suppress
from campaignctl.audience.values import ValueProblem, normalize_email, normalize_phone
from campaignctl.enums import Channel, SuppressionReason
from campaignctl.errors import InputError
from campaignctl.events.model import Event, LineProblem, read_events
from campaignctl.spec.models import EventType
from campaignctl.store.store import Store
from campaignctl.store.tables import (
    CAMPAIGN,
    LOCK,
    OUTBOX,
    RECIPIENT,
    RECORD,
)
from campaignctl.store.tables import Event as EventRow

EVENT = EventRow.__table__  # type: ignore[attr-defined]

BATCH_SIZE = 500  # lines per transaction when ingesting a file
SMS_TYPES = {EventType.SMS_DELIVERED, EventType.SMS_FAILED, EventType.SMS_REPLY}


class Outcome(enum.StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # this id was recorded before: nothing added
    UNKNOWN = "unknown"  # recorded, but its message or record is not in the store


@dataclass(frozen=True)
class Recorded:
    """What `record_event` did with one event."""

    event_id: str
    outcome: Outcome
    campaign_id: int | None = None
    record_id: int | None = None
    suppression: str | None = None  # "email x@y (all categories, bounced)" when one was added


@dataclass(frozen=True)
class _Target:
    outbox_id: int | None = None
    campaign_id: int | None = None
    category: str | None = None
    record_id: int | None = None
    record_key: str | None = None
    channel: str | None = None
    address: str | None = None
    found: bool = False


def record_event(
    conn: Connection,
    event: Event,
    event_id: str,
    *,
    received_at: datetime | None = None,
    region: str = "FR",
) -> Recorded:
    """Record one event in the caller's transaction; idempotent by `event_id`.

    Adds the suppression a hard bounce, complaint, unsubscribe or STOP reply calls for.
    """
    now = received_at or clock.now()
    target = _resolve(conn, event)
    channel = target.channel or _channel_of(event)
    address = event.address or target.address
    inserted = _insert_once(
        conn,
        {
            "id": event_id,
            "type": str(event.type),
            "message_id": event.message_id,
            "outbox_id": target.outbox_id,
            "campaign_id": target.campaign_id,
            "record_id": target.record_id,
            "record_key": target.record_key or event.record,
            "address": address,
            "channel": channel,
            "at": event.at or now,
            "data": dict(event.data) or None,
            "received_at": now,
        },
    )
    if not inserted:
        return Recorded(event_id, Outcome.DUPLICATE, target.campaign_id, target.record_id)
    suppression = _suppress(conn, event, event_id, target, channel, address, region)
    outcome = Outcome.RECORDED if target.found else Outcome.UNKNOWN
    return Recorded(event_id, outcome, target.campaign_id, target.record_id, suppression)


def _channel_of(event: Event) -> str | None:
    if event.type in SMS_TYPES:
        return str(Channel.SMS)
    if event.address:
        return str(guess_channel(event.address))
    return None


def _insert_once(conn: Connection, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: one statement, safe against concurrent producers."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(EVENT).values(**values).on_conflict_do_nothing(index_elements=["id"])
    return conn.execute(statement.returning(EVENT.c.id)).first() is not None


def _resolve(conn: Connection, event: Event) -> _Target:
    if event.message_id:
        row = conn.execute(
            sa.select(
                OUTBOX.c.id, OUTBOX.c.campaign_id, OUTBOX.c.record_id, OUTBOX.c.channel,
                OUTBOX.c.address, RECORD.c.key, CAMPAIGN.c.category,
            )
            .join(CAMPAIGN, CAMPAIGN.c.id == OUTBOX.c.campaign_id)
            .outerjoin(RECORD, RECORD.c.id == OUTBOX.c.record_id)
            .where(
                sa.or_(
                    OUTBOX.c.message_id == event.message_id,
                    OUTBOX.c.provider_id == event.message_id,
                )
            )
            .limit(1)
        ).first()  # fmt: skip
        if row is not None:
            return _Target(
                row.id, row.campaign_id, row.category, row.record_id, row.key,
                row.channel, row.address, found=True,
            )  # fmt: skip
    if event.campaign and event.record:
        return _resolve_record(conn, event)
    return _Target(found=bool(event.address and not event.message_id))


def _resolve_record(conn: Connection, event: Event) -> _Target:
    campaign = conn.execute(
        sa.select(CAMPAIGN.c.id, CAMPAIGN.c.category).where(CAMPAIGN.c.name == event.campaign)
    ).first()
    if campaign is None:
        return _Target()
    # the record the campaign's locks reached with that key; else the only record with that key
    in_lock = (
        sa.select(RECORD.c.id, RECORD.c.email_normalized, RECORD.c.phone)
        .join(RECIPIENT, RECIPIENT.c.record_id == RECORD.c.id)
        .join(LOCK, LOCK.c.id == RECIPIENT.c.lock_id)
        .where(LOCK.c.campaign_id == campaign.id, RECORD.c.key == event.record)
        .order_by(LOCK.c.id.desc())
        .limit(1)
    )
    record = conn.execute(in_lock).first()
    if record is None:
        rows = conn.execute(
            sa.select(RECORD.c.id, RECORD.c.email_normalized, RECORD.c.phone)
            .where(RECORD.c.key == event.record)
            .limit(2)
        ).all()
        record = rows[0] if len(rows) == 1 else None
    if record is None:
        return _Target(campaign_id=campaign.id, category=campaign.category)
    sms = event.type in SMS_TYPES
    return _Target(
        campaign_id=campaign.id,
        category=campaign.category,
        record_id=record.id,
        record_key=event.record,
        channel=str(Channel.SMS if sms else Channel.EMAIL),
        address=record.phone if sms else record.email_normalized,
        found=True,
    )


def _suppress(
    conn: Connection,
    event: Event,
    event_id: str,
    target: _Target,
    channel: str | None,
    address: str | None,
    region: str,
) -> str | None:
    if event.hard_bounce:
        reason, category = SuppressionReason.BOUNCED, None
    elif event.type == EventType.COMPLAINED:
        reason, category = SuppressionReason.COMPLAINED, None
    elif event.type == EventType.UNSUBSCRIBED:
        reason, category = SuppressionReason.UNSUBSCRIBED, target.category
    elif event.type == EventType.SMS_REPLY and event.opt_out:
        reason, category, channel = SuppressionReason.SMS_STOP, target.category, str(Channel.SMS)
    else:
        return None
    if not address or not channel:
        return None
    try:
        normal = (
            normalize_email(address).lower()
            if channel == Channel.EMAIL
            else normalize_phone(address, region)
        )
    except ValueProblem:
        return None
    if not suppress(conn, Channel(channel), normal, category=category, reason=reason,
                    source=f"event:{event_id}"):  # fmt: skip
        return None
    return f"{channel} {normal} ({category or 'all categories'}, {reason})"


@dataclass
class IngestSummary:
    """The figures `events ingest` prints (and --json)."""

    read: int = 0  # non-blank lines
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0  # recorded, but naming a message or record the store does not know
    suppressions: list[str] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def bad_lines(self) -> int:
        return len(self.problems)

    def check(self) -> None:
        """InputError (exit 65) when there were lines and not one could be read: the input is
        not an event file at all. Some bad lines among good ones are reported, not fatal."""
        if self.read and self.bad_lines == self.read:
            first = self.problems[0]
            raise InputError(
                f"none of the {self.read} line(s) is an event (line {first.line}: {first.message})",
                hint='each line is a JSON object such as {"type": "opened", "message_id": "..."}',
            )

    def text(self) -> str:
        return (
            f"read {self.read} line(s): {self.recorded} recorded, {self.duplicates} already "
            f"recorded, {self.unknown} for an unknown message or record, "
            f"{self.bad_lines} bad line(s) skipped; {len(self.suppressions)} suppression(s) added"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "read": self.read,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "bad_lines": self.bad_lines,
            "suppressions": self.suppressions,
            "problems": [{"line": p.line, "message": p.message} for p in self.problems],
        }


def ingest_events(store: Store, lines: Iterable[str], *, region: str = "FR") -> IngestSummary:
    """Record every event of a JSON-lines stream, in batches; bad lines are skipped.

    Never raises for bad lines: `summary.check()` does, when none could be read.
    """
    summary = IngestSummary()
    batch: list[tuple[Event, str]] = []

    def flush() -> None:
        if not batch:
            return
        with store.transaction(immediate=True) as conn:
            for event, event_id in batch:
                done = record_event(conn, event, event_id, region=region)
                if done.outcome == Outcome.DUPLICATE:
                    summary.duplicates += 1
                elif done.outcome == Outcome.UNKNOWN:
                    summary.unknown += 1
                else:
                    summary.recorded += 1
                if done.suppression:
                    summary.suppressions.append(done.suppression)
        batch.clear()

    for _number, item, event_id in read_events(lines):
        summary.read += 1
        if isinstance(item, LineProblem):
            summary.problems.append(item)
            continue
        batch.append((item, event_id))
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()
    return summary
