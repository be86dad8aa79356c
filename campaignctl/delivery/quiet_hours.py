"""Quiet hours: when an SMS may not be sent, and the next instant it may.

Quiet hours are wall-clock times in the recipient's time zone (the workspace's
when unknown): `start` to `end`, wrapping past midnight when `end <= start`
(21:30 → 08:00), plus whole `days_off` (local calendar days). An SMS due inside
them waits; it is never dropped and never sent early.

Daylight-saving time is handled on wall clocks: on a spring-forward night the
quiet window is simply an hour shorter in real time; when `end` falls in the
skipped hour, the first allowed instant is the jump itself (e.g. 03:00 CEST for
an end of 02:30 in Paris); when it falls in the repeated hour, its first
occurrence counts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaignctl.spec.models import QuietHours, Weekday

_WEEKDAYS = list(Weekday)  # Monday first, as date.weekday() counts


def _in_window(clock: time, quiet: QuietHours) -> bool:
    start, end = quiet.start, quiet.end
    if start == end:
        return False  # an empty window: no quiet hours
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def _is_day_off(day: date, quiet: QuietHours) -> bool:
    return _WEEKDAYS[day.weekday()] in quiet.days_off


def is_quiet(at: datetime, quiet: QuietHours, tz: ZoneInfo) -> bool:
    """Whether `at` (an aware datetime) falls in quiet hours or on a day off in `tz`."""
    local = _local(at, tz)
    return _is_day_off(local.date(), quiet) or _in_window(local.time(), quiet)


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("quiet hours need an aware datetime (with a time zone)")
    return at.astimezone(tz)


def _first_instant_at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant at which the wall clock in `tz` shows `clock` on `day`, or,
    when that wall time is skipped by a DST jump, the instant of the jump."""
    naive = datetime.combine(day, clock)
    early = naive.replace(tzinfo=tz, fold=0)
    if early.astimezone(ZoneInfo("UTC")).astimezone(tz).replace(tzinfo=None) == naive:
        return early  # exists; fold=0 is its first occurrence when repeated
    # A gap: fold=1 maps with the offset after the jump (an instant before it),
    # fold=0 with the offset before (an instant after it). Search the jump between.
    low = naive.replace(tzinfo=tz, fold=1).timestamp()
    high = early.timestamp()
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        middle = (low + high) // 2
        wall = datetime.fromtimestamp(middle, tz).replace(tzinfo=None)
        if wall >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, tz)


def next_allowed(at: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """`at` itself if an SMS may go then, else the first later instant it may (in `tz`).

    `at` must be aware. Raises ValueError if every day of the week is a day off.
    """
    if len(set(quiet.days_off)) == 7:
        raise ValueError("quiet hours: every day of the week is a day off")
    local = _local(at, tz)
    # Each step moves past one obstacle (a day off or one quiet window); two per
    # day at most, so a week's worth of steps always settles.
    for _ in range(32):
        day = local.date()
        if _is_day_off(day, quiet):
            local = _first_instant_at(day + timedelta(days=1), time(0), tz)
            continue
        clock = local.time().replace(tzinfo=None)
        if not _in_window(clock, quiet):
            return local
        end_day = day + timedelta(days=1) if quiet.end <= quiet.start <= clock else day
        candidate = _first_instant_at(end_day, quiet.end, tz)
        # Compare instants, not wall clocks: within one tzinfo Python ignores `fold`.
        if candidate.timestamp() <= local.timestamp():
            # Inside the repeated hour of an autumn night, after the first
            # occurrence of `end`: wait for its second occurrence.
            candidate = datetime.combine(end_day, quiet.end, tzinfo=tz).replace(fold=1)
            if candidate.timestamp() <= local.timestamp():  # pragma: no cover - defensive
                candidate = local + timedelta(minutes=1)
        local = candidate
    raise AssertionError("next_allowed did not settle")  # pragma: no cover
