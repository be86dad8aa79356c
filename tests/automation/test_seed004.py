"""Seed 004 end to end through the CLI, on SQLite and PostgreSQL, with the clock pinned:
a welcome, a wait, a decision on the open, a reminder, lists; a draft that stays silent;
late joiners and nobody welcomed twice; a template edited during the wait sent as edited."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

DAY1 = "2027-01-05T10:00:00+01:00"
DAY4 = "2027-01-08T10:00:00+01:00"
DAY11 = "2027-01-15T10:00:00+01:00"
NAME = "bienvenue-adherents"


def run(root: Path, *args: str, now: str = DAY1):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, ["--workspace", str(root), *args], env={"CAMPAIGNCTL_NOW": now, "CI": "1"}
    )


def ok(root: Path, *args: str, now: str = DAY1) -> str:
    result = run(root, *args, now=now)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def ws(demo: Path, backend: str) -> Path:
    """The demo with its automation only (the other campaigns' missed waves aside)."""
    for path in (demo / "campaigns").glob("*.yaml"):
        if path.stem != NAME:
            path.unlink()
    ok(demo, "audience", "import")
    return demo


def tick(root: Path, now: str) -> str:
    result = run(root, "scheduler", "tick", now=now)
    assert result.exit_code == 0, result.output
    line = result.stderr.strip().splitlines()[-1]
    return line.split("; ", 1)[1] if "; " in line else ""


def messages(root: Path) -> dict[str, list[str]]:
    """The emails the file transport wrote, by recipient: subject + text part."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / ".campaignctl" / "outbox" / NAME).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found.setdefault(str(message["To"]), []).append(f"{message['Subject']}\n{text}")
    return found


ACT1 = "location.vtt.les.ecureuils@wanadoo.example"
ACT2 = "info@location-vtt-le-fenil.example"


def test_seed_004_welcome_wait_decide_remind_and_list(ws: Path) -> None:
    ok(ws, "apply", "--auto-approve")
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002")
    assert tick(ws, DAY1) == (
        "automations: 1 active, 2 enrolled, 2 step(s) run, 2 waiting, 0 failed"
    )
    welcomes = messages(ws)
    assert sorted(welcomes) == [ACT2, ACT1]
    assert welcomes[ACT1][0].startswith("Bienvenue parmi les partenaires de l'Office")
    # nothing due before the end of the wait
    assert tick(ws, "2027-01-07T10:00:00+01:00") == (
        "automations: 1 active, 0 enrolled, 0 step(s) run, 2 waiting, 0 failed"
    )

    # the reminder is edited during the wait: it goes as edited (bound at send time)
    template = ws / "templates" / "bienvenue-relance.txt.j2"
    template.write_text(
        template.read_text().replace("Rappel :", "Rappel (version corrigée) :"), "utf-8"
    )
    ok(ws, "events", "ingest", "-", now="2027-01-06T10:00:00+01:00")  # nothing: no line
    opened = json.dumps({"type": "opened", "campaign": NAME, "record": "ACT-001",
                         "at": "2027-01-06T09:30:00+01:00"})  # fmt: skip
    result = CliRunner().invoke(
        app, ["--workspace", str(ws), "events", "ingest", "-"], input=opened + "\n",
        env={"CAMPAIGNCTL_NOW": "2027-01-06T10:00:00+01:00", "CI": "1"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # day 4: ACT-001 opened -> email reminder; ACT-002 did not and has no mobile -> no SMS
    assert tick(ws, DAY4) == (
        "automations: 1 active, 0 enrolled, 8 step(s) run, 2 waiting, 0 failed"
    )
    after = messages(ws)
    assert len(after[ACT1]) == 2 and len(after[ACT2]) == 1
    reminder = next(m for m in after[ACT1] if "Rappel" in m)
    assert "Rappel (version corrigée) : votre fiche n'est pas encore publiée." in reminder

    report = json.loads(ok(ws, "report", NAME, "--format", "json"))
    steps = {s["step"]: s for s in report["steps"]}
    assert (steps["1"]["affected"], steps["1"]["processed"], steps["1"]["sent"]) == (2, 2, 2)
    assert steps["1"]["opened"] == 1
    assert steps["3.else.1.then.1"]["sent"] == 1
    assert steps["3.else.1.else.1"]["no_address"] == 1
    assert steps["3.else.2"]["waiting"] == 2

    # a week later nobody answered nor clicked: both go to the call list
    assert tick(ws, DAY11) == (
        "automations: 1 active, 0 enrolled, 8 step(s) run, 0 waiting, 0 failed"
    )
    listed = json.loads(ok(ws, "list", "show", "a-appeler", "--json", now=DAY11))
    assert [m["key"] for m in listed["members"]] == ["ACT-001", "ACT-002"]
    assert listed["members"][0]["source"] == f"campaign {NAME} step 3.else.3.else.1"

    # leaving and re-entering the list never welcomes twice; a late joiner is welcomed
    ok(ws, "list", "remove", "nouveaux-adherents", "ACT-001", now=DAY11)
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-003", now=DAY11)
    assert tick(ws, DAY11).startswith("automations: 1 active, 1 enrolled, 1 step(s) run")
    final = messages(ws)
    assert len(final[ACT1]) == 2
    assert sum(len(v) for v in final.values()) == 4


def test_a_draft_stays_silent_until_activated_and_deactivating_holds_records(ws: Path) -> None:
    spec = ws / "campaigns" / f"{NAME}.yaml"
    spec.write_text(spec.read_text().replace("type: message\n", "type: message\ndraft: true\n"))
    ok(ws, "apply", "--auto-approve")
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002")
    assert tick(ws, DAY1) == ""  # a draft is not an active automation
    assert messages(ws) == {}
    plan = json.loads(ok(ws, "plan", NAME, "--json"))["campaigns"][0]
    assert plan["automation"] == {"state": "draft", "affected": 2, "enrolled": 0,
                                  "trigger": "list_added nouveaux-adherents"}  # fmt: skip

    assert ok(ws, "campaign", "activate", NAME) == (
        f"{NAME}: active (the next scheduler pass enrols and advances records)\n"
    )
    assert tick(ws, DAY1).startswith("automations: 1 active, 2 enrolled")
    assert len(messages(ws)) == 2
    switched = json.loads(ok(ws, "campaign", "deactivate", NAME, "--json"))
    assert switched["state"] == "inactive"
    assert tick(ws, DAY4) == ""  # records held at the wait
    plan = json.loads(ok(ws, "plan", NAME, "--json", now=DAY4))["campaigns"][0]
    assert plan["automation"]["state"] == "inactive"
    assert plan["automation"]["enrolled"] == 2
    ok(ws, "campaign", "activate", NAME, now=DAY4)
    assert tick(ws, DAY4).startswith("automations: 1 active, 0 enrolled, 8 step(s) run")


def test_an_automation_is_not_sent_by_hand(ws: Path) -> None:
    ok(ws, "apply", "--auto-approve")
    result = run(ws, "send", NAME)
    assert result.exit_code == 64
    assert f"campaign {NAME!r} is an automation" in result.output
