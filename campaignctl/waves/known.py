"""What the store knows of each wave key, and the waves due that it has no row for yet.

`plan` shows them ("due, the next scheduler pass sends it") and the scheduler's pass creates
them, so both ask the same two questions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from campaignctl.enums import WaveStatus
from campaignctl.store.store import Store
from campaignctl.store.wave_state import latest_wave_times, wave_statuses
from campaignctl.waves.due import DueWave, KnownState, due_waves

if TYPE_CHECKING:
    from campaignctl.spec.models import Campaign
    from campaignctl.spec.workspace import Workspace

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


def known_waves(conn: Connection) -> dict[str, KnownState]:
    return {key: _KNOWN[status] for key, status in wave_statuses(conn).items()}


def read_known_waves(store: Store) -> dict[str, KnownState]:
    """`known_waves` in a read of its own (`calendar`: a wave sent by hand before its time is
    done already)."""
    with store.read() as conn:
        return known_waves(conn)


def pending_waves(
    conn: Connection, campaigns: list[Campaign], options: SchedulerOptions, now: datetime
) -> list[DueWave]:
    """The waves of `campaigns` due by `now` that the store has no row for, each with what the
    scheduler's next pass does with it (run, missed, wait): its pass, and what `plan` says."""
    return due_waves(
        campaigns,
        options.timezone,
        now,
        options.max_lateness,
        known_waves(conn),
        latest_wave_times(conn),
    )
