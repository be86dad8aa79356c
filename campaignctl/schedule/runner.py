"""Running one wave: the seam between the scheduler (or `relaunch`) and the send engine.

`run_wave` is what the scheduler's pass and `campaignctl relaunch` call for a
wave row that is due. It decides who the wave reaches (a fresh lock for a first
send or a recurrence, the relaunch selection for a relaunch), hands that to the
send engine, and records the wave's status. The two functions that belong to
other parts of the code (`lock_for_wave`: plan/lock; `send_wave`: delivery) are
the only seams to wire; until then they raise StateError saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from campaignctl.enums import WaveKind, WaveStatus
from campaignctl.errors import StateError
from campaignctl.schedule.relaunch import (
    WAVE,
    AppliedCampaign,
    current_lock,
    previous_wave,
    relaunch_recipients,
)
from campaignctl.spec.models import RelaunchTarget
from campaignctl.store.store import Store
from campaignctl.store.tables import Campaign

if TYPE_CHECKING:
    from campaignctl.spec.workspace import Workspace

CAMPAIGN = Campaign.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class WaveRun:
    """What the send engine reports for a wave (its status once it returns)."""

    wave_id: int
    status: WaveStatus  # done, or failed when no message could be sent
    sent: int = 0
    failed: int = 0
    note: str | None = None


@dataclass(frozen=True)
class WaveJob:
    """Everything the send engine needs to know about the wave it sends."""

    wave_id: int
    number: int  # templates get wave.number and wave.kind ("Rappel — …")
    kind: WaveKind
    campaign: AppliedCampaign
    lock_id: int | None
    recipients: sa.Select[Any] | None  # relaunches: who; None: every recipient of the lock


def lock_for_wave(
    store: Store, workspace: Workspace, campaign: AppliedCampaign, now: datetime
) -> int:
    """A fresh lock for a first send or a recurrence (the segment re-evaluated now).

    SEAM (plan/lock branch): call the lock function here and return the lock id.
    """
    existing = None
    with store.read() as conn:
        existing = current_lock(conn, campaign.id)
    if existing is not None and campaign.spec.schedule and not campaign.spec.schedule.recurrence:
        return existing  # a one-off campaign sends the lock a person made and reviewed
    raise StateError(
        f"cannot lock {campaign.name!r} for its wave: the lock command is not merged yet",
        hint=f"lock it by hand (campaignctl lock {campaign.name}) once it is",
    )


def send_wave(store: Store, workspace: Workspace, job: WaveJob, now: datetime) -> WaveRun:
    """Create the wave's outbox rows and send them (resumable: a second call completes it).

    SEAM (delivery branch): the send engine's entry point goes here.
    """
    raise StateError(
        f"cannot send wave {job.number} of {job.campaign.name!r}: the send engine is not "
        "merged yet",
        hint="this build of campaignctl schedules waves but cannot send them",
    )


def run_wave(store: Store, workspace: Workspace, wave_id: int, *, now: datetime) -> WaveRun:
    """Send one due wave (first send, recurrence or relaunch) and record its outcome.

    The wave goes `sending` before anything is sent, so a crash leaves it to be resumed
    by the next pass; it ends `done` or `failed` as the send engine reports.
    """
    with store.read() as conn:
        wave = conn.execute(sa.select(WAVE).where(WAVE.c.id == wave_id)).one()
        campaign = AppliedCampaign.from_row(
            conn.execute(sa.select(CAMPAIGN).where(CAMPAIGN.c.id == wave.campaign_id)).one()
        )
        recipients = None
        lock_id = wave.lock_id
        if wave.kind == WaveKind.RELAUNCH:
            previous = previous_wave(conn, campaign.id, wave.number)
            lock_id = lock_id or (previous.lock_id if previous is not None else None)
            recipients = relaunch_recipients(
                conn, campaign, RelaunchTarget(wave.target or RelaunchTarget.NON_RESPONDERS),
                channels=wave.channels or None,
                previous_wave_id=previous.id if previous is not None else None,
                lock_id=lock_id,
            )  # fmt: skip
    if lock_id is None:
        lock_id = lock_for_wave(store, workspace, campaign, now)
    with store.transaction() as conn:
        conn.execute(
            sa.update(WAVE)
            .where(WAVE.c.id == wave_id)
            .values(
                status=WaveStatus.SENDING,
                lock_id=lock_id,
                started_at=sa.func.coalesce(WAVE.c.started_at, now),
            )
        )
    job = WaveJob(wave_id, wave.number, WaveKind(wave.kind), campaign, lock_id, recipients)
    result = send_wave(store, workspace, job, now)
    finish_wave(store, wave_id, result.status, now, result.note)
    return result


def finish_wave(
    store: Store, wave_id: int, status: WaveStatus, now: datetime, note: str | None = None
) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now}
    if note:
        values["note"] = note
    with store.transaction() as conn:
        conn.execute(sa.update(WAVE).where(WAVE.c.id == wave_id).values(**values))
        if status == WaveStatus.DONE:
            conn.execute(
                sa.update(CAMPAIGN)
                .where(
                    CAMPAIGN.c.id == sa.select(WAVE.c.campaign_id).where(WAVE.c.id == wave_id)
                    .scalar_subquery(),
                    CAMPAIGN.c.first_sent_at.is_(None),
                )
                .values(first_sent_at=now, frozen_at=now)
            )  # fmt: skip
