"""The misfire policy: run if less than max_lateness late, else missed; never twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from campaignctl.spec.models import Campaign
from campaignctl.waves.due import Decision, KnownState, due_waves

PARIS = ZoneInfo("Europe/Paris")
SIX_HOURS = timedelta(hours=6)


def campaign(name: str = "c", **schedule) -> Campaign:
    return Campaign.model_validate(
        {
            "kind": "Campaign",
            "name": name,
            "category": "marketing",
            "audience": {"segments": ["s"]},
            "message": {"subject": "x", "template": "t"},
            "schedule": schedule,
        }
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def decisions(result) -> list[tuple[str, str]]:
    return [(d.wave.key, str(d.decision)) for d in result]


DAILY = campaign(
    send_at="2027-03-01T09:00",
    recurrence={"every": "day"},
    relaunch=[{"after": "2d", "to": "non_responders"}],
)


def test_nothing_is_due_before_the_first_send() -> None:
    assert due_waves([DAILY], "Europe/Paris", at("2027-03-01T08:59"), SIX_HOURS, {}) == []


def test_the_wave_of_the_minute_runs() -> None:
    result = due_waves([DAILY], "Europe/Paris", at("2027-03-01T09:00"), SIX_HOURS, {})
    assert decisions(result) == [("c/0/0", "run")]


def test_a_wave_a_few_hours_late_still_runs_and_an_older_one_is_missed() -> None:
    result = due_waves([DAILY], "Europe/Paris", at("2027-03-02T14:00"), SIX_HOURS, {})
    assert decisions(result) == [("c/0/0", "missed"), ("c/1/0", "run")]
    assert result[1].describe() == "c/1/0 (recurrence, due 2027-03-02 09:00 +0100, 5 h late)"


def test_known_waves_are_never_proposed_again() -> None:
    known = {"c/0/0": KnownState.SENT}
    assert (
        decisions(due_waves([DAILY], "Europe/Paris", at("2027-03-01T09:30"), SIX_HOURS, known))
        == []
    )


def test_relaunch_waits_for_its_parent_then_runs() -> None:
    now = at("2027-03-03T09:00")
    waiting = due_waves(
        [DAILY],
        "Europe/Paris",
        now,
        SIX_HOURS,
        {"c/0/0": KnownState.CREATED, "c/1/0": KnownState.SENT, "c/2/0": KnownState.SENT},
    )
    assert decisions(waiting) == [("c/0/1", "wait")]
    ready = due_waves(
        [DAILY],
        "Europe/Paris",
        now,
        SIX_HOURS,
        {"c/0/0": KnownState.SENT, "c/1/0": KnownState.SENT, "c/2/0": KnownState.SENT},
    )
    assert decisions(ready) == [("c/0/1", "run")]


def test_relaunch_of_a_missed_wave_is_missed_too() -> None:
    result = due_waves(
        [DAILY],
        "Europe/Paris",
        at("2027-03-03T10:00"),
        SIX_HOURS,
        {"c/0/0": KnownState.MISSED, "c/1/0": KnownState.SENT, "c/2/0": KnownState.SENT},
    )
    assert decisions(result) == [("c/0/1", "missed")]


def test_drafts_are_never_due() -> None:
    draft = campaign("d", send_at="2027-03-01T09:00").model_copy(update={"draft": True})
    assert due_waves([draft], "Europe/Paris", at("2027-03-01T09:00"), SIX_HOURS, {}) == []


def test_a_month_of_daily_ticks_creates_each_wave_once() -> None:
    known: dict[str, KnownState] = {}
    now = at("2027-03-01T00:00")
    created = []
    while now < at("2027-04-01T00:00"):
        for due in due_waves([DAILY], "Europe/Paris", now, SIX_HOURS, known):
            if due.decision == Decision.WAIT:
                continue
            known[due.wave.key] = (
                KnownState.SENT if due.decision == Decision.RUN else KnownState.MISSED
            )
            created.append(
                (due.wave.key, due.wave.local.strftime("%m-%d %H:%M"), str(due.decision))
            )
        now += timedelta(minutes=30)
    keys = [k for k, _, _ in created]
    assert len(keys) == len(set(keys))
    firsts = [c for c in created if c[0].endswith("/0")]
    assert len(firsts) == 31 and all(t.endswith("09:00") and d == "run" for _, t, d in firsts)
    relaunches = [c for c in created if c[0].endswith("/1")]
    assert len(relaunches) == 29 and relaunches[0] == ("c/0/1", "03-03 09:00", "run")


def test_a_wave_due_long_ago_is_missed_whatever_its_age() -> None:
    # a year typed wrong: the wave was due a year ago; it is recorded missed, never forgotten
    typo = campaign(
        "typo", send_at="2026-03-01T09:00", relaunch=[{"after": "7d", "to": "non_responders"}]
    )
    result = due_waves([typo], "Europe/Paris", at("2027-03-01T09:00"), SIX_HOURS, {})
    assert decisions(result) == [("typo/0/0", "missed"), ("typo/0/1", "missed")]
    assert result[0].missed_note(SIX_HOURS) == "missed: 365 d late (max_lateness 6h)"


def test_a_cron_without_send_at_creates_every_occurrence_once_from_its_latest_wave() -> None:
    weekly = campaign("weekly", recurrence={"cron": "0 9 * * mon"})
    known: dict[str, KnownState] = {}
    latest: dict[str, datetime] = {}
    created = []
    # a first pass on Monday 1 March, then none until Monday 22 March 10:00
    for now in (at("2027-03-01T09:01"), at("2027-03-08T09:01"), at("2027-03-22T10:00")):
        for due in due_waves([weekly], "Europe/Paris", now, SIX_HOURS, known, latest):
            known[due.wave.key] = KnownState.SENT
            latest["weekly"] = due.wave.at
            created.append((due.wave.key, str(due.wave.kind), str(due.decision)))
    # nothing from the year before it was first seen; each Monday once, under its own key
    assert created == [
        ("weekly/202703010900/0", "recurrence", "run"),
        ("weekly/202703080900/0", "recurrence", "run"),
        ("weekly/202703150900/0", "recurrence", "missed"),
        ("weekly/202703220900/0", "recurrence", "run"),
    ]
