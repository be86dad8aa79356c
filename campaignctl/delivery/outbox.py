"""The outbox in SQL: the wave's rows from a lock, atomic claims, outcomes, abandoned claims.

Every function here is one or a few set-based statements; the send engine
(`delivery/engine.py`) strings them together. The rules that hold everywhere
(DESIGN.md §3) are enforced here, in the database:

- one row per message: a lock's recipients grouped by channel and group key
  (the group's first recipient leads), and UNIQUE(wave, channel, address);
- a suppressed address (or one opted out of the campaign's category) becomes a
  `suppressed` row, checked again when a batch is claimed, so a suppression
  added during the send (a hard bounce, an unsubscribe) still holds;
- an address that already counts `max_messages_per_contact` messages of the
  campaign in other waves (`store.outbox.toward_cap`, as plan and relaunch count
  them) becomes a `skipped` row;
- a claim moves a batch from `queued` to `sending` with an owner (host:pid) and
  a lease expiry in ONE statement (SQLite: inside BEGIN IMMEDIATE; PostgreSQL:
  FOR UPDATE SKIP LOCKED), so two senders never hold the same row;
- before a slice of claimed rows goes to the transport, an `outbox_handover` row
  names them, committed (`write_journal`); it is marked done once every message
  of the slice has an outcome, and deleted when the batch's outcomes are recorded;
- rows left in `sending` by a sender that died are never re-sent blindly
  (`mark_abandoned`): those of a done slice were sent; those of a slice handed
  over but not done become `uncertain` and are listed, until `send
  --retry-uncertain` queues them again; those no slice names go back to `queued`,
  since nothing of them left the machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from campaignctl.clock import aware
from campaignctl.enums import OutboxState, WaveKind, WaveStatus
from campaignctl.errors import StateError
from campaignctl.events.model import Event, Incoming
from campaignctl.events.record import record_events
from campaignctl.plan.lock import active_lock_id, left_out_by_other_campaigns, sendable_campaign
from campaignctl.spec.models import EventType
from campaignctl.store import outbox as rules
from campaignctl.store import suppressions, wave_state
from campaignctl.store.lease import holder_is_dead
from campaignctl.store.outbox import ClaimedRow, RowOutcome
from campaignctl.store.store import Store
from campaignctl.store.tables import (
    CAMPAIGN,
    HANDOVER,
    LOCK,
    OUTBOX,
    RECIPIENT,
    RECORD,
    WAVE,
)
from campaignctl.store.upsert import insert

__all__ = ["ClaimedRow", "RowOutcome"]  # defined with the rules they follow, in store.outbox


# --------------------------------------------------------------------------- lock and wave


@dataclass(frozen=True)
class LockRef:
    """The campaign and lock a send starts from."""

    campaign_id: int
    campaign: str
    category: str | None
    lock_id: int
    # records the lock left out because another active questionnaire campaign asks
    # them (respect_other_campaigns), by that campaign: each wave's summary says so
    other_campaigns: dict[str, int] = field(default_factory=dict)


def require_lock(store: Store, campaign: str, wave_id: int | None = None) -> LockRef:
    """The campaign's active lock (or the one `wave_id` was given by the scheduler); the one
    place `send` makes sure there is one.

    Raises StateError naming the command to run when the campaign was never
    applied or is not locked.
    """
    with store.read() as conn:
        lock = lock_ref(conn, campaign, wave_id)
    if lock is None:
        raise StateError(
            f"campaign {campaign!r} is not locked: run `campaignctl lock {campaign}`",
            hint="a lock freezes the recipients and the content that `send` sends",
        )
    return lock


def lock_ref(conn: sa.Connection, campaign: str, wave_id: int | None = None) -> LockRef | None:
    """`require_lock` on an open connection: None when the campaign is not locked."""
    row = sendable_campaign(conn, campaign)
    lock_id = None
    if wave_id is not None:
        lock_id = conn.execute(
            sa.select(WAVE.c.lock_id).where(WAVE.c.id == wave_id, WAVE.c.campaign_id == row.id)
        ).scalar()
    if lock_id is None:
        lock_id = active_lock_id(conn, row.id)
    if lock_id is None:
        return None
    counts = conn.execute(sa.select(LOCK.c.counts).where(LOCK.c.id == lock_id)).scalar()
    return LockRef(
        int(row.id), campaign, row.category, int(lock_id), left_out_by_other_campaigns(counts)
    )


@dataclass(frozen=True)
class WaveRef:
    id: int
    number: int
    kind: WaveKind
    status: WaveStatus
    populated: bool  # its outbox rows exist


def current_wave(store: Store, lock: LockRef, now: datetime) -> WaveRef:
    """The wave `send` works on: the campaign's latest, or a new initial wave (number 1).

    Two senders starting together may both try to create wave 1: SQLite serialises them
    (BEGIN IMMEDIATE); on PostgreSQL the loser hits the unique constraint and reads the
    winner's wave instead.
    """
    try:
        return _current_wave(store, lock, now)
    except sa.exc.IntegrityError:
        return _current_wave(store, lock, now)


def _current_wave(store: Store, lock: LockRef, now: datetime) -> WaveRef:
    with store.transaction(immediate=True) as conn:
        row = conn.execute(
            sa.select(WAVE)
            .where(WAVE.c.campaign_id == lock.campaign_id)
            .order_by(WAVE.c.number.desc())
        ).first()
        if row is None:
            wave_id = conn.execute(
                WAVE.insert()
                .values(
                    campaign_id=lock.campaign_id,
                    number=1,
                    kind=WaveKind.INITIAL,
                    # the scheduler's key for the first occurrence (waves.timeline
                    # PlannedWave.key), so a send by hand and the schedule never both
                    # create the first wave
                    occurrence_key=f"{lock.campaign}/0/0",
                    status=WaveStatus.SCHEDULED,
                    lock_id=lock.lock_id,
                    created_at=now,
                )
                .returning(WAVE.c.id)
            ).scalar_one()
            return WaveRef(wave_id, 1, WaveKind.INITIAL, WaveStatus.SCHEDULED, False)
        return _wave_ref(conn, row)


def wave_by_id(store: Store, wave_id: int) -> WaveRef:
    """A given wave (the scheduler's and `relaunch`'s), whatever waves came after it."""
    with store.read() as conn:
        return _wave_ref(conn, conn.execute(sa.select(WAVE).where(WAVE.c.id == wave_id)).one())


def _wave_ref(conn: sa.Connection, row: Any) -> WaveRef:
    populated = (
        conn.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.wave_id == row.id).limit(1)).first()
        is not None
    )
    return WaveRef(row.id, row.number, WaveKind(row.kind), WaveStatus(row.status), populated)


def suppression_reason(conn: sa.Connection, channel: Any, address: Any, category: str | None):
    """A scalar subquery: the reason the address may not be contacted, or NULL
    (`store.suppressions.applies`; the hash of every address is computed only when a
    forgotten contact's suppression exists)."""
    normal = sa.case((channel == "email", sa.func.lower(address)), else_=address)
    hashed = suppressions.present(conn).hashed_only > 0
    return suppressions.reason(normal, channel, category, hashed=hashed)


def candidates(
    conn: sa.Connection,
    lock: LockRef,
    wave: WaveRef,
    max_messages: int | None,
    recipients: sa.Table = RECIPIENT,
):
    """SELECT the wave's would-be outbox rows with their state and reason (see module doc).

    `recipients` is the lock's table: `recipient`, or a dry run's `virtual_lock`."""
    r = recipients.alias("r")
    leaders = (
        sa.select(sa.func.min(recipients.c.id))
        .where(recipients.c.lock_id == lock.lock_id)
        .group_by(
            recipients.c.channel,
            sa.func.coalesce(recipients.c.group_key, recipients.c.address),
        )
    )
    suppressed = suppression_reason(conn, r.c.channel, r.c.address, lock.category)
    if max_messages is not None:
        received = rules.toward_cap(
            lock.campaign_id, r.c.channel, r.c.address, other_than_wave=wave.id,
            outbox=OUTBOX.alias("previous"),
        )  # fmt: skip
        maxed: Any = received >= max_messages
    else:
        maxed = sa.false()
    state = sa.case(
        (suppressed.is_not(None), OutboxState.SUPPRESSED.value),
        (maxed, OutboxState.SKIPPED.value),
        else_=OutboxState.QUEUED.value,
    )
    reason = sa.case(
        (suppressed.is_not(None), sa.literal("suppressed: ") + sa.cast(suppressed, sa.String)),
        (maxed, sa.literal(f"max_messages_per_contact ({max_messages}) reached")),
        else_=sa.null(),
    )
    return (
        sa.select(
            r.c.record_id,
            r.c.group_key,
            r.c.segment,
            r.c.channel,
            r.c.address,
            state.label("state"),
            reason.label("reason"),
        )
        .where(r.c.lock_id == lock.lock_id, r.c.id.in_(leaders))
        .order_by(r.c.id)
    )


def create_outbox(
    store: Store, lock: LockRef, wave: WaveRef, max_messages: int | None, now: datetime
) -> int:
    """INSERT … SELECT the wave's rows (idempotent: UNIQUE(wave, channel, address))."""
    with store.transaction(immediate=True) as conn:
        select = candidates(conn, lock, wave, max_messages).subquery()
        columns = [
            "campaign_id", "wave_id", "record_id", "group_key", "segment", "channel",
            "address", "state", "reason", "attempts", "created_at", "updated_at",
        ]  # fmt: skip
        stamp = sa.bindparam("now", now, type_=OUTBOX.c.created_at.type)
        source = sa.select(
            sa.literal(lock.campaign_id),
            sa.literal(wave.id),
            select.c.record_id,
            select.c.group_key,
            select.c.segment,
            select.c.channel,
            select.c.address,
            select.c.state,
            select.c.reason,
            sa.literal(0),
            stamp,
            stamp,
        ).where(sa.true())  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
        inserted = conn.execute(
            insert(conn, OUTBOX).from_select(columns, source).on_conflict_do_nothing()
        ).rowcount
        conn.execute(
            WAVE.update()
            .where(WAVE.c.id == wave.id)
            .values(status=WaveStatus.SENDING, started_at=sa.func.coalesce(WAVE.c.started_at, now))
        )
        conn.execute(
            CAMPAIGN.update()
            .where(CAMPAIGN.c.id == lock.campaign_id)
            .values(
                frozen_at=sa.func.coalesce(CAMPAIGN.c.frozen_at, now),
                first_sent_at=sa.func.coalesce(CAMPAIGN.c.first_sent_at, now),
                state="active",
            )
        )
    return int(inserted or 0)


# --------------------------------------------------------------------------- claims


def defer_quiet_sms(store: Store, wave_id: int, until: datetime) -> int:
    """SMS of the wave may not go before `until` (quiet hours): push their next attempt,
    marked as held (reported as such, not as retries) until their outcome is written."""
    with store.transaction(immediate=True) as conn:
        return int(
            conn.execute(
                OUTBOX.update()
                .where(
                    OUTBOX.c.wave_id == wave_id,
                    OUTBOX.c.channel == "sms",
                    OUTBOX.c.state == OutboxState.QUEUED,
                    sa.or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at < until),
                )
                .values(next_attempt_at=until, reason=wave_state.HELD_REASON)
            ).rowcount
        )


def claim_batch(
    store: Store, wave_id: int, holder: str, size: int, now: datetime, lease: timedelta
) -> list[ClaimedRow]:
    """Move up to `size` due rows from queued to sending, owned by `holder`, in one statement
    (`store.outbox.claim`)."""
    with store.transaction(immediate=True) as conn:
        return rules.claim(conn, wave_id, holder, size, now, lease)


def extend_claims(store: Store, holder: str, until: datetime) -> None:
    """Heartbeat: the rows this holder is sending stay its own until `until`."""
    with store.transaction(immediate=True) as conn:
        conn.execute(
            OUTBOX.update()
            .where(OUTBOX.c.claimed_by == holder, OUTBOX.c.state == OutboxState.SENDING)
            .values(lease_expires_at=until)
        )


@dataclass(frozen=True)
class GroupRecord:
    key: str
    attributes: dict[str, Any] | str  # a str is the JSON text (see group_records)
    category: str | None
    email: str | None
    phone: str | None


def group_records(
    store: Store, lock_id: int, rows: Sequence[ClaimedRow]
) -> dict[int, list[GroupRecord]]:
    """The records each claimed row's message lists (its group, leader first), by row id.

    `lock_id` is the lock whose recipients form the groups.
    """
    with store.read() as conn:
        return grouped_records(conn, lock_id, rows)


def grouped_records(
    conn: sa.Connection,
    lock_id: int,
    rows: Sequence[ClaimedRow],
    recipients: sa.Table = RECIPIENT,
) -> dict[int, list[GroupRecord]]:
    """`group_records` on an open connection, from `recipients` (a dry run's virtual lock)."""
    groups = {(row.channel, row.group_key): row.id for row in rows if row.group_key is not None}
    singles = {row.record_id: row.id for row in rows if row.group_key is None}
    found: dict[int, list[GroupRecord]] = {row.id: [] for row in rows}
    # The attributes stay JSON text here (on SQLite): the render process decodes them,
    # which keeps that CPU off the process that drives the SMTP connections.
    attributes = sa.type_coerce(RECORD.c.attributes, sa.Text).label("attributes")
    query = sa.select(
        recipients.c.channel,
        recipients.c.group_key,
        recipients.c.record_id,
        RECORD.c.key,
        attributes,
        RECORD.c.category,
        RECORD.c.email,
        RECORD.c.phone,
    ).join(RECORD, RECORD.c.id == recipients.c.record_id)
    if groups:
        keys = sorted({key for _, key in groups})
        channels = sorted({channel for channel, _ in groups})
        result = conn.execute(
            query.where(
                recipients.c.lock_id == lock_id,
                recipients.c.channel.in_(channels),
                recipients.c.group_key.in_(keys),
            ).order_by(recipients.c.id)
        )
        for row in result:
            target = groups.get((row.channel, row.group_key))
            if target is not None:
                found[target].append(_group_record(row))
    if singles:
        # a one-record message needs that record, whatever channel or group the lock
        # had it on (a relaunch may retry on SMS a record the lock reached by email)
        result = conn.execute(
            sa.select(
                RECORD.c.id.label("record_id"), RECORD.c.key, attributes,
                RECORD.c.category, RECORD.c.email, RECORD.c.phone,
            ).where(RECORD.c.id.in_([r for r in singles if r is not None]))
        )  # fmt: skip
        for row in result:
            target = singles.get(row.record_id)
            if target is not None and not found[target]:
                found[target].append(_group_record(row))
    return found


def _group_record(row: Any) -> GroupRecord:
    return GroupRecord(row.key, row.attributes or {}, row.category, row.email, row.phone)


def suppressed_now(
    store: Store, rows: Sequence[ClaimedRow], category: str | None
) -> dict[int, str]:
    """Claimed rows whose address got suppressed since the outbox was made: id → reason."""
    if not rows:
        return {}
    normal = {
        row.id: (row.channel, row.address.lower() if row.channel == "email" else row.address)
        for row in rows
    }
    with store.read() as conn:
        found = suppressions.reasons(conn, normal.values(), category)
    return {row_id: f"suppressed: {found[key]}" for row_id, key in normal.items() if key in found}


# --------------------------------------------------------------------------- outcomes


_STILL_OURS = sa.select(OUTBOX.c.id).where(
    OUTBOX.c.id.in_(sa.bindparam("h_ids", expanding=True)),
    OUTBOX.c.claimed_by == sa.bindparam("h_holder"),
    OUTBOX.c.state == OutboxState.SENDING,
)
# A slice's handover row, written only when every row of the slice is still ours: the
# common case in one statement; otherwise `_STILL_OURS` says which are.
_HAND_OVER = (
    HANDOVER.insert()
    .from_select(
        ["wave_id", "holder", "messages", "handed_at"],
        sa.select(
            sa.bindparam("h_wave", type_=HANDOVER.c.wave_id.type),
            sa.bindparam("h_holder", type_=HANDOVER.c.holder.type),
            sa.bindparam("h_messages", type_=HANDOVER.c.messages.type),
            sa.bindparam("h_now", type_=HANDOVER.c.handed_at.type),
        ).where(
            ~sa.exists().where(
                OUTBOX.c.id.in_(sa.bindparam("h_ids", expanding=True)),
                sa.or_(
                    OUTBOX.c.claimed_by.is_(None),
                    OUTBOX.c.claimed_by != sa.bindparam("h_holder"),
                    OUTBOX.c.state != OutboxState.SENDING,
                ),
            )
        ),
    )
    .returning(HANDOVER.c.id)
)
_DONE = (
    HANDOVER.update()
    .where(HANDOVER.c.id.in_(sa.bindparam("d_ids", expanding=True)))
    .values(done_at=sa.bindparam("d_now", type_=HANDOVER.c.done_at.type))
)


def record_outcomes(
    store: Store,
    holder: str,
    outcomes: Sequence[RowOutcome],
    *,
    campaign_id: int,
    campaign: str,
    now: datetime,
    handovers: Sequence[int] = (),
) -> None:
    """Write outcomes in one transaction; a hard bounce also suppresses the address (for
    every campaign) and records a `bounced` event. The `handovers` rows, whose messages
    these outcomes settle, are deleted in the same transaction."""
    if not outcomes and not handovers:
        return
    with store.transaction(immediate=True) as conn:
        _write_outcomes(conn, holder, outcomes, campaign_id=campaign_id, campaign=campaign, now=now)
        if handovers:
            conn.execute(HANDOVER.delete().where(HANDOVER.c.id.in_(list(handovers))))


@dataclass(frozen=True)
class Slice:
    """Messages handed over together: `handover` is their `outbox_handover` row (None when
    none of them is ours any more), `ours` the outbox ids still claimed by this sender."""

    handover: int | None
    ours: frozenset[int]


def write_journal(
    store: Store,
    holder: str,
    wave_id: int,
    *,
    outcomes: Sequence[RowOutcome] = (),
    done: Sequence[int] = (),
    marks: Sequence[Sequence[tuple[int, str]]] = (),
    campaign_id: int,
    campaign: str,
    now: datetime,
) -> list[Slice]:
    """One transaction of a send's journal (`engine._Journal`): outcomes that cannot wait
    for the batch (every one but `sent`), the `done` handover rows (each message of those
    slices has its outcome: those not written otherwise were sent), and one handover row
    per slice in `marks`, `(outbox id, message id)` pairs about to go to the transport.

    Returns a `Slice` per mark: only the rows still claimed by `holder` may go (another
    sender takes back the rows of a sender whose lease expired).
    """
    slices: list[Slice] = []
    with store.transaction(immediate=True, bump=bool(outcomes)) as conn:
        _write_outcomes(conn, holder, outcomes, campaign_id=campaign_id, campaign=campaign, now=now)
        if done:
            conn.execute(_DONE, {"d_ids": list(done), "d_now": now})
        for mark in marks:
            params = {"h_wave": wave_id, "h_holder": holder, "h_now": now}
            kept = [row_id for row_id, _ in mark]
            handover = conn.execute(
                _HAND_OVER, {**params, "h_ids": kept, "h_messages": json.dumps(mark)}
            ).scalar()
            if handover is None:  # some rows are no longer ours: hand over the others
                ours = set(conn.execute(_STILL_OURS, {"h_ids": kept, "h_holder": holder}).scalars())
                kept = [row_id for row_id in kept if row_id in ours]
                if kept:
                    messages = json.dumps([[i, mid] for i, mid in mark if i in ours])
                    handover = conn.execute(
                        _HAND_OVER, {**params, "h_ids": kept, "h_messages": messages}
                    ).scalar()
            slices.append(Slice(handover, frozenset(kept) if handover else frozenset()))
    return slices


def _write_outcomes(
    conn: sa.Connection,
    holder: str,
    outcomes: Sequence[RowOutcome],
    *,
    campaign_id: int,
    campaign: str,
    now: datetime,
) -> None:
    rules.outcome(conn, holder, outcomes, now)
    bounces = [o for o in outcomes if o.bounce_code is not None]
    if bounces:
        _record_bounces(conn, bounces, campaign=campaign, now=now)


def _record_bounces(
    conn: sa.Connection, bounces: Sequence[RowOutcome], *, campaign: str, now: datetime
) -> None:
    """A hard bounce met while sending is a `bounced` event like any other: recorded by the
    one event writer (linked to its message, record key included; once, by its id), which
    suppresses the address for every category, as for a bounce `events ingest` reads."""
    items = []
    for o in bounces:
        reply = (o.error or "")[:2000].replace("\x00", "")
        data = {"kind": "hard", "code": o.bounce_code, "reply": reply}
        if o.message_id:
            event = Event(type=EventType.BOUNCED, message_id=o.message_id, at=now, data=data)
        else:  # never sent with an id: named by its address
            event = Event(type=EventType.BOUNCED, address=o.row.address, at=now, data=data)
        items.append(Incoming(event, _bounce_id(o)))
    record_events(conn, items, now=now)


def _bounce_id(o: RowOutcome) -> str:
    """The event id of a bounce met while sending: one per message, whoever records it."""
    event_id = f"send:{o.message_id or o.row.id}:bounced"
    if len(event_id) > 64:  # the event table's key
        event_id = f"send:{o.row.id}:bounced"
    return event_id


# --------------------------------------------------------------------------- uncertain rows


@dataclass(frozen=True)
class UncertainRow:
    id: int
    channel: str
    address: str
    record_key: str | None
    message_id: str | None
    claimed_by: str | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Abandoned:
    """What `mark_abandoned` found of senders that stopped: rows in doubt, rows given back
    to the queue, rows whose slice had gone through (sent)."""

    uncertain: int = 0
    requeued: int = 0
    sent: int = 0
    holders: tuple[str, ...] = ()


def mark_abandoned(store: Store, wave_id: int, holder: str, now: datetime) -> Abandoned:
    """Settle the rows in `sending` whose sender is gone (lease expired, or a dead process of
    this host) from its handover rows: a row of a done slice was sent; a row of a slice
    handed over but not done becomes `uncertain` (it may have reached the server, so it is
    not re-sent); a row no slice names was only claimed and goes back to `queued`."""
    with store.transaction(immediate=True) as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.id, OUTBOX.c.claimed_by, OUTBOX.c.lease_expires_at).where(
                OUTBOX.c.wave_id == wave_id,
                OUTBOX.c.state == OutboxState.SENDING,
                sa.or_(OUTBOX.c.claimed_by.is_(None), OUTBOX.c.claimed_by != holder),
            )
        ).all()
        dead = {h for h in {row.claimed_by for row in rows} if holder_is_dead(h)}
        gone = [
            row
            for row in rows
            if row.claimed_by in dead
            or row.lease_expires_at is None
            or aware(row.lease_expires_at) <= now  # type: ignore[operator]
        ]
        holders = sorted({str(row.claimed_by) for row in gone})
        handed: dict[int, tuple[str, datetime | None]] = {}  # outbox id → message id, done at
        for messages, done_at in conn.execute(
            sa.select(HANDOVER.c.messages, HANDOVER.c.done_at).where(
                HANDOVER.c.wave_id == wave_id, HANDOVER.c.holder.in_(holders)
            )
        ):
            for row_id, mid in json.loads(messages):
                handed[int(row_id)] = (mid, aware(done_at))
        sent = [row.id for row in gone if row.id in handed and handed[row.id][1] is not None]
        doubt = [row.id for row in gone if row.id in handed and handed[row.id][1] is None]
        claimed = [row.id for row in gone if row.id not in handed]
        if sent:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == sa.bindparam("s_id"))
                .values(
                    state=OutboxState.SENT,
                    message_id=sa.bindparam("s_mid"),
                    sent_at=sa.bindparam("s_at", type_=OUTBOX.c.sent_at.type),
                    attempts=OUTBOX.c.attempts + 1,
                    error=None,
                    next_attempt_at=None,
                    claimed_by=None,
                    lease_expires_at=None,
                    updated_at=now,
                ),
                [{"s_id": i, "s_mid": handed[i][0], "s_at": handed[i][1]} for i in sent],
            )
        if doubt:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == sa.bindparam("u_id"))
                .values(
                    state=OutboxState.UNCERTAIN,
                    message_id=sa.bindparam("u_mid"),
                    error=sa.func.coalesce(OUTBOX.c.error + sa.literal("; "), "")
                    + sa.literal("sender ")
                    + sa.func.coalesce(OUTBOX.c.claimed_by, "?")
                    + sa.literal(" stopped while sending (it may or may not have gone out)"),
                    updated_at=now,
                ),
                [{"u_id": i, "u_mid": handed[i][0]} for i in doubt],
            )
        for chunk in iter_ids(claimed, 500):
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id.in_(chunk))
                .values(
                    state=OutboxState.QUEUED,
                    claimed_by=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        if holders:
            conn.execute(
                HANDOVER.delete().where(
                    HANDOVER.c.wave_id == wave_id, HANDOVER.c.holder.in_(holders)
                )
            )
    return Abandoned(len(doubt), len(claimed), len(sent), tuple(holders))


def uncertain_rows(store: Store, wave_id: int, limit: int | None = None) -> list[UncertainRow]:
    """The wave's uncertain rows, with the record key of their leader."""
    query = (
        sa.select(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.address,
            RECORD.c.key,
            OUTBOX.c.message_id,
            OUTBOX.c.claimed_by,
            OUTBOX.c.error,
        )
        .select_from(OUTBOX.outerjoin(RECORD, RECORD.c.id == OUTBOX.c.record_id))
        .where(OUTBOX.c.wave_id == wave_id, OUTBOX.c.state == OutboxState.UNCERTAIN)
        .order_by(OUTBOX.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.read() as conn:
        return [UncertainRow(*row) for row in conn.execute(query)]


def requeue_uncertain(store: Store, wave_id: int, now: datetime) -> int:
    """`send --retry-uncertain`: the person decided these may be sent again."""
    with store.transaction(immediate=True) as conn:
        return int(
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.wave_id == wave_id, OUTBOX.c.state == OutboxState.UNCERTAIN)
                .values(
                    state=OutboxState.QUEUED,
                    claimed_by=None,
                    lease_expires_at=None,
                    next_attempt_at=None,
                    updated_at=now,
                )
            ).rowcount
        )


# --------------------------------------------------------------------------- figures


@dataclass
class WaveCounts:
    states: dict[str, int] = field(default_factory=dict)

    def get(self, state: OutboxState) -> int:
        return self.states.get(state.value, 0)

    @property
    def total(self) -> int:
        return sum(self.states.values())


def wave_counts(store: Store, wave_id: int) -> WaveCounts:
    """Rows per state (what waits, and until when: `store.wave_state.wave_progress`)."""
    with store.read() as conn:
        states = {
            str(state): int(n)
            for state, n in conn.execute(
                sa.select(OUTBOX.c.state, sa.func.count())
                .where(OUTBOX.c.wave_id == wave_id)
                .group_by(OUTBOX.c.state)
            )
        }
    return WaveCounts(states)


def due_count(store: Store, wave_id: int, now: datetime) -> int:
    """Queued rows that may be sent now."""
    with store.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(rules.due(wave_id, now))).scalar_one()
        )


def finish_wave(store: Store, wave_id: int, now: datetime) -> bool:
    """Mark the wave done when nothing is queued or sending any more (else it stays sending)."""
    with store.transaction(immediate=True) as conn:
        return wave_state.finish_wave(conn, wave_id, WaveStatus.DONE, now) == WaveStatus.DONE


def iter_ids(values: Iterable[int], size: int) -> Iterable[list[int]]:
    chunk: list[int] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
