"""When each wave of a campaign is due: first send, recurrences and relaunches.

Pure functions over the spec models, shared by `plan` (next runs), `calendar`
and the scheduler. Times are computed on the local wall clock of the
campaign's time zone, so a 09:00 Europe/Paris daily send stays at 09:00 on both
sides of a DST change; a local time that does not exist (02:30 on the spring
change) moves to the next valid instant and says so; an ambiguous one (02:30 on
the autumn change) takes its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaignctl.enums import WaveKind
from campaignctl.spec.models import Campaign, Channel, Every, RelaunchTarget
from campaignctl.spec.types import add_months

MAX_OCCURRENCES = 10_000  # guards a cron that fires every minute over years


@dataclass(frozen=True)
class PlannedWave:
    """One wave that a campaign's schedule makes due."""

    campaign: str
    kind: WaveKind
    occurrence: int  # 0 for the first send, n for the n-th recurrence
    relaunch: int  # 0 for the occurrence's own send, n for its n-th relaunch
    at: datetime  # aware, UTC
    timezone: str
    target: RelaunchTarget | None
    channels: tuple[Channel, ...]
    note: str | None = None

    @property
    def local(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.timezone))

    @property
    def key(self) -> str:
        """Stable identity: the scheduler never creates two waves with the same key."""
        return f"{self.campaign}/{self.occurrence}/{self.relaunch}"

    def label(self) -> str:
        if self.kind == WaveKind.RELAUNCH:
            return f"relaunch {self.relaunch} ({self.target})"
        return "recurrence" if self.kind == WaveKind.RECURRENCE else "first send"


def localize(naive: datetime, tz: ZoneInfo) -> tuple[datetime, str | None]:
    """A wall-clock time in `tz` as an aware instant, and a note when it had to move.

    Nonexistent times (in a spring-forward gap) move to the first valid minute after
    the gap; ambiguous ones (in an autumn-back overlap) take the first of the two.
    """
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return aware, None
    candidate = naive
    for _ in range(24 * 60):  # gaps are at most a few hours
        candidate += timedelta(minutes=1)
        moved = candidate.replace(tzinfo=tz, fold=0)
        if moved.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == candidate:
            note = (
                f"{naive:%Y-%m-%d %H:%M} does not exist in {tz.key} (clock change): "
                f"runs at {candidate:%H:%M}"
            )
            return moved, note
    raise ValueError(f"cannot place {naive} in {tz.key}")  # pragma: no cover


def _naive_local(value: datetime, tz: ZoneInfo) -> datetime:
    """A schedule's `send_at` as local wall-clock time (an explicit offset is honoured)."""
    if value.tzinfo is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _step(start: datetime, every: Every, count: int) -> datetime:
    if every == Every.DAY:
        return start + timedelta(days=count)
    if every == Every.WEEK:
        return start + timedelta(weeks=count)
    months = count if every == Every.MONTH else 12 * count
    shifted = add_months(start.date(), months)
    return datetime.combine(shifted, start.time())


def first_send_at(campaign: Campaign, default_tz: str) -> datetime | None:
    """When `send_at` falls (aware; a time a clock change skips moves as `localize` says),
    or None for a campaign without one."""
    schedule = campaign.schedule
    if schedule is None or schedule.send_at is None:
        return None
    tz = ZoneInfo(schedule.timezone or default_tz)
    return localize(_naive_local(schedule.send_at, tz), tz)[0]


def occurrences(campaign: Campaign, default_tz: str, end: datetime) -> Iterator[datetime]:
    """Local wall-clock times of every send of the campaign up to `end` (aware, any zone)."""
    schedule = campaign.schedule
    if schedule is None:
        return
    tz = ZoneInfo(schedule.timezone or default_tz)
    end_local = end.astimezone(tz).replace(tzinfo=None)
    recurrence = schedule.recurrence
    first = _naive_local(schedule.send_at, tz) if schedule.send_at else None
    until = (
        datetime.combine(recurrence.until, time.max) if recurrence and recurrence.until else None
    )
    limit = min(end_local, until) if until else end_local
    if recurrence is None:
        if first is not None and first <= limit:
            yield first
        return
    if recurrence.every is not None and first is not None:
        for index in range(MAX_OCCURRENCES):
            moment = _step(first, recurrence.every, index * recurrence.interval)
            if moment > limit:
                return
            yield moment
        return
    if recurrence.cron is not None:
        from croniter import croniter

        start = (first - timedelta(seconds=1)) if first else end_local - timedelta(days=366)
        iterator = croniter(recurrence.cron, start)
        for _ in range(MAX_OCCURRENCES):
            moment = iterator.get_next(datetime)
            if moment > limit:
                return
            yield moment


def timeline(
    campaign: Campaign, default_tz: str, start: datetime, end: datetime
) -> list[PlannedWave]:
    """Every wave due in [start, end), sorted by time: sends, recurrences, relaunches."""
    schedule = campaign.schedule
    if schedule is None:
        return []
    tz_name = schedule.timezone or default_tz
    tz = ZoneInfo(tz_name)
    channels = tuple(campaign.channels)
    waves: list[PlannedWave] = []
    unanchored = schedule.send_at is None  # a cron alone: counted from a year back, not from 0
    for index, local in enumerate(occurrences(campaign, default_tz, end)):
        if unanchored:
            # its identity is its local time (202703080900), the same whichever pass counts
            # it; an index would shift by one every week and the next wave never be created
            index = int(f"{local:%Y%m%d%H%M}")
        kind = WaveKind.INITIAL if index == 0 else WaveKind.RECURRENCE
        at, note = localize(local, tz)
        waves.append(
            PlannedWave(
                campaign.name, kind, index, 0, at.astimezone(UTC), tz_name, None, channels, note
            )
        )
        for number, rule in enumerate(schedule.relaunch, start=1):
            if rule.after.seconds == 0 and rule.after.microseconds == 0:
                relaunch_at, relaunch_note = localize(local + rule.after, tz)
            else:  # sub-day delays are absolute durations
                relaunch_at, relaunch_note = (at.astimezone(UTC) + rule.after), None
            waves.append(
                PlannedWave(
                    campaign.name,
                    WaveKind.RELAUNCH,
                    index,
                    number,
                    relaunch_at.astimezone(UTC),
                    tz_name,
                    rule.to,
                    tuple(rule.channels or channels),
                    relaunch_note,
                )
            )
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    return sorted(
        (w for w in waves if start_utc <= w.at < end_utc), key=lambda w: (w.at, w.campaign, w.key)
    )


def workspace_timeline(
    campaigns: list[Campaign],
    default_tz: str,
    start: datetime,
    end: datetime,
    *,
    include_drafts: bool = False,
) -> list[PlannedWave]:
    """The timelines of several campaigns merged in time order."""
    waves = [
        wave
        for campaign in campaigns
        if include_drafts or not campaign.draft
        for wave in timeline(campaign, default_tz, start, end)
    ]
    return sorted(waves, key=lambda w: (w.at, w.campaign, w.key))


def day_bounds(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) in a time zone, as aware instants."""
    zone = ZoneInfo(tz)
    start, _ = localize(datetime.combine(first, time()), zone)
    end, _ = localize(datetime.combine(last + timedelta(days=1), time()), zone)
    return start, end
