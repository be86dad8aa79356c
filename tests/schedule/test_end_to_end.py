"""The scheduler through the real lock, send engine and events: first send, then a relaunch."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import open_store

runner = CliRunner()


def run(root: Path, *args: str, now: str | None = None, monkeypatch=None, stdin: str | None = None):
    if now is not None:
        monkeypatch.setenv("CAMPAIGNCTL_NOW", now)
    result = runner.invoke(app, ["--workspace", str(root), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result


def test_tick_sends_the_first_wave_then_relaunches_exactly_the_non_responders(
    demo: Path, monkeypatch, backend: str
) -> None:
    run(demo, "audience", "import")
    run(demo, "apply", "mise-a-jour-2027", "--auto-approve")  # the others' waves would be missed

    first = run(demo, "scheduler", "tick", now="2027-03-01T09:00:30+01:00", monkeypatch=monkeypatch)
    assert (
        "sent: mise-a-jour-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): 154 sent, 0 failed"
        in first.stderr
    )

    store = open_store(demo)  # SQLite, or PostgreSQL with the `backend` fixture
    with store.read() as conn:
        answered = conn.execute(
            sa.text(
                "SELECT o.message_id, r.key FROM outbox o JOIN record r ON r.id = o.record_id "
                "WHERE o.channel = 'email' AND o.group_key IS NOT NULL ORDER BY o.id LIMIT 3"
            )
        ).all()
    events = "".join(
        json.dumps({"type": "form_submitted", "message_id": m, "at": "2027-03-02T10:00:00+01:00"})
        + "\n"
        for m, _ in answered
    )
    # ingested the day the answers came (a time more than a day ahead of the clock is refused)
    ingest = run(
        demo, "events", "ingest", "-", stdin=events, now="2027-03-02T11:00:00+01:00",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert ingest.stderr.startswith("read 3 line(s): 3 recorded")

    second = run(
        demo, "scheduler", "tick", now="2027-03-08T09:00:30+01:00", monkeypatch=monkeypatch
    )
    assert (
        "sent: mise-a-jour-2027/0/1 (due 2027-03-08 09:00 +0100, wave 2): 151 sent, 0 failed"
        in second.stderr
    )

    with store.read() as conn:
        relaunched = set(
            conn.execute(
                sa.text(
                    "SELECT o.address FROM outbox o JOIN wave w ON w.id = o.wave_id WHERE w.number = 2 "
                    "AND w.campaign_id = (SELECT id FROM campaign WHERE name = 'mise-a-jour-2027')"
                )
            ).scalars()
        )
        answered_addresses = set(
            conn.execute(
                sa.text("SELECT address FROM outbox WHERE message_id IN (:a, :b, :c)"),
                dict(zip("abc", [m for m, _ in answered], strict=True)),
            ).scalars()
        )
    store.close()
    assert len(relaunched) == 151 and not (relaunched & answered_addresses)
    # the relaunch template says it is a reminder
    reminders = [
        p
        for p in (demo / ".campaignctl/outbox/mise-a-jour-2027").glob("*.eml")
        if b"Rappel" in p.read_bytes()
    ]
    assert len(reminders) == 142  # 151 relaunch messages, 9 of them SMS

    third = run(demo, "scheduler", "tick", now="2027-03-08T09:05:00+01:00", monkeypatch=monkeypatch)
    assert "0 scheduled, 0 missed, 0 sent" in third.stderr  # never twice
