"""`campaignctl calendar`: table, JSON and an iCalendar file calendar apps import."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from campaignctl.cli.main import app

runner = CliRunner()


def test_calendar_lists_sends_recurrences_and_relaunches(scaffold: Path) -> None:
    result = runner.invoke(
        app,
        ["--workspace", str(scaffold), "calendar", "--from", "2027-03-01", "--to", "2027-03-08"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Scheduled waves, 2027-03-01 → 2027-03-08\n"
        "+-----------------------------------+------------------+-----------------------+------------+------+\n"
        "| when (local)                      | campaign         | wave                  | channels   | note |\n"
        "+-----------------------------------+------------------+-----------------------+------------+------+\n"
        "| Mon 2027-03-01 09:00 CET (+01:00) | renewal-reminder | recurrence            | email      |      |\n"
        "| Mon 2027-03-01 09:00 CET (+01:00) | update-2027      | first send            | email, sms |      |\n"
        "| Mon 2027-03-08 09:00 CET (+01:00) | renewal-reminder | recurrence            | email      |      |\n"
        "| Mon 2027-03-08 09:00 CET (+01:00) | update-2027      | relaunch 1            | email, sms |      |\n"
        "|                                   |                  | (non_responders)      |            |      |\n"
        "+-----------------------------------+------------------+-----------------------+------------+------+\n"
    )


def test_calendar_defaults_to_the_next_90_days_from_the_injected_clock(
    scaffold: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-02-20T12:00:00+01:00")
    result = runner.invoke(app, ["--workspace", str(scaffold), "calendar", "--json"])
    document = json.loads(result.stdout)
    assert (document["from"], document["to"]) == ("2027-02-20", "2027-05-21")
    assert [(w["campaign"], w["local"]) for w in document["waves"]][:3] == [
        ("renewal-reminder", "2027-02-22T09:00:00+01:00"),
        ("renewal-reminder", "2027-03-01T09:00:00+01:00"),
        ("update-2027", "2027-03-01T09:00:00+01:00"),
    ]


def test_calendar_writes_an_ics_that_icalendar_reads_back(scaffold: Path, tmp_path: Path) -> None:
    from icalendar import Calendar

    target = tmp_path / "c.ics"
    result = runner.invoke(
        app,
        [
            "--workspace",
            str(scaffold),
            "calendar",
            "--from",
            "2027-03-01",
            "--to",
            "2027-03-31",
            "--ics",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    events = Calendar.from_ical(target.read_bytes()).walk("VEVENT")
    summaries = sorted(
        str(e["summary"]) for e in events if str(e["summary"]).startswith("update-2027")
    )
    assert summaries == [
        "update-2027: first send",
        "update-2027: relaunch 1 (non_responders)",
        "update-2027: relaunch 2 (non_openers)",
    ]
    uids = [str(e["uid"]) for e in events]
    assert len(uids) == len(set(uids))
    assert f"wrote {len(events)} event(s) to {target}" in result.stderr


def test_calendar_refuses_bad_dates(scaffold: Path) -> None:
    result = runner.invoke(app, ["--workspace", str(scaffold), "calendar", "--from", "2027-13-01"])
    assert result.exit_code == 64
    assert "error: --from '2027-13-01': month must be in 1..12" in result.stderr
    reversed_range = runner.invoke(
        app,
        ["--workspace", str(scaffold), "calendar", "--from", "2027-03-02", "--to", "2027-03-01"],
    )
    assert reversed_range.exit_code == 64
