"""The scheduler's pass: what `scheduler tick` does once and `scheduler run` every minute.

One pass, under the `scheduler` lease:
1. read the campaigns applied to the store (their definitions, not the files);
2. ask `due_waves` which of their waves are due, given the waves the store knows;
3. create a Wave row for each (status `scheduled`, or `missed` when it is later than
   `max_lateness`); the unique occurrence key means never twice, whatever happens;
4. run every scheduled or interrupted (`sending`) wave whose time has come through
   `runner.run_wave`, renewing the lease between waves — so a crashed pass's wave is
   resumed by the next one.
The lease is held by the caller (`scheduler tick` for one pass, the daemon for its life).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.enums import CampaignState, WaveStatus
from campaignctl.errors import CampaignctlError, TemporaryFailure
from campaignctl.schedule import runner
from campaignctl.schedule.due import DueWave, KnownState, due_waves
from campaignctl.schedule.due import _human as human_delay
from campaignctl.schedule.relaunch import CAMPAIGN, WAVE, AppliedCampaign
from campaignctl.schedule.timeline import PlannedWave, workspace_timeline
from campaignctl.store.store import Store

if TYPE_CHECKING:
    from campaignctl.spec.workspace import Workspace
    from campaignctl.store.lease import HeldLease

LEASE_NAME = "scheduler"
ACTIVE_STATES = [CampaignState.SCHEDULED, CampaignState.ACTIVE]
_KNOWN = {
    WaveStatus.SCHEDULED: KnownState.CREATED,
    WaveStatus.SENDING: KnownState.CREATED,
    WaveStatus.DONE: KnownState.SENT,
    WaveStatus.FAILED: KnownState.FAILED,
    WaveStatus.MISSED: KnownState.MISSED,
    WaveStatus.CANCELLED: KnownState.MISSED,
}


@dataclass(frozen=True)
class SchedulerOptions:
    timezone: str  # the workspace's, for campaigns that name none
    max_lateness: timedelta
    lease_ttl: timedelta

    @classmethod
    def from_workspace(cls, workspace: Workspace) -> SchedulerOptions:
        config = workspace.config
        assert config is not None
        return cls(config.timezone, config.scheduler.max_lateness, config.scheduler.lease_ttl)


class ActionType(enum.StrEnum):
    SCHEDULED = "scheduled"  # a wave row created for a due occurrence or relaunch
    MISSED = "missed"  # created as missed: later than max_lateness
    SENT = "sent"  # run_wave finished it
    FAILED = "failed"  # run_wave raised: the wave is marked failed with the reason
    POSTPONED = "postponed"  # run_wave said "later" (its campaign is being sent elsewhere)


@dataclass(frozen=True)
class Action:
    """One thing a pass did: one log line."""

    type: ActionType
    campaign: str
    key: str
    due: datetime  # local time of the wave
    wave: int | None = None  # its number
    message: str | None = None

    def text(self) -> str:
        what = f"{self.type}: {self.key} (due {self.due:%Y-%m-%d %H:%M %z}"
        what += f", wave {self.wave})" if self.wave is not None else ")"
        return what + (f": {self.message}" if self.message else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "type": str(self.type),
            "campaign": self.campaign,
            "key": self.key,
            "due": self.due.isoformat(),
            "wave": self.wave,
            "message": self.message,
        }


@dataclass
class PassResult:
    now: datetime
    actions: list[Action] = field(default_factory=list)
    interrupted: bool = False  # stopped between waves (SIGTERM)

    def count(self, kind: ActionType) -> int:
        return sum(1 for a in self.actions if a.type == kind)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(t)} {t}" for t in ActionType)
        return f"pass at {self.now:%Y-%m-%d %H:%M:%S %Z}: {counts}"


def applied_campaigns(conn: Connection) -> list[AppliedCampaign]:
    rows = conn.execute(
        sa.select(CAMPAIGN).where(CAMPAIGN.c.state.in_(ACTIVE_STATES)).order_by(CAMPAIGN.c.name)
    )
    return [AppliedCampaign.from_row(row) for row in rows]


def known_waves(conn: Connection) -> dict[str, KnownState]:
    rows = conn.execute(sa.select(WAVE.c.occurrence_key, WAVE.c.status))
    return {key: _KNOWN[WaveStatus(status)] for key, status in rows}


def _local(wave_at: datetime, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return wave_at.astimezone(ZoneInfo(tz))


def _create_waves(
    store: Store, ids: dict[str, int], due: list[DueWave], options: SchedulerOptions, now: datetime
) -> list[Action]:
    """Wave rows for the due decisions, in one transaction; keys already there are skipped."""
    from campaignctl.spec.types import format_duration

    actions: list[Action] = []
    with store.transaction(immediate=True) as conn:
        known = set(conn.execute(sa.select(WAVE.c.occurrence_key)).scalars())
        for item in due:
            wave = item.wave
            if item.decision == "wait" or wave.key in known:
                continue
            missed = item.decision == "missed"
            number = (
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(WAVE.c.number), 0)).where(
                        WAVE.c.campaign_id == ids[wave.campaign]
                    )
                ).scalar_one()
                + 1
            )
            note = wave.note
            if missed:
                note = (
                    f"missed: {human_delay(item.lateness)} late "
                    f"(max_lateness {format_duration(options.max_lateness)})"
                )
            conn.execute(
                sa.insert(WAVE).values(
                    campaign_id=ids[wave.campaign], number=number, kind=wave.kind,
                    occurrence_key=wave.key, scheduled_for=wave.at,
                    status=WaveStatus.MISSED if missed else WaveStatus.SCHEDULED,
                    target=str(wave.target) if wave.target else None,
                    channels=[str(c) for c in wave.channels], created_at=now, note=note,
                )
            )  # fmt: skip
            known.add(wave.key)
            kind = ActionType.MISSED if missed else ActionType.SCHEDULED
            actions.append(Action(kind, wave.campaign, wave.key, wave.local, number, note))
    return actions


def _runnable(store: Store, now: datetime) -> list[Any]:
    with store.read() as conn:
        return conn.execute(
            sa.select(WAVE.c.id, WAVE.c.number, WAVE.c.occurrence_key, WAVE.c.scheduled_for,
                      CAMPAIGN.c.name, CAMPAIGN.c.definition)
            .join(CAMPAIGN, CAMPAIGN.c.id == WAVE.c.campaign_id)
            .where(
                WAVE.c.status.in_([WaveStatus.SCHEDULED, WaveStatus.SENDING]),
                WAVE.c.scheduled_for <= now,
            )
            .order_by(WAVE.c.scheduled_for, WAVE.c.id)
        ).all()  # fmt: skip


def scheduler_pass(
    store: Store,
    workspace: Workspace,
    options: SchedulerOptions,
    *,
    now: datetime,
    lease: HeldLease | None = None,
    log: Callable[[Action], None] | None = None,
    stop: threading.Event | None = None,
) -> PassResult:
    """One pass: create the due waves, then run every wave whose time has come."""
    result = PassResult(now)

    def emit(action: Action) -> None:
        result.actions.append(action)
        if log is not None:
            log(action)

    with store.read() as conn:
        campaigns = applied_campaigns(conn)
        known = known_waves(conn)
    ids = {c.name: c.id for c in campaigns}
    due = due_waves([c.spec for c in campaigns], options.timezone, now, options.max_lateness, known)
    for action in _create_waves(store, ids, due, options, now):
        emit(action)
    for row in _runnable(store, now):
        if stop is not None and stop.is_set():
            result.interrupted = True
            break
        if lease is not None:
            lease.renew()
        tz = (row.definition.get("schedule") or {}).get("timezone") or options.timezone
        due_at = _local(_aware(row.scheduled_for), tz)
        base = (row.name, row.occurrence_key, due_at, row.number)
        try:
            done = runner.run_wave(store, workspace, row.id, now=now)
        except TemporaryFailure as exc:
            emit(Action(ActionType.POSTPONED, *base, exc.message))
            continue
        except CampaignctlError as exc:
            runner.finish_wave(store, row.id, WaveStatus.FAILED, now, exc.message)
            emit(Action(ActionType.FAILED, *base, exc.message))
            continue
        kind = ActionType.SENT if done.status == WaveStatus.DONE else ActionType.FAILED
        emit(Action(kind, *base, done.text(row.name)))
    return result


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class SchedulerStatus:
    lease: Any  # LeaseInfo | None
    held: bool
    next_waves: list[PlannedWave]
    recent: list[dict[str, Any]]


def scheduler_status(
    store: Store, options: SchedulerOptions, now: datetime, *, horizon: timedelta, limit: int = 10
) -> SchedulerStatus:
    """The lease holder and heartbeat, the waves recorded last, and the next ones due."""
    from campaignctl.store.lease import get_lease

    lease = get_lease(store, LEASE_NAME)
    with store.read() as conn:
        campaigns = applied_campaigns(conn)
        known = known_waves(conn)
        recent = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(CAMPAIGN.c.name.label("campaign"), WAVE.c.number,
                          WAVE.c.occurrence_key, WAVE.c.status, WAVE.c.scheduled_for,
                          WAVE.c.note)
                .join(CAMPAIGN, CAMPAIGN.c.id == WAVE.c.campaign_id)
                .order_by(WAVE.c.scheduled_for.desc(), WAVE.c.id.desc())
                .limit(limit)
            )
        ]  # fmt: skip
    upcoming = [
        w
        for w in workspace_timeline(
            [c.spec for c in campaigns], options.timezone, now, now + horizon
        )
        if w.key not in known
    ][:limit]
    held = lease is not None and lease.held(now)
    return SchedulerStatus(lease, held, upcoming, recent)
