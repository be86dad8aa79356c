"""Which scheduled waves are due now, and which were missed (the misfire policy).

The scheduler (daemon or cron tick) asks this on every pass. A wave due while
no scheduler ran is still run when it comes back if it is less than
`max_lateness` late; otherwise it is recorded as missed and reported, however
old it is (a `send_at` a year too early gives missed waves, never silence). A
wave key that the store already knows is never proposed again, so two passes
(or two schedulers) never create the same wave twice. A relaunch is due only
once the wave it follows has been sent; when that wave was missed, so is the
relaunch.

A schedule has a start (`send_at`) from which every occurrence counts, except a
`cron:` without `send_at`: that one starts after the campaign's latest wave,
or `max_lateness` ago when it has none (it has no first occurrence to count from).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from campaignctl.spec.models import Campaign
from campaignctl.spec.types import format_duration
from campaignctl.waves.timeline import PlannedWave, WaveKind, timeline


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

    def missed_note(self, max_lateness: timedelta) -> str:
        """Why the wave is missed: the note its row keeps, and what `plan` says."""
        return (
            f"missed: {_human(self.lateness)} late (max_lateness {format_duration(max_lateness)})"
        )

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
    latest: Mapping[str, datetime] | None = None,
) -> list[DueWave]:
    """Waves at or before `now` that the store does not know yet, with what to do with each.

    `latest`: per campaign, when its latest wave was due (where a cron without `send_at`
    starts again).
    """
    end = now + timedelta(microseconds=1)
    planned: list[PlannedWave] = []
    for campaign in campaigns:
        if not campaign.draft:
            start = _start(campaign, now, max_lateness, latest or {})
            planned.extend(timeline(campaign, default_tz, start, end))
    planned.sort(key=lambda w: (w.at, w.campaign, w.key))
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


def _start(
    campaign: Campaign,
    now: datetime,
    max_lateness: timedelta,
    latest: Mapping[str, datetime],
) -> datetime:
    """From when a campaign's waves count: its whole schedule, unless it has no `send_at`."""
    if campaign.schedule is not None and campaign.schedule.send_at is not None:
        return datetime.min.replace(tzinfo=UTC)
    last = latest.get(campaign.name)
    return last + timedelta(microseconds=1) if last is not None else now - max_lateness
