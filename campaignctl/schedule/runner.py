"""Running one wave: the seam between the scheduler (or `relaunch`) and the send engine.

`run_wave` is what the scheduler's pass and `campaignctl relaunch` call for a
wave row that is due. It decides who the wave reaches (a fresh lock for a first
send or a recurrence, the relaunch selection for a relaunch), hands that to the
send engine, and records the wave's status. The two functions that belong to
other parts of the code (`lock_for_wave`: plan/lock; `send_wave`: delivery) are
the only seams to wire; until then they raise StateError saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from campaignctl.automation.steps import step_spec
from campaignctl.enums import WaveKind, WaveStatus
from campaignctl.errors import CampaignctlError, ExitCode, TemporaryFailure
from campaignctl.plan.lock import active_lock_id, lock_campaign
from campaignctl.schedule.relaunch import (
    WAVE,
    AppliedCampaign,
    previous_wave,
    relaunch_recipients,
)
from campaignctl.spec.models import RelaunchTarget
from campaignctl.store import wave_state
from campaignctl.store.store import Store
from campaignctl.store.tables import CAMPAIGN, OUTBOX
from campaignctl.store.wave_state import WaveProgress, WaveState

if TYPE_CHECKING:
    from campaignctl.spec.workspace import Workspace


@dataclass(frozen=True)
class WaveRun:
    """What the send engine reports for a wave, and where the wave stands after it."""

    wave_id: int
    status: WaveStatus  # done; failed when no message could be sent; sending while rows wait
    sent: int = 0
    failed: int = 0
    note: str | None = None
    progress: WaveProgress | None = None  # held SMS, retries, uncertain rows (wave_state)
    # records the lock left out: another active questionnaire campaign asks them
    other_campaigns: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> WaveState:
        return self._progress().state

    @property
    def exit_code(self) -> ExitCode:
        return self._progress().exit_code

    def _progress(self) -> WaveProgress:
        progress = self.progress or WaveProgress(self.status, failed=self.failed)
        return replace(progress, status=self.status)

    def text(self, campaign: str, timezone: str) -> str:
        """'6 sent, 0 failed', what waits and until when, and what is uncertain with the
        command that resolves it."""
        text = f"{self.sent} sent, {self.failed} failed"
        progress = self.progress
        if progress is None:
            return text
        for waits in progress.waits(timezone):
            text += f"; {waits}"
        if progress.uncertain:
            text += (
                f", {progress.uncertain} uncertain (maybe delivered before a crash: "
                f"`campaignctl send {campaign}` lists them, --retry-uncertain resends them)"
            )
        for other, n in self.other_campaigns.items():
            text += f"; {n} record(s) not contacted: already asked by {other}"
        return text


@dataclass(frozen=True)
class WaveJob:
    """Everything the send engine needs to know about the wave it sends."""

    wave_id: int
    number: int  # templates get wave.number and wave.kind ("Rappel — …")
    kind: WaveKind
    campaign: AppliedCampaign
    lock_id: int | None
    recipients: sa.Select[Any] | None  # relaunches: who; None: every recipient of the lock
    spec: Any = None  # automation waves: the campaign as its send step sends it


def lock_for_wave(
    store: Store, workspace: Workspace, campaign: AppliedCampaign, now: datetime
) -> int:
    """The lock a first send or a recurrence sends from.

    A one-off campaign sends the lock a person made and reviewed (or one made now if
    there is none); each recurrence re-evaluates its segments in a fresh lock.
    """
    with store.read() as conn:
        existing = active_lock_id(conn, campaign.id)
    recurring = campaign.spec.schedule is not None and campaign.spec.schedule.recurrence
    if existing is not None and not recurring:
        return existing
    view = lock_campaign(store, workspace, campaign.name, refresh=existing is not None, now=now)
    return view.lock_id


def send_wave(store: Store, workspace: Workspace, job: WaveJob, now: datetime) -> WaveRun:
    """Create the wave's outbox rows and send them through the send engine (resumable).

    A relaunch's recipients are its own selection: their outbox rows are written here,
    and the engine, finding the wave populated, sends exactly those. Other waves get
    theirs from the lock, as `campaignctl send` does.
    """
    # Lazy for start-up: `scheduler status` and a pass with nothing due never send, and the
    # engine brings render/ and Jinja (61 more modules, ~140 ms: benchmarks/imports.py).
    from campaignctl.delivery.engine import SendOptions, send_campaign

    if job.recipients is not None:
        _relaunch_outbox(store, job, now)
    # an automation step's wave renders in render processes too when it is large: they are
    # given the step's spec (delivery.rendering.render_pool)
    options = SendOptions(wave_id=job.wave_id, spec=job.spec)
    summary = send_campaign(store, workspace, job.campaign.name, options)
    progress = summary.progress
    waits = progress.due or progress.held or progress.waiting
    failed = summary.sent == 0 and summary.failed and not waits
    return WaveRun(
        job.wave_id, WaveStatus.FAILED if failed else WaveStatus.DONE, summary.sent,
        summary.failed + summary.bounced, progress=progress,
        other_campaigns=summary.other_campaigns,
    )  # fmt: skip


def _relaunch_outbox(store: Store, job: WaveJob, now: datetime) -> None:
    """INSERT … SELECT the relaunch selection as queued outbox rows (idempotent)."""
    assert job.recipients is not None
    outbox = OUTBOX
    selection = job.recipients.subquery()
    stamp = sa.bindparam("now", now, type_=outbox.c.created_at.type)
    # one row per channel × address: never two messages of a wave to one address
    source = sa.select(
        sa.literal(job.campaign.id), sa.literal(job.wave_id), sa.func.min(selection.c.record_id),
        sa.func.min(selection.c.group_key), sa.func.min(selection.c.segment),
        selection.c.channel, selection.c.address, sa.literal("queued"), sa.literal(0),
        stamp, stamp,
    ).group_by(selection.c.channel, selection.c.address)  # fmt: skip
    columns = ["campaign_id", "wave_id", "record_id", "group_key", "segment", "channel",
               "address", "state", "attempts", "created_at", "updated_at"]  # fmt: skip
    with store.transaction(immediate=True) as conn:
        if conn.execute(
            sa.select(outbox.c.id).where(outbox.c.wave_id == job.wave_id).limit(1)
        ).first():
            return  # already written by an earlier, interrupted pass
        conn.execute(outbox.insert().from_select(columns, source), {"now": now})


def run_wave(store: Store, workspace: Workspace, wave_id: int, *, now: datetime) -> WaveRun:
    """Send one due wave (first send, recurrence or relaunch) and record its outcome.

    The wave goes `sending` before anything is sent, so a crash leaves it to be resumed
    by the next pass; it ends `done` or `failed` as the send engine reports, or stays
    `sending` while rows wait (SMS held by quiet hours, retries): the first pass after
    their time goes on with it.
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
    spec = None
    if wave.kind == WaveKind.AUTOMATION:  # rendered as its step sends, from today's templates
        spec = step_spec(campaign.spec, str(wave.target))
    job = WaveJob(wave_id, wave.number, WaveKind(wave.kind), campaign, lock_id, recipients, spec)
    result = send_wave(store, workspace, job, now)
    status = finish_wave(store, wave_id, result.status, now, result.note)
    return replace(result, status=status)


def run_due_wave(store: Store, workspace: Workspace, wave_id: int, *, now: datetime) -> WaveRun:
    """`run_wave` with the failure policy the scheduler's pass and `relaunch` share: an error
    marks the wave failed with its message, then goes on to the caller; a TemporaryFailure
    (its campaign is being sent elsewhere) leaves it scheduled for the next pass."""
    try:
        return run_wave(store, workspace, wave_id, now=now)
    except TemporaryFailure:
        raise
    except CampaignctlError as exc:
        finish_wave(store, wave_id, WaveStatus.FAILED, now, exc.message)
        raise


def finish_wave(
    store: Store, wave_id: int, status: WaveStatus, now: datetime, note: str | None = None
) -> WaveStatus:
    """Record how a wave's run ended (never `done` while a row waits: wave_state)."""
    with store.transaction() as conn:
        status = wave_state.finish_wave(conn, wave_id, status, now, note)
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
    return status
