"""Which scheduled waves are due now, and which were missed (the misfire policy).

The scheduler (daemon or cron tick) asks this on every pass. A wave due while
no scheduler ran is still run when it comes back if it is less than
`max_lateness` late; otherwise it is recorded as missed and reported. A wave
key that the store already knows is never proposed again, so two passes (or
two schedulers) never create the same wave twice. A relaunch is due only once
the wave it follows has been sent; when that wave was missed, so is the
relaunch.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaignctl.schedule.timeline import PlannedWave, WaveKind, workspace_timeline
from campaignctl.spec.models import Campaign

DEFAULT_LOOKBACK = timedelta(days=45)  # how far back a pass looks for waves never created


class Decision(enum.StrEnum):
    RUN = "run"
    MISSED = "missed"
    WAIT = "wait"  # a relaunch whose parent wave has not been sent yet


class KnownState(enum.StrEnum):
    """What the store says about a wave key (a subset of the wave statuses)."""

    CREATED = "created"  # queued or sending
    SENT = "sent"
    MISSED = "missed"
    FAILED = "failed"


@dataclass(frozen=True)
class DueWave:
    wave: PlannedWave
    decision: Decision
    lateness: timedelta

    def describe(self) -> str:
        late = f", {_human(self.lateness)} late" if self.lateness > timedelta(minutes=1) else ""
        return (
            f"{self.wave.key} ({self.wave.label()}, due {self.wave.local:%Y-%m-%d %H:%M %z}{late})"
        )


def _human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def due_waves(
    campaigns: list[Campaign],
    default_tz: str,
    now: datetime,
    max_lateness: timedelta,
    known: Mapping[str, KnownState],
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> list[DueWave]:
    """Waves at or before `now` that the store does not know yet, with what to do with each."""
    start = now - max(lookback, max_lateness)
    planned = workspace_timeline(campaigns, default_tz, start, now + timedelta(microseconds=1))
    decided: dict[str, Decision] = {}
    result: list[DueWave] = []
    for wave in planned:  # time order: a parent wave is decided before its relaunches
        if wave.key in known:
            continue
        lateness = now - wave.at
        if wave.kind == WaveKind.RELAUNCH:
            parent = f"{wave.campaign}/{wave.occurrence}/0"
            parent_state = known.get(parent)
            parent_decision = decided.get(parent)
            if parent_state == KnownState.MISSED or parent_decision == Decision.MISSED:
                decision = Decision.MISSED
            elif parent_state != KnownState.SENT:
                decision = Decision.WAIT  # the first send is not done yet: relaunch after it
            else:
                decision = Decision.RUN if lateness <= max_lateness else Decision.MISSED
        else:
            decision = Decision.RUN if lateness <= max_lateness else Decision.MISSED
        decided[wave.key] = decision
        result.append(DueWave(wave, decision, lateness))
    return result
