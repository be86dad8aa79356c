"""`campaignctl send` through the CLI, with the demo workspace and the file transports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import import_audience, locked_demo, open_store

CAMPAIGN = "mise-a-jour-2027"
WEEKDAY_MORNING = "2026-11-23T10:00:00+01:00"  # a Monday, outside the demo's quiet hours
EARLY = (  # the demo's first send is scheduled for 2027-03-01: `--now` sends it earlier
    "mise-a-jour-2027 is scheduled for 2027-03-01 09:00 CET (+01:00); sending now by hand "
    "(the scheduler will not send this first wave again; its relaunches keep their dates)"
)
NOTE = (
    "note: CAMPAIGNCTL_SECRET is not set: links are signed with the fixed development secret "
    "(accepted only with the file transport and for previews)"
)


def _run(root: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@pytest.fixture
def locked(demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Path:
    """The demo, imported and locked, on SQLite and on PostgreSQL (`backend`)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", WEEKDAY_MORNING)
    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)
    figures = locked_demo(demo, CAMPAIGN)
    assert figures["recipients"] == 162
    return demo


def _states(root: Path) -> dict[tuple[str, str], int]:
    store = open_store(root)
    with store.read() as conn:
        rows = conn.execute(
            sa.text("SELECT channel, state, count(*) FROM outbox GROUP BY channel, state")
        ).all()
    store.close()
    return {(channel, state): n for channel, state, n in rows}


def test_send_delivers_the_demo_to_the_file_outbox(locked: Path) -> None:
    result = _run(locked, "send", CAMPAIGN, "--now")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:2] == [EARLY, NOTE]
    assert lines[2] == (
        "Sending mise-a-jour-2027 wave 1: 154 to send now "
        "(154 messages: 0 already sent, 0 suppressed, 0 skipped)"
    )
    assert lines[3].startswith(
        "mise-a-jour-2027 wave 1: 154 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain, "
        "0 suppressed, 0 skipped ("
    )
    assert len(lines) == 4
    folder = locked / ".campaignctl" / "outbox" / CAMPAIGN
    assert len(list(folder.glob("*.eml"))) == 145
    assert len((folder / "sms.jsonl").read_text().splitlines()) == 9
    assert _states(locked) == {("email", "sent"): 145, ("sms", "sent"): 9}


def test_send_again_has_nothing_left_and_writes_nothing(locked: Path) -> None:
    assert _run(locked, "send", CAMPAIGN, "--now").exit_code == 0
    again = _run(locked, "send", CAMPAIGN, "--now")

    assert again.exit_code == 0, again.output
    assert again.stderr.splitlines()[1:] == [
        "Sending mise-a-jour-2027 wave 1: 0 to send now "
        "(154 messages: 154 already sent, 0 suppressed, 0 skipped)",
        "mise-a-jour-2027 wave 1: 0 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain, "
        "0 suppressed, 0 skipped (0 msg/s).",
    ]


def test_limit_stops_cleanly_and_the_next_send_resumes(locked: Path) -> None:
    first = _run(locked, "send", CAMPAIGN, "--now", "--limit", "50")

    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines()[-1] == (
        "--limit reached: 104 message(s) left; run send again to resume."
    )
    assert sum(_states(locked).get((c, "sent"), 0) for c in ("email", "sms")) == 50
    second = _run(locked, "send", CAMPAIGN, "--now")
    assert second.exit_code == 0, second.output
    assert "104 to send now" in second.stderr
    assert _states(locked) == {("email", "sent"): 145, ("sms", "sent"): 9}


def test_dry_run_renders_everything_and_records_nothing(locked: Path) -> None:
    result = _run(locked, "send", CAMPAIGN, "--now", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Dry run of mise-a-jour-2027 wave 1: 154 message(s) rendered, 0 failed to render, "
        "0 suppressed, 0 skipped; nothing was sent or recorded.\n"
    )
    assert _states(locked) == {}
    assert not (locked / ".campaignctl" / "outbox").exists()


def test_a_dry_run_of_a_campaign_not_locked_locks_virtually_and_records_nothing(
    demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """`send` locks by itself, so its dry run must not refuse: it renders what a lock made
    now would freeze, says so, and leaves no lock, outbox row or file behind."""
    from campaignctl.plan.apply import apply_definitions
    from campaignctl.spec.workspace import load_workspace

    monkeypatch.setenv("CAMPAIGNCTL_NOW", WEEKDAY_MORNING)
    monkeypatch.setenv("CAMPAIGNCTL_SECRET", "a-test-secret")
    import_audience(demo)
    store = open_store(demo)
    apply_definitions(store, load_workspace(demo), [CAMPAIGN])
    serial = store.serial()
    store.close()

    result = _run(demo, "send", CAMPAIGN, "--now", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "mise-a-jour-2027 is not locked: rendered from what a lock made now would freeze (162 "
        "recipients; `campaignctl lock mise-a-jour-2027` records it, as `send` does first).\n"
        "Dry run of mise-a-jour-2027 wave 1: 154 message(s) rendered, 0 failed to render, "
        "0 suppressed, 0 skipped; nothing was sent or recorded.\n"
    )
    store = open_store(demo)
    with store.read() as conn:
        tables = ("campaign_lock", "recipient", "outbox", "wave")
        counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables]
    assert (counts, store.serial()) == ([0, 0, 0, 0], serial)
    store.close()
    assert not (demo / ".campaignctl" / "outbox").exists()
    # what the dry run rendered is what the real send then sends, from a real lock
    sent = _run(demo, "send", CAMPAIGN, "--now")
    assert "locked it now (lock 1, 162 recipients)" in sent.stderr
    assert "154 sent, 0 failed" in sent.stderr


def test_json_prints_ndjson_events_ending_with_the_summary(locked: Path) -> None:
    result = _run(locked, "send", CAMPAIGN, "--now", "--json")

    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events[:2]] == ["warning", "start"]
    assert events[1] == {
        "type": "start", "campaign": CAMPAIGN, "wave": 1, "total": 154, "due": 154,
        "sent": 0, "suppressed": 0, "skipped": 0, "uncertain": 0,
    }  # fmt: skip
    assert {e["type"] for e in events[2:-1]} == {"progress"}
    summary = events[-1]
    assert summary["type"] == "summary"
    assert (summary["sent"], summary["failed"], summary["uncertain"]) == (154, 0, 0)
    assert summary["format_version"] == 1
    assert set(summary) >= {"rate", "elapsed", "retrying", "suppressed", "skipped", "remaining"}


def test_suppressed_and_opted_out_addresses_are_never_sent(locked: Path) -> None:
    assert _run(locked, "suppress", "add", "contact@croix-blanche.example").exit_code == 0
    opted = _run(
        locked, "suppress", "add", "info@hotel-restaurant-le-fenil.example",
        "--category", "administrative",
    )  # fmt: skip
    assert opted.exit_code == 0, opted.output
    other = _run(
        locked, "suppress", "add", "bonjour@hotel-le-soleil-d-or.example", "--category", "marketing"
    )
    assert other.exit_code == 0, other.output

    result = _run(locked, "send", CAMPAIGN, "--now")

    assert result.exit_code == 0, result.output
    assert "152 sent" in result.stderr and "2 suppressed" in result.stderr
    store = open_store(locked)
    with store.read() as conn:
        rows = conn.execute(
            sa.text("SELECT address, reason FROM outbox WHERE state = 'suppressed' ORDER BY 1")
        ).all()
    store.close()
    assert [tuple(r) for r in rows] == [
        ("contact@croix-blanche.example", "suppressed: manual"),
        ("info@hotel-restaurant-le-fenil.example", "suppressed: manual"),
    ]
    eml = (locked / ".campaignctl" / "outbox" / CAMPAIGN).glob("*.eml")
    texts = [path.read_bytes() for path in eml]
    assert not any(b"croix-blanche" in t.split(b"\r\n\r\n")[0] for t in texts)
    assert sum(b"To: bonjour@hotel-le-soleil-d-or.example" in t for t in texts) == 1


def test_sms_in_quiet_hours_are_held_said_so_with_their_local_time_and_exit_75(
    locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-23T22:00:00+01:00")  # Monday evening

    result = _run(locked, "send", CAMPAIGN, "--now")

    assert result.exit_code == 75, result.output  # they go out later by themselves
    assert result.stderr.splitlines()[3:] == [
        "mise-a-jour-2027 wave 1: 145 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain, "
        "0 suppressed, 0 skipped " + result.stderr.splitlines()[3].split("skipped ")[1],
        "9 SMS held by quiet hours until Tue 24/11 09:00 (Europe/Paris): the scheduler's first "
        "pass after that sends them, or run `campaignctl send mise-a-jour-2027` again then.",
    ]
    assert (locked / ".campaignctl" / "outbox" / CAMPAIGN / "sms.jsonl").read_text() == ""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-24T09:00:00+01:00")
    later = _run(locked, "send", CAMPAIGN, "--now")
    assert later.exit_code == 0, later.output
    assert "9 sent" in later.stderr
    assert _states(locked) == {("email", "sent"): 145, ("sms", "sent"): 9}


def test_a_held_send_lease_names_its_holder_and_exits_75(locked: Path) -> None:
    from datetime import timedelta

    from campaignctl.store.lease import HeldLease, try_acquire

    store = open_store(locked)
    held = try_acquire(
        store, f"send:{CAMPAIGN}", "send", timedelta(seconds=60), holder="otherhost:4242"
    )
    assert isinstance(held, HeldLease)
    store.close()

    result = _run(locked, "send", CAMPAIGN, "--now")

    assert result.exit_code == 75
    assert result.stderr == (
        f"{EARLY}\n"
        "error: another send holds the lease 'send:mise-a-jour-2027' since 2026-11-23 10:00:00 "
        "CET (otherhost:4242, send; expires 10:01:00 CET unless renewed)\n"
        "  hint: retry later, wait with --lock-timeout DURATION, or if that process is gone: "
        "campaignctl lease release send:mise-a-jour-2027 --yes\n"
    )
    waited = _run(locked, "send", CAMPAIGN, "--now", "--lock-timeout", "1s")
    assert waited.exit_code == 75


def test_send_locks_first_when_there_is_no_lock_and_says_so(
    demo: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", WEEKDAY_MORNING)  # the demo holds SMS at night
    import_audience(demo)
    from campaignctl.plan.apply import apply_definitions
    from campaignctl.spec.workspace import load_workspace

    store = open_store(demo)
    apply_definitions(store, load_workspace(demo), [CAMPAIGN])
    store.close()

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "mise-a-jour-2027 was not locked: locked it now (lock 1, 162 recipients); "
        "see `campaignctl lock mise-a-jour-2027`\n"
    )
    assert "154 sent, 0 failed" in result.stderr


def test_send_refuses_templates_edited_since_the_lock(locked: Path) -> None:
    template = locked / "templates" / "mise-a-jour.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "\nPS\n", encoding="utf-8")

    result = _run(locked, "send", CAMPAIGN, "--now")

    assert result.exit_code == 65
    assert result.stderr == (
        "error: campaign 'mise-a-jour-2027' changed since it was locked: templates/mise-a-jour.txt.j2\n"
        "  hint: review with `campaignctl plan mise-a-jour-2027`, then "
        "`campaignctl lock mise-a-jour-2027 --refresh`\n"
    )


def test_a_campaign_not_applied_says_to_apply_it(demo: Path, backend: str) -> None:
    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 65
    assert result.stderr == (
        "error: campaign 'mise-a-jour-2027' is not applied: the store does not know it yet\n"
        "  hint: run `campaignctl apply` first\n"
    )


def test_test_to_sends_one_message_and_touches_no_state(locked: Path) -> None:
    result = _run(locked, "send", CAMPAIGN, "--now", "--test-to", "me@example.org")

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("test email to me@example.org (as ")
    captures = list((locked / ".campaignctl" / "outbox" / CAMPAIGN).glob("*.eml"))
    assert len(captures) == 1
    assert b"To: me@example.org\r\n" in captures[0].read_bytes()
    assert _states(locked) == {}


def test_send_json_lists_every_uncertain_row_and_the_text_the_first_thousand(
    demo: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    from tests.delivery.sendkit import write_contacts

    monkeypatch.setenv("CAMPAIGNCTL_NOW", WEEKDAY_MORNING)
    write_contacts(demo, 1_300)
    locked_demo(demo, CAMPAIGN)
    assert _run(demo, "send", CAMPAIGN, "--now", "--limit", "10").exit_code == 0
    # 1,250 messages left in doubt by earlier crashes (a store from before the hand-over
    # marks kept whole batches uncertain)
    store = open_store(demo)
    with store.transaction() as conn:
        conn.execute(
            sa.text(
                "UPDATE outbox SET state = 'uncertain', claimed_by = 'old-host:77' WHERE id IN "
                "(SELECT id FROM outbox WHERE state = 'queued' ORDER BY id LIMIT 1250)"
            )
        )
    store.close()

    result = _run(demo, "send", CAMPAIGN, "--now", "--json")

    assert result.exit_code == 1, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    listed = next(e for e in events if e["type"] == "uncertain")
    assert listed["count"] == len(listed["rows"]) == 1_250
    summary = events[-1]
    assert summary["uncertain"] == len(summary["uncertain_rows"]) == 1_250
    assert summary["sent"] == 40
    assert summary["uncertain_rows"][0] == {
        "id": 11, "channel": "email", "address": "c10@d10.example", "record_key": "HOT-000010",
        "message_id": None, "claimed_by": "old-host:77", "error": None,
    }  # fmt: skip

    text = _run(demo, "send", CAMPAIGN, "--now")
    lines = text.stderr.splitlines()
    # listed when the send starts and again in its summary
    assert lines.count("  … and 250 more (`send --json` lists them all)") == 2
    assert lines[-1] == "  … and 250 more (`send --json` lists them all)"
    assert len([line for line in lines if line.startswith("  email ")]) == 2 * 1_000


def test_a_send_before_its_schedule_needs_now_names_the_schedule_and_shows_done(
    demo: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    """mise-a-jour-2027 is scheduled for 2027-03-01 09:00: a send by hand three months
    earlier is refused without a terminal unless --now, says what it overtakes, and then
    plan, calendar and the scheduler all know the first wave is done."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", WEEKDAY_MORNING)  # 2026-11-23
    monkeypatch.setenv("CAMPAIGNCTL_SECRET", "a-test-secret")
    import_audience(demo)
    assert _run(demo, "apply", CAMPAIGN, "--auto-approve").exit_code == 0

    refused = _run(demo, "send", CAMPAIGN)
    assert refused.exit_code == 64, refused.output
    assert refused.stderr == (
        "error: mise-a-jour-2027 is scheduled for 2027-03-01 09:00 CET (+01:00): send it now, "
        "by hand needs confirmation and nobody can answer here\n  hint: add --now to confirm\n"
    )
    assert _states(demo) == {} and not (demo / ".campaignctl" / "outbox").exists()

    sent = _run(demo, "send", CAMPAIGN, "--now")
    assert sent.exit_code == 0, sent.output
    assert sent.stderr.startswith(
        "mise-a-jour-2027 was not locked: locked it now (lock 1, 162 recipients); see "
        f"`campaignctl lock mise-a-jour-2027`\n{EARLY}\n"
    )
    assert "154 sent, 0 failed" in sent.stderr

    plan = _run(demo, "plan", CAMPAIGN)
    assert (
        "    2027-03-01 09:00 CET (+01:00)  first send: sent by hand, before its time\n"
        in plan.stdout
    ), plan.stdout
    assert (
        "    2027-03-08 09:00 CET (+01:00)  relaunch 1 (non_responders) (the next send, beyond "
        "the next 90 days)\n" in plan.stdout
    )
    assert "Plan: 1 to send" in plan.stdout  # the relaunches are still to come
    calendar = _run(demo, "calendar", "--from", "2027-03-01", "--to", "2027-03-01", "--json")
    states = {w["key"]: w["state"] for w in json.loads(calendar.stdout)["waves"]}
    assert states[f"{CAMPAIGN}/0/0"] == "sent"
    assert {key: state for key, state in states.items() if state} == {f"{CAMPAIGN}/0/0": "sent"}
    monkeypatch.setenv("COLUMNS", "160")  # one line per wave
    table = _run(demo, "calendar", "--from", "2027-03-01", "--to", "2027-03-01")
    assert "sent by hand, before its time" in table.stdout, table.stdout

    # on the day, the scheduler sends nothing more: the first wave exists
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T09:00:30+01:00")
    tick = _run(demo, "scheduler", "tick")
    assert tick.exit_code == 0, tick.output
    assert "0 scheduled, 0 missed, 0 sent" in tick.stderr
    assert _states(demo) == {("email", "sent"): 145, ("sms", "sent"): 9}
