"""Quiet hours: an SMS due in them moves to the next allowed instant, DST included."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from campaignctl.delivery.quiet_hours import is_quiet, next_allowed
from campaignctl.spec.models import QuietHours

PARIS = ZoneInfo("Europe/Paris")
NIGHT = QuietHours(start="21:30", end="08:00")
NIGHT_AND_SUNDAY = QuietHours(start="21:30", end="08:00", days_off=["sunday"])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("quiet", "due", "expected"),
    [
        # allowed already: unchanged
        (NIGHT, "2026-06-10T10:00+02:00", "2026-06-10T10:00+02:00"),
        (NIGHT, "2026-06-10T21:29+02:00", "2026-06-10T21:29+02:00"),
        # inside a window that wraps midnight: evening part, morning part, the edges
        (NIGHT, "2026-06-10T21:30+02:00", "2026-06-11T08:00+02:00"),
        (NIGHT, "2026-06-10T23:59+02:00", "2026-06-11T08:00+02:00"),
        (NIGHT, "2026-06-11T03:00+02:00", "2026-06-11T08:00+02:00"),
        (NIGHT, "2026-06-11T08:00+02:00", "2026-06-11T08:00+02:00"),
        # a day off (Sunday 14 June 2026) is skipped whole, then the night too
        (NIGHT_AND_SUNDAY, "2026-06-13T22:00+02:00", "2026-06-15T08:00+02:00"),
        (NIGHT_AND_SUNDAY, "2026-06-14T12:00+02:00", "2026-06-15T08:00+02:00"),
        # a window inside one day
        (
            QuietHours(start="12:00", end="14:00"),
            "2026-06-10T12:30+02:00",
            "2026-06-10T14:00+02:00",
        ),
        # given in UTC, judged on Paris wall clocks, answered in Paris time
        (NIGHT, "2026-06-10T20:00+00:00", "2026-06-11T08:00+02:00"),
    ],
)
def test_next_allowed_moves_out_of_quiet_hours_and_days_off(
    quiet: QuietHours, due: str, expected: str
) -> None:
    result = next_allowed(datetime.fromisoformat(due), quiet, PARIS)
    assert result == datetime.fromisoformat(expected)
    assert result.tzinfo is PARIS
    assert not is_quiet(result, quiet, PARIS)


def test_spring_forward_night_ends_at_8_summer_time() -> None:
    # 29 March 2026: Paris jumps from 02:00 CET to 03:00 CEST; the night is an hour shorter.
    result = next_allowed(datetime(2026, 3, 28, 22, 0, tzinfo=PARIS), NIGHT, PARIS)
    assert result.isoformat() == "2026-03-29T08:00:00+02:00"
    assert result.astimezone(UTC) == utc("2026-03-29T06:00")


def test_spring_forward_night_before_a_sunday_off_waits_for_monday() -> None:
    result = next_allowed(datetime(2026, 3, 28, 22, 0, tzinfo=PARIS), NIGHT_AND_SUNDAY, PARIS)
    assert result.isoformat() == "2026-03-30T08:00:00+02:00"


def test_autumn_back_night_ends_at_8_winter_time() -> None:
    # 25 October 2026: Paris goes back from 03:00 CEST to 02:00 CET; the night is an hour longer.
    result = next_allowed(datetime(2026, 10, 24, 22, 0, tzinfo=PARIS), NIGHT, PARIS)
    assert result.isoformat() == "2026-10-25T08:00:00+01:00"
    assert result.astimezone(UTC) == utc("2026-10-25T07:00")


def test_an_end_inside_the_skipped_hour_ends_at_the_jump() -> None:
    quiet = QuietHours(start="01:00", end="02:30")
    result = next_allowed(utc("2026-03-29T00:30"), quiet, PARIS)  # 01:30 CET
    assert result.isoformat() == "2026-03-29T03:00:00+02:00"  # 02:30 never shows on the clock


@pytest.mark.parametrize(
    ("due_utc", "expected_utc"),
    [
        ("2026-10-24T23:00", "2026-10-25T00:30"),  # 01:00 CEST → first 02:30 (CEST)
        ("2026-10-25T01:10", "2026-10-25T01:30"),  # 02:10 CET, second pass → 02:30 CET
    ],
)
def test_an_end_inside_the_repeated_hour_is_read_on_the_wall_clock(
    due_utc: str, expected_utc: str
) -> None:
    quiet = QuietHours(start="00:00", end="02:30")
    assert next_allowed(utc(due_utc), quiet, PARIS).astimezone(UTC) == utc(expected_utc)


def test_other_time_zones_use_their_own_dst_dates() -> None:
    new_york = ZoneInfo("America/New_York")  # springs forward on 8 March 2026
    result = next_allowed(datetime(2026, 3, 7, 23, 0, tzinfo=new_york), NIGHT, new_york)
    assert result.isoformat() == "2026-03-08T08:00:00-04:00"


def test_naive_datetimes_and_a_week_of_days_off_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 6, 10, 22, 0), NIGHT, PARIS)
    every_day = QuietHours(
        start="21:30",
        end="08:00",
        days_off=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    )
    with pytest.raises(ValueError, match="every day"):
        next_allowed(datetime(2026, 6, 10, 12, 0, tzinfo=PARIS), every_day, PARIS)
