"""Quiet hours over a real night, through the real lock, send engine and file transports.

The demo's yearly update is due at 22:00 with SMS quiet hours 21:30–08:00 (and Sundays
off): the 22:00 tick sends the emails and holds the 9 SMS, says until when, and leaves
the wave open; ticks during the night leave it alone; the first tick after 08:00 (the
Monday one when the night runs into a Sunday) sends the SMS and only then is the wave
done. `scheduler run` does the same on its first pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import open_store
from typer.testing import CliRunner

from campaignctl.cli.main import app

CAMPAIGN = "mise-a-jour-2027"
KEY = f"{CAMPAIGN}/0/0"
CAMPAIGNCTL = str(Path(sys.executable).parent / "campaignctl")


def night_demo(root: Path, send_at: str) -> None:
    """The demo with the quiet hours of the issue, the update due at `send_at`, applied."""
    config = root / "campaignctl.yaml"
    text = config.read_text("utf-8")
    demo_quiet = 'quiet_hours: {start: "20:00", end: "09:00", days_off: [sunday]}'
    assert demo_quiet in text
    config.write_text(
        text.replace(demo_quiet, 'quiet_hours: {start: "21:30", end: "08:00", days_off: [sunday]}')
    )
    campaign = root / "campaigns" / f"{CAMPAIGN}.yaml"
    text = campaign.read_text("utf-8")
    assert "send_at: 2027-03-01T09:00" in text
    campaign.write_text(text.replace("send_at: 2027-03-01T09:00", f"send_at: {send_at}"))
    for args in (["audience", "import"], ["apply", CAMPAIGN, "--auto-approve"]):
        result = CliRunner().invoke(app, ["--workspace", str(root), *args])
        assert result.exit_code == 0, result.output


def cli(root: Path, monkeypatch: pytest.MonkeyPatch, now: str, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAMPAIGNCTL_NOW", now)
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def tick(root: Path, monkeypatch: pytest.MonkeyPatch, now: str):  # type: ignore[no-untyped-def]
    return cli(root, monkeypatch, now, "scheduler", "tick")


def wave_and_sms(root: Path) -> tuple[str, dict[str, int]]:
    store = open_store(root)
    with store.read() as conn:
        status = conn.execute(sa.text("SELECT status FROM wave")).scalar_one()
        sms = dict(
            conn.execute(
                sa.text("SELECT state, count(*) FROM outbox WHERE channel = 'sms' GROUP BY state")
            ).all()
        )
    store.close()
    return str(status), sms


def sms_written(root: Path) -> int:
    path = root / ".campaignctl" / "outbox" / CAMPAIGN / "sms.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize(
    ("send_at", "held_until", "night_ticks", "morning"),
    [
        # a Friday night: held until Saturday 08:00
        (
            "2027-03-05T22:00",
            "Sat 06/03 08:00",
            ["2027-03-05T23:00:00+01:00", "2027-03-06T07:59:00+01:00"],
            "2027-03-06T08:05:00+01:00",
        ),
        # a Saturday night runs into a Sunday off: held until Monday 08:00
        (
            "2027-03-06T22:00",
            "Mon 08/03 08:00",
            ["2027-03-07T08:05:00+01:00", "2027-03-07T12:00:00+01:00"],
            "2027-03-08T08:05:00+01:00",
        ),
    ],
)
def test_sms_held_at_22_00_are_sent_by_the_first_tick_after_quiet_hours(
    demo: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    send_at: str,
    held_until: str,
    night_ticks: list[str],
    morning: str,
) -> None:
    night_demo(demo, send_at)
    due = f"(due {send_at.replace('T', ' ')} +0100, wave 1)"
    evening = tick(demo, monkeypatch, f"{send_at}:30+01:00")

    assert evening.exit_code == 75, evening.output  # messages wait: cron knows it will go on
    held = f"9 SMS held by quiet hours until {held_until} (Europe/Paris)"
    assert evening.stderr.splitlines()[:2] == [
        f"scheduled: {KEY} {due}",
        f"waiting: {KEY} {due}: 145 sent, 0 failed; {held}",
    ]
    assert evening.stderr.splitlines()[2].endswith(
        "1 scheduled, 0 missed, 0 sent, 1 waiting, 0 failed, 0 postponed"
    )
    # never done while a row is queued
    assert wave_and_sms(demo) == ("sending", {"queued": 9})

    for now in night_ticks:  # nothing is due: the wave is left alone, nothing is said
        quiet = tick(demo, monkeypatch, now)
        assert quiet.exit_code == 0, quiet.output
        assert quiet.stderr.split(": ", 1)[1] == (
            "0 scheduled, 0 missed, 0 sent, 0 waiting, 0 failed, 0 postponed\n"
        )
    assert sms_written(demo) == 0

    status = cli(demo, monkeypatch, night_ticks[-1], "scheduler", "status", "--json")
    assert status.exit_code == 0, status.output
    recent = json.loads(status.stdout)["recent"][0]
    assert (recent["occurrence_key"], recent["status"], recent["state"], recent["held"]) == (
        KEY, "sending", "held", 9,
    )  # fmt: skip
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    text = cli(demo, monkeypatch, night_ticks[-1], "scheduler", "status").stdout
    assert "| held " in text and "9 SMS held by quiet" in text, text
    listing = cli(demo, monkeypatch, night_ticks[-1], "report", "--format", "json")
    row = json.loads(listing.stdout)["rows"][0]
    assert (row["status"], row["held"], row["uncertain"]) == ("held", 9, 0)

    first_pass = tick(demo, monkeypatch, morning)

    assert first_pass.exit_code == 0, first_pass.output
    assert first_pass.stderr.splitlines()[0] == f"sent: {KEY} {due}: 9 sent, 0 failed"
    assert wave_and_sms(demo) == ("done", {"sent": 9})
    assert sms_written(demo) == 9


def test_the_daemon_sends_held_sms_on_its_first_pass_after_quiet_hours(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night_demo(demo, "2027-03-05T22:00")
    assert tick(demo, monkeypatch, "2027-03-05T22:00:30+01:00").exit_code == 75
    assert wave_and_sms(demo) == ("sending", {"queued": 9})

    environment = {**os.environ, "CAMPAIGNCTL_NOW": "2027-03-06T08:05:00+01:00", "NO_COLOR": "1"}
    daemon = subprocess.Popen(
        [CAMPAIGNCTL, "--workspace", str(demo), "scheduler", "run", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    try:
        lines = [json.loads(daemon.stdout.readline()) for _ in range(3)]  # type: ignore[union-attr]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    assert [(line["type"], line.get("message")) for line in lines] == [
        ("started", lines[0]["message"]),
        ("sent", "9 sent, 0 failed"),
        ("pass", "pass at 2027-03-06 07:05:00 UTC: 0 scheduled, 0 missed, 1 sent, 0 waiting, "
         "0 failed, 0 postponed"),
    ]  # fmt: skip
    assert wave_and_sms(demo) == ("done", {"sent": 9})
    assert sms_written(demo) == 9


@pytest.mark.parametrize("limit", [None, 100])
def test_the_scheduler_sends_the_sms_a_send_by_hand_held_but_never_resumes_a_stopped_send(
    demo: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    night_demo(demo, "2027-03-01T09:00")
    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)
    evening = "2027-02-22T22:00:00+01:00"  # a Monday, a week before the schedule
    args = ["send", CAMPAIGN, "--now"] + (["--limit", str(limit)] if limit else [])
    by_hand = cli(demo, monkeypatch, evening, *args)
    assert by_hand.exit_code == 75, by_hand.output
    assert "9 SMS held by quiet hours until Tue 23/02 08:00 (Europe/Paris)" in by_hand.stderr

    morning = tick(demo, monkeypatch, "2027-02-23T08:05:00+01:00")

    assert morning.exit_code == 0, morning.output
    if limit is None:  # only the held SMS were left: they go out
        assert morning.stderr.splitlines()[0] == (
            f"sent: {KEY} (due 2027-02-22 22:00 +0100, wave 1): 9 sent, 0 failed"
        )
        assert wave_and_sms(demo) == ("done", {"sent": 9})
    else:  # 45 emails the person's --limit left: theirs to send, with the SMS
        assert morning.stderr.startswith("pass at ")
        assert wave_and_sms(demo) == ("sending", {"queued": 9})
        rest = cli(demo, monkeypatch, "2027-02-23T08:10:00+01:00", "send", CAMPAIGN, "--now")
        assert rest.exit_code == 0, rest.output
        assert "54 sent, 0 failed" in rest.stderr
        assert wave_and_sms(demo) == ("done", {"sent": 9})
    assert sms_written(demo) == 9
