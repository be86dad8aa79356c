"""Durations, relative dates and month arithmetic."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from campaignctl.spec.types import add_months, format_duration, parse_duration, parse_relative_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("-2d", timedelta(days=-2)),
    ],
)
def test_durations_round_trip(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("bad", ["7x", "7", "d7", "", "7 d", "1.5d", 7, True])
def test_bad_durations_say_how_to_write_one(bad: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(bad)
    # the message names the value; the example is in it or in the hint validate shows
    assert "7d" in f"{caught.value} {getattr(caught.value, 'hint', '')}"


TODAY = date(2027, 1, 31)  # a Sunday, end of a 31-day month


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", TODAY),
        ("today+15d", date(2027, 2, 15)),
        ("-2d", date(2027, 1, 29)),
        ("+1y", date(2028, 1, 31)),
        ("today+1m", date(2027, 2, 28)),
        ("start_of_month", date(2027, 1, 1)),
        ("end_of_month", TODAY),
        ("start_of_week", date(2027, 1, 25)),
        ("end_of_week", TODAY),
        ("start_of_year+2w", date(2027, 1, 15)),
        ("start_of_month-1m", date(2026, 12, 1)),
        ("2027-03-01", date(2027, 3, 1)),
        (date(2027, 3, 1), date(2027, 3, 1)),
    ],
)
def test_relative_dates_resolve_against_today(text: object, expected: date) -> None:
    assert parse_relative_date(text).resolve(TODAY) == expected


@pytest.mark.parametrize("bad", ["today+1q", "tomorrow", "today+", "start_of_decade", "31/12/2027"])
def test_bad_relative_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="relative date"):
        parse_relative_date(bad)


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert add_months(date(2027, 3, 31), -1) == date(2027, 2, 28)
