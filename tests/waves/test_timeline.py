"""Schedules in time: recurrences and relaunches on the local wall clock, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from campaignctl.spec.models import Campaign
from campaignctl.waves.timeline import WaveKind, day_bounds, localize, timeline


def campaign(schedule: dict, **extra) -> Campaign:
    return Campaign.model_validate(
        {
            "kind": "Campaign",
            "name": "c",
            "category": "marketing",
            "audience": {"segments": ["s"]},
            "channels": ["email", "sms"],
            "message": {"subject": "x", "template": "t"},
            "schedule": schedule,
            **extra,
        }
    )


def local_times(waves) -> list[str]:
    return [
        f"{w.local:%Y-%m-%d %H:%M %z} {w.kind}{'' if not w.relaunch else w.relaunch}" for w in waves
    ]


def window(first: str, last: str, tz: str = "Europe/Paris"):
    return day_bounds(date.fromisoformat(first), date.fromisoformat(last), tz)


def test_daily_send_stays_at_nine_local_across_the_spring_change() -> None:
    c = campaign(
        {"send_at": "2027-03-26T09:00", "recurrence": {"every": "day", "until": "2027-03-29"}}
    )
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-04-30"))
    assert local_times(waves) == [
        "2027-03-26 09:00 +0100 initial",
        "2027-03-27 09:00 +0100 recurrence",
        "2027-03-28 09:00 +0200 recurrence",
        "2027-03-29 09:00 +0200 recurrence",
    ]
    assert [w.at.hour for w in waves] == [8, 8, 7, 7]  # the UTC instants move, not the local time


def test_daily_send_stays_at_nine_local_across_the_autumn_change() -> None:
    c = campaign(
        {"send_at": "2027-10-30T09:00", "recurrence": {"every": "day", "until": "2027-10-31"}}
    )
    waves = timeline(c, "Europe/Paris", *window("2027-10-01", "2027-11-30"))
    assert local_times(waves) == [
        "2027-10-30 09:00 +0200 initial",
        "2027-10-31 09:00 +0100 recurrence",
    ]


def test_a_nonexistent_local_time_runs_at_the_next_valid_instant_and_says_so() -> None:
    c = campaign(
        {"send_at": "2027-03-27T02:30", "recurrence": {"every": "day", "until": "2027-03-28"}}
    )
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-03-31"))
    assert local_times(waves) == [
        "2027-03-27 02:30 +0100 initial",
        "2027-03-28 03:00 +0200 recurrence",
    ]
    assert waves[0].note is None
    assert waves[1].note == (
        "2027-03-28 02:30 does not exist in Europe/Paris (clock change): runs at 03:00"
    )


def test_an_ambiguous_local_time_takes_the_first_occurrence() -> None:
    at, note = localize(
        datetime(2027, 10, 31, 2, 30), __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert (at.utcoffset().total_seconds(), note) == (7200, None)


def test_new_york_weekly_send_across_its_own_change_dates() -> None:
    c = campaign(
        {
            "send_at": "2027-03-07T09:00",
            "timezone": "America/New_York",
            "recurrence": {"every": "week", "until": "2027-03-21"},
        }
    )
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-03-31", "America/New_York"))
    assert local_times(waves) == [
        "2027-03-07 09:00 -0500 initial",
        "2027-03-14 09:00 -0400 recurrence",
        "2027-03-21 09:00 -0400 recurrence",
    ]


def test_relaunches_follow_each_occurrence_in_wall_clock_days() -> None:
    c = campaign(
        {
            "send_at": "2027-03-22T09:00",
            "relaunch": [
                {"after": "7d", "to": "non_responders"},
                {"after": "14d", "to": "non_openers", "channels": ["sms"]},
            ],
        }
    )
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-04-30"))
    assert local_times(waves) == [
        "2027-03-22 09:00 +0100 initial",
        "2027-03-29 09:00 +0200 relaunch1",
        "2027-04-05 09:00 +0200 relaunch2",
    ]
    assert [w.channels for w in waves] == [("email", "sms"), ("email", "sms"), ("sms",)]
    assert [w.key for w in waves] == ["c/0/0", "c/0/1", "c/0/2"]


def test_hour_relaunches_are_absolute_durations() -> None:
    c = campaign({"send_at": "2027-03-27T20:00", "relaunch": [{"after": "12h", "to": "all"}]})
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-03-31"))
    assert local_times(waves) == [
        "2027-03-27 20:00 +0100 initial",
        "2027-03-28 09:00 +0200 relaunch1",
    ]


def test_monthly_on_the_31st_clamps_to_month_end() -> None:
    c = campaign(
        {"send_at": "2027-01-31T10:00", "recurrence": {"every": "month", "until": "2027-04-30"}}
    )
    waves = timeline(c, "UTC", *window("2027-01-01", "2027-12-31", "UTC"))
    assert [w.local.date().isoformat() for w in waves] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
    ]


def test_interval_and_until_inclusive() -> None:
    c = campaign(
        {
            "send_at": "2027-01-01T08:00",
            "recurrence": {"every": "day", "interval": 3, "until": "2027-01-10"},
        }
    )
    waves = timeline(c, "UTC", *window("2027-01-01", "2027-12-31", "UTC"))
    assert [w.local.day for w in waves] == [1, 4, 7, 10]


def test_cron_recurrence_in_local_time() -> None:
    c = campaign(
        {
            "send_at": "2027-03-01T00:00",
            "recurrence": {"cron": "0 9 * * mon", "until": "2027-03-31"},
        }
    )
    waves = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-04-30"))
    assert local_times(waves) == [
        "2027-03-01 09:00 +0100 initial",
        "2027-03-08 09:00 +0100 recurrence",
        "2027-03-15 09:00 +0100 recurrence",
        "2027-03-22 09:00 +0100 recurrence",
        "2027-03-29 09:00 +0200 recurrence",
    ]


def test_an_explicit_offset_is_honoured() -> None:
    c = campaign({"send_at": "2027-03-01T09:00:00+00:00"})
    (wave,) = timeline(c, "Europe/Paris", *window("2027-03-01", "2027-03-02"))
    assert wave.at == datetime(2027, 3, 1, 9, tzinfo=UTC)
    assert wave.local.hour == 10


@pytest.mark.parametrize("schedule", [None, {"relaunch": []}])
def test_no_send_at_means_nothing_is_scheduled(schedule) -> None:
    c = (
        campaign(schedule)
        if schedule is not None
        else campaign({}).model_copy(update={"schedule": None})
    )
    assert timeline(c, "UTC", *window("2027-01-01", "2027-12-31")) == []


def test_window_is_half_open() -> None:
    c = campaign({"send_at": "2027-03-01T00:00"})
    assert timeline(c, "Europe/Paris", *window("2027-02-01", "2027-02-28")) == []
    assert [w.kind for w in timeline(c, "Europe/Paris", *window("2027-03-01", "2027-03-01"))] == [
        WaveKind.INITIAL
    ]
