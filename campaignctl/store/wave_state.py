"""Where a wave stands, from its outbox rows: the one place that maps them to what people see.

A wave's stored status says what the scheduler did with it (scheduled, sending, done,
failed, missed); its outbox rows say whether anything still waits. This module reads
both and decides, for every command that shows a wave or ends on one:

- the state shown (`report`, `scheduler status`, the tick's line): `sending` while rows
  are due or in flight, `held` while SMS wait for the end of quiet hours, `waiting`
  while rows wait for a retry, `incomplete` when only uncertain rows are left (a person
  decides), else the stored status;
- the exit code (`send`, `scheduler tick`): 1 when a message failed for good or is
  uncertain (a person must look), else 75 while messages are held or wait for a retry
  (they go out by themselves later), else 0. 1 wins over 75: cron must not take a
  failure for "will retry".

It also holds the invariant of DESIGN.md §3: a wave is never `done` while a row is
queued or being sent (`finish_wave`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from campaignctl.clock import aware, weekday_text
from campaignctl.enums import OutboxState, WaveState, WaveStatus
from campaignctl.errors import ExitCode
from campaignctl.store.tables import CAMPAIGN, OUTBOX, WAVE

# The `reason` of a queued SMS pushed past quiet hours (cleared when its outcome is written).
HELD_REASON = "quiet hours"


@dataclass(frozen=True)
class WaveProgress:
    """The rows of a wave that are not final yet, and the failures of the run that ends."""

    status: WaveStatus  # as stored
    due: int = 0  # queued and due now, or being sent
    held: int = 0  # SMS queued until quiet hours end
    held_until: datetime | None = None
    waiting: int = 0  # queued for a later retry
    next_retry: datetime | None = None
    uncertain: int = 0
    failed: int = 0  # failed or bounced for good (by the run being reported)

    @property
    def state(self) -> WaveState:
        if self.status in (WaveStatus.SENDING, WaveStatus.DONE):
            if self.due:
                return WaveState.SENDING
            if self.held:
                return WaveState.HELD
            if self.waiting:
                return WaveState.WAITING
            if self.uncertain:
                return WaveState.INCOMPLETE
        return WaveState(str(self.status))

    @property
    def exit_code(self) -> ExitCode:
        if self.failed or self.uncertain or self.status == WaveStatus.FAILED:
            return ExitCode.FAILED
        if self.held or self.waiting:
            return ExitCode.TEMPFAIL
        return ExitCode.OK

    def waits(self, timezone: str) -> list[str]:
        """What goes out later by itself, with when: the held SMS and the retries."""
        parts = []
        if self.held and self.held_until is not None:
            until = weekday_text(self.held_until, timezone)
            parts.append(f"{self.held} SMS held by quiet hours until {until}")
        if self.waiting and self.next_retry is not None:
            parts.append(
                f"{self.waiting} retrying, next attempt {weekday_text(self.next_retry, timezone)}"
            )
        return parts

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return aware(value).isoformat() if value is not None else None

        return {
            "state": str(self.state),
            "held": self.held,
            "held_until": iso(self.held_until),
            "waiting": self.waiting,
            "next_retry": iso(self.next_retry),
            "uncertain": self.uncertain,
        }


def exit_code(codes: Iterable[ExitCode]) -> ExitCode:
    """Several waves (one tick) in one code: 1 before 75 before 0."""
    order = (ExitCode.FAILED, ExitCode.TEMPFAIL)
    found = set(codes)
    return next((code for code in order if code in found), ExitCode.OK)


def wave_progress(
    conn: sa.Connection, wave_ids: Iterable[int], now: datetime
) -> dict[int, WaveProgress]:
    """WaveProgress of each wave, read from its non-final rows only (an index range each)."""
    ids = sorted(set(wave_ids))
    o = OUTBOX.c
    stamp = sa.bindparam("now", now, type_=o.next_attempt_at.type)
    queued = o.state == OutboxState.QUEUED
    due = sa.or_(
        o.state == OutboxState.SENDING,
        sa.and_(queued, sa.or_(o.next_attempt_at.is_(None), o.next_attempt_at <= stamp)),
    )
    later = sa.and_(queued, o.next_attempt_at > stamp)
    held = sa.and_(later, o.reason == HELD_REASON)
    waiting = sa.and_(later, sa.or_(o.reason.is_(None), o.reason != HELD_REASON))

    def count(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    query = (
        sa.select(
            WAVE.c.id,
            WAVE.c.status,
            count(due),
            count(held),
            sa.func.max(sa.case((held, o.next_attempt_at))),
            count(waiting),
            sa.func.min(sa.case((waiting, o.next_attempt_at))),
            count(o.state == OutboxState.UNCERTAIN),
        )
        .select_from(
            WAVE.outerjoin(
                OUTBOX,
                sa.and_(
                    o.wave_id == WAVE.c.id,
                    o.state.in_([OutboxState.QUEUED, OutboxState.SENDING, OutboxState.UNCERTAIN]),
                ),
            )
        )
        .group_by(WAVE.c.id, WAVE.c.status)
    )
    progress = {}
    for start in range(0, len(ids), 500):  # a bounded IN list (SQLite's variable limit)
        for row in conn.execute(query.where(WAVE.c.id.in_(ids[start : start + 500]))):
            wave_id, status, n_due, n_held, until, n_waiting, retry, n_uncertain = row
            progress[wave_id] = WaveProgress(
                WaveStatus(status), int(n_due or 0), int(n_held or 0), _maybeaware(until),
                int(n_waiting or 0), _maybeaware(retry), int(n_uncertain or 0),
            )  # fmt: skip
    return progress


def _maybeaware(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None


def finish_wave(
    conn: sa.Connection,
    wave_id: int,
    status: WaveStatus,
    now: datetime,
    note: str | None = None,
) -> WaveStatus:
    """End a wave's run as `status`; the only way a wave becomes `done`.

    A wave is never done while a row is queued or being sent (held SMS, retries, a
    stopped send): it stays `sending`, so that the next scheduler pass (or `send`) goes
    on with it. Returns the status the wave has now.
    """
    if status == WaveStatus.DONE:
        open_row = conn.execute(
            sa.select(OUTBOX.c.id)
            .where(
                OUTBOX.c.wave_id == wave_id,
                OUTBOX.c.state.in_([OutboxState.QUEUED, OutboxState.SENDING]),
            )
            .limit(1)
        ).first()
        if open_row is not None:
            status = WaveStatus.SENDING
    values: dict[str, Any] = {"status": status}
    if status != WaveStatus.SENDING:
        values["finished_at"] = now
    if note:
        values["note"] = note
    update = sa.update(WAVE).where(WAVE.c.id == wave_id)
    if not note:  # a wave already done keeps the time it was first finished
        update = update.where(WAVE.c.status != status)
    conn.execute(update.values(**values))
    return status


def wave_statuses(conn: sa.Connection) -> dict[str, WaveStatus]:
    """The status of every wave the store has, by occurrence key (`waves.known` says what
    each means for the plan and the scheduler)."""
    rows = conn.execute(sa.select(WAVE.c.occurrence_key, WAVE.c.status))
    return {key: WaveStatus(status) for key, status in rows}


def latest_wave_times(conn: sa.Connection) -> dict[str, datetime]:
    """Each campaign's latest wave time (aware, UTC), by campaign name; campaigns without a
    wave are left out."""
    rows = conn.execute(
        sa.select(CAMPAIGN.c.name, sa.func.max(WAVE.c.scheduled_for))
        .join(WAVE, WAVE.c.campaign_id == CAMPAIGN.c.id)
        .group_by(CAMPAIGN.c.name)
    )
    return {name: aware(at) for name, at in rows if at is not None}
