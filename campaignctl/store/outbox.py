"""The outbox's rules, once: the per-contact cap, the claim of due rows, the outcome of a row.

`plan` (targeting), `send` (the wave's rows) and `relaunch` (its selection) count the
messages a contact got of a campaign with `toward_cap` / `capped_addresses`, over the
one state set `OutboxState.toward_cap()`: what the plan says is capped is what send and
relaunch leave out. `claim` moves due rows to `sending` for one sender; `outcome`
writes what became of them. The send engine strings these together
(`delivery/outbox.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from campaignctl.enums import OutboxState
from campaignctl.store.tables import OUTBOX

# ----------------------------------------------------------------------------- the cap


def toward_cap(
    campaign_id: Any,
    channel: Any,
    address: Any,
    *,
    record_id: Any = None,
    other_than_wave: Any = None,
    outbox: sa.Table | sa.sql.Alias = OUTBOX,
) -> sa.ScalarSelect[int]:
    """SQL: how many messages of the campaign count towards `max_messages_per_contact` for
    this contact: those to `address` on `channel` (and, given `record_id`, those to the
    record on any channel), in every wave (but `other_than_wave`), in the states
    `OutboxState.toward_cap()`. Arguments are SQL expressions or values."""
    o = outbox
    mine: Any = sa.and_(o.c.channel == channel, o.c.address == address)
    if record_id is not None:
        mine = sa.or_(o.c.record_id == record_id, mine)
    where = [o.c.campaign_id == campaign_id, o.c.state.in_(OutboxState.toward_cap()), mine]
    if other_than_wave is not None:
        where.append(o.c.wave_id != other_than_wave)
    return sa.select(sa.func.count()).where(*where).scalar_subquery()


def capped_addresses(campaign_id: Any, cap: int) -> sa.Select[Any]:
    """SQL: the (channel, address) pairs that already count `cap` messages of the campaign
    (`toward_cap`, as one aggregate over its outbox: what a plan tests every record
    against)."""
    return (
        sa.select(OUTBOX.c.channel, OUTBOX.c.address)
        .where(OUTBOX.c.campaign_id == campaign_id, OUTBOX.c.state.in_(OutboxState.toward_cap()))
        .group_by(OUTBOX.c.channel, OUTBOX.c.address)
        .having(sa.func.count() >= cap)
    )


# ----------------------------------------------------------------------------- claims


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    id: int
    channel: str
    address: str
    group_key: str | None
    record_id: int | None
    attempts: int


def due(wave_id: Any, now: datetime) -> sa.ColumnElement[bool]:
    """SQL: a row of the wave that may be sent now (queued, its next attempt not later)."""
    return sa.and_(
        OUTBOX.c.wave_id == wave_id,
        OUTBOX.c.state == OutboxState.QUEUED,
        sa.or_(OUTBOX.c.next_attempt_at.is_(None), OUTBOX.c.next_attempt_at <= now),
    )


def claim(
    conn: sa.Connection, wave_id: int, holder: str, size: int, now: datetime, lease: timedelta
) -> list[ClaimedRow]:
    """Move up to `size` due rows from queued to sending, owned by `holder`, in ONE
    statement (in a BEGIN IMMEDIATE on SQLite; FOR UPDATE SKIP LOCKED on PostgreSQL), so
    two senders never hold the same row. Ordered by id."""
    chosen = sa.select(OUTBOX.c.id).where(due(wave_id, now)).limit(size)
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    rows = conn.execute(
        OUTBOX.update()
        .where(OUTBOX.c.id.in_(chosen.scalar_subquery()))
        .values(
            state=OutboxState.SENDING,
            claimed_by=holder,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        .returning(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.address,
            OUTBOX.c.group_key,
            OUTBOX.c.record_id,
            OUTBOX.c.attempts,
        )
    ).all()
    return sorted((ClaimedRow(*row) for row in rows), key=lambda row: row.id)


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What to write on one claimed row after its delivery attempt (or render failure)."""

    row: ClaimedRow
    state: OutboxState
    message_id: str | None = None
    provider_id: str | None = None
    error: str | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    sms_parts: int | None = None
    attempted: bool = True
    bounce_code: str | None = None  # set for a hard bounce: suppress and record an event


# Built once: a send writes outcomes once per batch, and those that are not `sent` as
# soon as a slice ends.
_OUTCOME = (
    OUTBOX.update()
    # the holder still owns it, even if another sender meanwhile marked it uncertain:
    # what actually happened wins
    .where(OUTBOX.c.id == sa.bindparam("b_id"), OUTBOX.c.claimed_by == sa.bindparam("b_holder"))
    .values(
        state=sa.bindparam("b_state"),
        message_id=sa.func.coalesce(sa.bindparam("b_mid"), OUTBOX.c.message_id),
        provider_id=sa.bindparam("b_pid"),
        error=sa.bindparam("b_error"),
        reason=sa.bindparam("b_reason"),
        next_attempt_at=sa.bindparam("b_next", type_=OUTBOX.c.next_attempt_at.type),
        sms_parts=sa.func.coalesce(sa.bindparam("b_parts"), OUTBOX.c.sms_parts),
        attempts=sa.bindparam("b_attempts"),
        sent_at=sa.bindparam("b_sent", type_=OUTBOX.c.sent_at.type),
        claimed_by=None,
        lease_expires_at=None,
        updated_at=sa.bindparam("b_now", type_=OUTBOX.c.updated_at.type),
    )
)


def outcome(
    conn: sa.Connection, holder: str, outcomes: Sequence[RowOutcome], now: datetime
) -> None:
    """Write what became of claimed rows (one executemany), each only while `holder` still
    owns it; the row is released (no owner, no lease). A hard bounce's suppression and
    event are the caller's (`delivery.outbox`, through the event writer)."""
    if not outcomes:
        return
    params = [
        {
            "b_id": o.row.id,
            "b_holder": holder,
            "b_state": o.state.value,
            "b_mid": o.message_id,
            "b_pid": o.provider_id,
            "b_error": o.error[:2000] if o.error else None,
            "b_reason": o.reason,
            "b_next": o.next_attempt_at,
            "b_parts": o.sms_parts,
            "b_attempts": o.row.attempts + (1 if o.attempted else 0),
            "b_sent": now if o.state == OutboxState.SENT else None,
            "b_now": now,
        }
        for o in outcomes
    ]
    conn.execute(_OUTCOME, params)
