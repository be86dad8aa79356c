"""The current time, injectable.

Everything that asks "what time is it" (schedules, relative dates, leases,
reports) calls `now()`. Tests and replays set `CAMPAIGNCTL_NOW` to an ISO
date-time (an offset, or UTC when none) to run a month of schedules in seconds
with real processes; library callers may pass their own `now` instead.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import overload
from zoneinfo import ZoneInfo

from campaignctl.errors import UsageError

NOW_VARIABLE = "CAMPAIGNCTL_NOW"
# The dates campaignctl works with. Schedules, leases and reports add days, months and
# years to "now"; inside this window none of that can leave what `datetime` holds.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)


def now() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    fixed = os.environ.get(NOW_VARIABLE)
    if fixed:
        try:
            value = datetime.fromisoformat(fixed)
        except ValueError:
            raise UsageError(
                f"{NOW_VARIABLE}={fixed!r} is not an ISO date-time",
                hint="write it like 2027-03-01T09:00:00+01:00, or unset it",
            ) from None
        if not in_range(value.date()):
            raise UsageError(
                f"{NOW_VARIABLE}={fixed!r} is out of range: {RANGE_TEXT}",
                hint="write a date-time like 2027-03-01T09:00:00+01:00, or unset it",
            )
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.now(UTC)


@overload
def aware(value: None) -> None: ...
@overload
def aware(value: datetime | str) -> datetime: ...
def aware(value: datetime | str | None) -> datetime | None:
    """An instant read from the store, as an aware UTC datetime: SQLite gives naive UTC
    ones back (and text through a `text()` query), PostgreSQL aware ones; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


RANGE_TEXT = f"campaignctl works with dates from {FIRST_DAY} to {LAST_DAY}"


def in_range(day: date) -> bool:
    """Whether a date lies in the window campaignctl computes with (FIRST_DAY..LAST_DAY)."""
    return FIRST_DAY <= day <= LAST_DAY


def local_text(instant: datetime, timezone: str, *, short: bool = False) -> str:
    """An instant as a person reads it: the wall-clock time in `timezone`, with the zone.

    `2026-12-06 08:22 CET (+01:00)`; `short` (table cells) `06/12 08:22 CET`. A zone
    without a name shows its offset only. Every time printed for a person goes through
    here (JSON keeps ISO 8601); a naive instant is UTC, as the store keeps it.
    """
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(timezone))
    offset = local.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    name = local.tzname() or ""
    named = bool(name) and name[0] not in "+-"  # "-03" is an offset, not a name
    if short:
        return f"{local:%d/%m %H:%M} {name if named else offset}"
    return f"{local:%Y-%m-%d %H:%M} " + (f"{name} ({offset})" if named else offset)


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not the locale's


def weekday_text(instant: datetime, timezone: str) -> str:
    """`Mon 07/12 09:00 (Europe/Paris)`: when something waiting resumes (held SMS, the
    next retry), with the day of the week a person plans by."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{_WEEKDAYS[local.weekday()]} {local:%d/%m %H:%M} ({timezone})"


def today(timezone: str) -> date:
    """Today's date in a time zone (relative dates resolve in the workspace's)."""
    return now().astimezone(ZoneInfo(timezone)).date()
