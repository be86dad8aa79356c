"""The current time, injectable.

Everything that asks "what time is it" (schedules, relative dates, leases,
reports) calls `now()`. Tests and replays set `CAMPAIGNCTL_NOW` to an ISO
date-time (an offset, or UTC when none) to run a month of schedules in seconds
with real processes; library callers may pass their own `now` instead.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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
            from campaignctl.errors import UsageError

            raise UsageError(
                f"{NOW_VARIABLE}={fixed!r} is not an ISO date-time",
                hint="write it like 2027-03-01T09:00:00+01:00, or unset it",
            ) from None
        if not in_range(value.date()):
            from campaignctl.errors import UsageError

            raise UsageError(
                f"{NOW_VARIABLE}={fixed!r} is out of range: {RANGE_TEXT}",
                hint="write a date-time like 2027-03-01T09:00:00+01:00, or unset it",
            )
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.now(UTC)


RANGE_TEXT = f"campaignctl works with dates from {FIRST_DAY} to {LAST_DAY}"


def in_range(day: date) -> bool:
    """Whether a date lies in the window campaignctl computes with (FIRST_DAY..LAST_DAY)."""
    return FIRST_DAY <= day <= LAST_DAY


def today(timezone: str) -> date:
    """Today's date in a time zone (relative dates resolve in the workspace's)."""
    return now().astimezone(ZoneInfo(timezone)).date()
