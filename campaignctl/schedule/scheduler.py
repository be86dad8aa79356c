"""The scheduler's pass: what `scheduler tick` does once and `scheduler run` every minute.

One pass, under the `scheduler` lease:
1. read the campaigns applied to the store (their definitions, not the files);
2. ask `due_waves` which of their waves are due, given the waves the store knows;
3. create a Wave row for each (status `scheduled`, or `missed` when it is later than
   `max_lateness`); the unique occurrence key means never twice, whatever happens;
4. run every scheduled or interrupted (`sending`) wave whose time has come through
   `runner.run_wave`, renewing the lease between waves — so a crashed pass's wave is
   resumed by the next one. A wave whose rows all wait (SMS held by quiet hours,
   retries) is left alone until the first pass after their time, which sends them; so
   are the held SMS and retries of a `send` by hand (never the rest of a send a person
   stopped).
The lease is held by the caller (`scheduler tick` for one pass, the daemon for its life).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.automation.engine import AutomationPass, automation_pass
from campaignctl.clock import aware
from campaignctl.delivery.quiet_hours import next_allowed
from campaignctl.enums import CampaignState, OutboxState, WaveState, WaveStatus
from campaignctl.errors import CampaignctlError, ExitCode, TemporaryFailure
from campaignctl.plan.lock import sendable_campaign
from campaignctl.schedule import runner
from campaignctl.schedule.relaunch import CAMPAIGN, WAVE, AppliedCampaign
from campaignctl.store.lease import get_lease
from campaignctl.store.store import Store
from campaignctl.store.tables import OUTBOX
from campaignctl.store.wave_state import exit_code as combined_exit_code
from campaignctl.store.wave_state import wave_progress
from campaignctl.store.waves import NewWave, add_wave, wave_keys
from campaignctl.waves.due import DueWave
from campaignctl.waves.known import SchedulerOptions, known_waves, pending_waves
from campaignctl.waves.timeline import PlannedWave, first_send_at, workspace_timeline

if TYPE_CHECKING:
    from campaignctl.spec.models import Campaign
    from campaignctl.spec.workspace import Workspace
    from campaignctl.store.lease import HeldLease

LEASE_NAME = "scheduler"
ACTIVE_STATES = [CampaignState.SCHEDULED, CampaignState.ACTIVE]


class ActionType(enum.StrEnum):
    SCHEDULED = "scheduled"  # a wave row created for a due occurrence or relaunch
    MISSED = "missed"  # created as missed: later than max_lateness
    SENT = "sent"  # run_wave finished it
    WAITING = "waiting"  # run_wave sent what it could; the rest waits (quiet hours, retries)
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
    exit_code: ExitCode = ExitCode.OK  # what this action makes of `scheduler tick`'s code

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
    automations: AutomationPass | None = None  # what the automations did (issue 20)

    def count(self, kind: ActionType) -> int:
        return sum(1 for a in self.actions if a.type == kind)

    @property
    def exit_code(self) -> ExitCode:
        """The pass's waves in one code (wave_state): 1 when a wave failed or was missed or
        a message failed or is uncertain; else 75 while messages wait or a wave was
        postponed; else 0."""
        failed = [ExitCode.FAILED] if self.automations and self.automations.failed else []
        return combined_exit_code([*(a.exit_code for a in self.actions), *failed])

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(t)} {t}" for t in ActionType)
        line = f"pass at {self.now:%Y-%m-%d %H:%M:%S %Z}: {counts}"
        if self.automations is not None and self.automations.campaigns:
            line += f"; {self.automations.text()}"
        return line


def applied_campaigns(conn: Connection) -> list[AppliedCampaign]:
    rows = conn.execute(
        sa.select(CAMPAIGN).where(CAMPAIGN.c.state.in_(ACTIVE_STATES)).order_by(CAMPAIGN.c.name)
    )
    return [AppliedCampaign.from_row(row) for row in rows]


def scheduled_first_send(
    store: Store, campaign: Campaign, timezone: str, now: datetime
) -> datetime | None:
    """When the campaign's first send is scheduled, if that is after `now` and it was not
    sent yet: a `send` by hand now sends it early (it creates that wave, which the
    scheduler then never creates again). None without `send_at` or once the wave exists.
    An archived campaign is refused as such first (StateError), before anything is asked."""
    with store.read() as conn:
        sendable_campaign(conn, campaign.name)
        at = first_send_at(campaign, timezone)
        if at is None or at <= now or f"{campaign.name}/0/0" in known_waves(conn):
            return None
    return at


def _local(wave_at: datetime, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return wave_at.astimezone(ZoneInfo(tz))


def _create_waves(
    store: Store, ids: dict[str, int], due: list[DueWave], options: SchedulerOptions, now: datetime
) -> list[Action]:
    """Wave rows for the due decisions, in one transaction; keys already there are skipped."""
    actions: list[Action] = []
    with store.transaction(immediate=True) as conn:
        known = wave_keys(conn)
        for item in due:
            wave = item.wave
            if item.decision == "wait" or wave.key in known:
                continue
            missed = item.decision == "missed"
            note = item.missed_note(options.max_lateness) if missed else wave.note
            _, number = add_wave(
                conn,
                NewWave(
                    campaign_id=ids[wave.campaign], kind=wave.kind, occurrence_key=wave.key,
                    scheduled_for=wave.at, created_at=now, note=note,
                    status=WaveStatus.MISSED if missed else WaveStatus.SCHEDULED,
                    target=str(wave.target) if wave.target else None,
                    channels=[str(c) for c in wave.channels],
                ),
            )  # fmt: skip
            known.add(wave.key)
            kind = ActionType.MISSED if missed else ActionType.SCHEDULED
            code = ExitCode.FAILED if missed else ExitCode.OK
            actions.append(Action(kind, wave.campaign, wave.key, wave.local, number, note, code))
    return actions


def _runnable(store: Store, now: datetime) -> list[Any]:
    """Waves to run now: scheduled ones whose time has come, and `sending` ones with rows due
    (or none yet: interrupted before its rows were written). A wave sent by hand only when
    what is due of it is held SMS or retries whose time came: the rest of a send a person
    stopped (Ctrl-C, --limit) is theirs to resume."""
    o = OUTBOX.c
    stamp = sa.bindparam("now", now, type_=o.next_attempt_at.type)
    due = sa.or_(
        o.state == OutboxState.SENDING,
        sa.and_(
            o.state == OutboxState.QUEUED,
            sa.or_(o.next_attempt_at.is_(None), o.next_attempt_at <= stamp),
        ),
    )
    # held or retried (a time was set): what a `send` by hand leaves for later
    deferred = sa.and_(o.state == OutboxState.QUEUED, o.next_attempt_at.is_not(None))

    def rows(*where: Any) -> Any:
        return sa.select(o.id).where(o.wave_id == WAVE.c.id, *where).exists()

    planned = WAVE.c.scheduled_for <= now
    with store.read() as conn:
        return conn.execute(
            sa.select(WAVE.c.id, WAVE.c.number, WAVE.c.occurrence_key,
                      sa.func.coalesce(WAVE.c.scheduled_for, WAVE.c.created_at).label("due"),
                      CAMPAIGN.c.name, CAMPAIGN.c.definition)
            .join(CAMPAIGN, CAMPAIGN.c.id == WAVE.c.campaign_id)
            .where(
                sa.or_(
                    sa.and_(WAVE.c.status == WaveStatus.SCHEDULED, planned),
                    sa.and_(WAVE.c.status == WaveStatus.SENDING, planned,
                            sa.or_(~rows(), rows(due))),
                    sa.and_(WAVE.c.status == WaveStatus.SENDING, WAVE.c.scheduled_for.is_(None),
                            rows(due, deferred), ~rows(due, sa.not_(deferred))),
                )
            )
            .order_by("due", WAVE.c.id)
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
    """One pass: create the due waves, run every wave whose time has come, then advance
    the active automations."""
    result = PassResult(now)

    def emit(action: Action) -> None:
        result.actions.append(action)
        if log is not None:
            log(action)

    with store.read() as conn:
        campaigns = applied_campaigns(conn)
        due = pending_waves(conn, [c.spec for c in campaigns], options, now)
    ids = {c.name: c.id for c in campaigns}
    for action in _create_waves(store, ids, due, options, now):
        emit(action)
    for row in _runnable(store, now):
        if stop is not None and stop.is_set():
            result.interrupted = True
            break
        if lease is not None:
            lease.renew()
        tz = (row.definition.get("schedule") or {}).get("timezone") or options.timezone
        due_at = _local(aware(row.due), tz)
        base = (row.name, row.occurrence_key, due_at, row.number)
        try:
            done = runner.run_due_wave(store, workspace, row.id, now=now)
        except TemporaryFailure as exc:
            emit(Action(ActionType.POSTPONED, *base, exc.message, ExitCode.TEMPFAIL))
            continue
        except CampaignctlError as exc:  # the wave is marked failed (run_due_wave)
            emit(Action(ActionType.FAILED, *base, exc.message, ExitCode.FAILED))
            continue
        kind = _ACTION_OF_STATE.get(done.state, ActionType.WAITING)
        emit(Action(kind, *base, done.text(row.name, options.timezone), done.exit_code))
    if result.interrupted:
        return result
    # after the due waves: an automation step's wave that a killed pass left half sent has
    # just been finished above, so its records go on in this pass (none waits a pass more)
    result.automations = automation_pass(
        store,
        workspace,
        now,
        lambda wave_id: runner.run_wave(store, workspace, wave_id, now=now),
        renew=lease.renew if lease is not None else None,
        wait_end=_quiet_hours_end(workspace),
    )
    return result


def _quiet_hours_end(workspace: Workspace) -> Callable[[datetime], datetime] | None:
    """An automation's wait that ends in the SMS quiet hours ends when they do."""
    config = workspace.config
    if config is None or config.sms is None or config.sms.quiet_hours is None:
        return None
    quiet, tz = config.sms.quiet_hours, ZoneInfo(config.timezone)
    return lambda at: next_allowed(at, quiet, tz)


_ACTION_OF_STATE = {
    WaveState.DONE: ActionType.SENT,
    WaveState.INCOMPLETE: ActionType.SENT,  # nothing left to send; the text names the doubt
    WaveState.FAILED: ActionType.FAILED,
}


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
    lease = get_lease(store, LEASE_NAME)
    with store.read() as conn:
        campaigns = applied_campaigns(conn)
        known = known_waves(conn)
        rows = conn.execute(
            sa.select(CAMPAIGN.c.name.label("campaign"), WAVE.c.number, WAVE.c.occurrence_key,
                      WAVE.c.status, WAVE.c.scheduled_for, WAVE.c.note, WAVE.c.id)
            .join(CAMPAIGN, CAMPAIGN.c.id == WAVE.c.campaign_id)
            .order_by(WAVE.c.scheduled_for.desc(), WAVE.c.id.desc())
            .limit(limit)
        ).all()  # fmt: skip
        progress = wave_progress(conn, [r.id for r in rows], now)
    recent = [
        {**r._mapping, "progress": progress[r.id]} for r in rows
    ]  # each with its progress: what is held or waits, and until when
    upcoming = [
        w
        for w in workspace_timeline(
            [c.spec for c in campaigns], options.timezone, now, now + horizon
        )
        if w.key not in known
    ][:limit]
    held = lease is not None and lease.held(now)
    return SchedulerStatus(lease, held, upcoming, recent)
