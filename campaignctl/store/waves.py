"""Wave rows: how a wave is created, numbered after its campaign's last one.

The scheduler (a due occurrence, a missed one) and `relaunch` (a relaunch by hand) write
their waves here, so the numbering rule and the columns a new wave sets live once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaignctl.enums import WaveKind, WaveStatus
from campaignctl.store.tables import WAVE


@dataclass(frozen=True)
class NewWave:
    """A wave to create. `occurrence_key` is unique per campaign: the scheduler's key of the
    occurrence, or `CAMPAIGN/manual/NUMBER` for a relaunch by hand."""

    campaign_id: int
    kind: WaveKind
    occurrence_key: str
    scheduled_for: datetime | None
    created_at: datetime
    status: WaveStatus = WaveStatus.SCHEDULED
    lock_id: int | None = None
    target: str | None = None  # a relaunch's target
    channels: list[str] | None = None
    note: str | None = None


def wave_keys(conn: sa.Connection) -> set[str]:
    """The occurrence keys of every wave the store has."""
    return set(conn.execute(sa.select(WAVE.c.occurrence_key)).scalars())


def next_wave_number(conn: sa.Connection, campaign_id: int) -> int:
    """The number the campaign's next wave takes: one after its last (1 for the first)."""
    last = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(WAVE.c.number), 0)).where(
            WAVE.c.campaign_id == campaign_id
        )
    ).scalar_one()
    return int(last) + 1


def add_wave(conn: sa.Connection, wave: NewWave, number: int | None = None) -> tuple[int, int]:
    """Insert `wave` as number `number` (default: `next_wave_number`); (wave id, number)."""
    if number is None:
        number = next_wave_number(conn, wave.campaign_id)
    wave_id = conn.execute(
        sa.insert(WAVE)
        .values(
            campaign_id=wave.campaign_id,
            number=number,
            kind=wave.kind,
            occurrence_key=wave.occurrence_key,
            scheduled_for=wave.scheduled_for,
            status=wave.status,
            lock_id=wave.lock_id,
            target=wave.target,
            channels=wave.channels,
            created_at=wave.created_at,
            note=wave.note,
        )
        .returning(WAVE.c.id)
    ).scalar_one()
    return wave_id, number
