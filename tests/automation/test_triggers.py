"""Triggers and failures of automations through the CLI, on SQLite and PostgreSQL:
a form_submitted of another campaign (seed 002's event-triggered campaigns), a
segment_entered with a `where:`, a space visit, and a send that fails at send time."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2027-01-05T10:00:00+01:00"
LATER = "2027-01-08T10:00:00+01:00"


def run(root: Path, *args: str, now: str = NOW, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, ["--workspace", str(root), *args], input=stdin,
        env={"CAMPAIGNCTL_NOW": now, "CI": "1"},
    )  # fmt: skip


def ok(root: Path, *args: str, now: str = NOW, stdin: str | None = None) -> str:
    result = run(root, *args, now=now, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def keep(demo: Path, *names: str) -> Path:
    for path in (demo / "campaigns").glob("*.yaml"):
        if path.stem not in names:
            path.unlink()
    ok(demo, "audience", "import")
    return demo


def automation_line(result) -> str:  # type: ignore[no-untyped-def]
    line = result.stderr.strip().splitlines()[-1]
    return line.split("; ", 1)[1] if "; " in line else ""


def sent_to(root: Path, campaign: str) -> int:
    return len(list((root / ".campaignctl" / "outbox" / campaign).glob("*.eml")))


def test_form_submitted_to_another_campaign_triggers_a_thank_you(demo: Path, backend: str) -> None:
    ws = keep(demo, "merci-mise-a-jour", "mise-a-jour-2027")
    ok(ws, "apply", "--auto-approve")
    ok(ws, "campaign", "activate", "merci-mise-a-jour")
    answers = [
        {"type": "form_submitted", "campaign": "mise-a-jour-2027", "record": "CAM-002",
         "data": {"phone": "04 50 00 00 00"}},
        {"type": "form_opened", "campaign": "mise-a-jour-2027", "record": "CAM-004"},
    ]  # fmt: skip
    ok(ws, "events", "ingest", "-", stdin="".join(json.dumps(a) + "\n" for a in answers))
    tick = run(ws, "scheduler", "tick")
    assert automation_line(tick) == (
        "automations: 1 active, 1 enrolled, 1 step(s) run, 1 waiting, 0 failed"
    )
    assert sent_to(ws, "merci-mise-a-jour") == 1
    report = json.loads(ok(ws, "report", "merci-mise-a-jour", "--format", "json"))
    assert [(s["step"], s["label"], s["affected"], s["processed"], s["waiting"], s["sent"])
            for s in report["steps"]] == [
        ("1", "send merci", 1, 1, 0, 1),
        ("2", "wait 2d", 1, 0, 1, 0),
        ("3", "if", 0, 0, 0, 0),
        ("3.then.1", "add_to_list candidats-medias", 0, 0, 0, 0),
    ]  # fmt: skip


def test_segment_entered_enrols_present_members_then_entrants_with_its_where(
    demo: Path, backend: str
) -> None:
    ws = keep(demo, "bienvenue-adherents")
    spec = ws / "campaigns" / "bienvenue-adherents.yaml"
    text = spec.read_text().replace(
        "trigger:\n  event: list_added\n  list: nouveaux-adherents\n",
        "trigger:\n  event: segment_entered\n  segment: members\n  where: {category: camping}\n",
    )
    spec.write_text(text)
    ok(ws, "apply", "--auto-approve")
    plan = json.loads(ok(ws, "plan", "bienvenue-adherents", "--json"))["campaigns"][0]
    affected = plan["automation"]["affected"]
    assert affected > 0
    tick = run(ws, "scheduler", "tick")
    assert automation_line(tick).startswith(f"automations: 1 active, {affected} enrolled")
    # a record entering the segment later (its contract renewed, by a re-import) is enrolled
    source = ws / "audiences" / "contacts.csv"
    rows = source.read_text(encoding="utf-8").splitlines()
    lapsed = next(i for i, r in enumerate(rows) if r.startswith("CAM-005;"))  # ended 2026-12-29
    cells = rows[lapsed].split(";")
    cells[8] = "2027-12-31"
    rows[lapsed] = ";".join(cells)
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ok(ws, "audience", "import")
    again = run(ws, "scheduler", "tick")
    assert automation_line(again).startswith("automations: 1 active, 1 enrolled")
    assert json.loads(ok(ws, "plan", "bienvenue-adherents", "--json"))["campaigns"][0][
        "automation"
    ] == {"state": "active", "affected": 0, "enrolled": affected + 1,
          "trigger": "segment_entered members"}  # fmt: skip


def test_a_send_that_fails_keeps_its_records_at_their_step_until_fixed(
    demo: Path, backend: str
) -> None:
    ws = keep(demo, "bienvenue-adherents")
    ok(ws, "apply", "--auto-approve")
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002")
    assert run(ws, "scheduler", "tick").exit_code == 0
    template = ws / "templates" / "bienvenue-relance.txt.j2"
    good = template.read_text()
    template.write_text(good.replace("{% block content -%}", "{% block content -%}{{ 1/0 }}"))
    ok(ws, "events", "ingest", "-", now=LATER, stdin=json.dumps(
        {"type": "opened", "campaign": "bienvenue-adherents", "record": "ACT-001",
         "at": "2027-01-06T09:00:00+01:00"}) + "\n")  # fmt: skip
    broken = run(ws, "scheduler", "tick", now=LATER)
    assert broken.exit_code == 1, broken.output
    line = automation_line(broken)
    assert line.startswith("automations: 1 active, 0 enrolled, 7 step(s) run, 2 waiting, 1 failed")
    assert (
        "bienvenue-adherents: step 3.else.1.then.1 (send bienvenue-relance): 1 record(s) held at "
        "the step, their message failed: "
    ) in line
    assert sent_to(ws, "bienvenue-adherents") == 2  # the reminder did not go
    # held, not retried, and reported once
    assert automation_line(run(ws, "scheduler", "tick", now=LATER)).endswith("0 failed")
    template.write_text(good)  # fixed: the next pass sends it
    fixed = run(ws, "scheduler", "tick", now=LATER)
    assert automation_line(fixed) == (
        "automations: 1 active, 0 enrolled, 1 step(s) run, 2 waiting, 0 failed"
    )
    assert sent_to(ws, "bienvenue-adherents") == 3


def test_a_first_wait_holds_the_records_enrolled_until_its_end(demo: Path, backend: str) -> None:
    ws = keep(demo, "bienvenue-adherents")
    spec = ws / "campaigns" / "bienvenue-adherents.yaml"
    spec.write_text(spec.read_text().replace("steps:\n", "steps:\n  - wait: 1d\n", 1))
    ok(ws, "apply", "--auto-approve")
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002")
    first = run(ws, "scheduler", "tick")
    assert automation_line(first) == (
        "automations: 1 active, 2 enrolled, 0 step(s) run, 2 waiting, 0 failed"
    )
    assert sent_to(ws, "bienvenue-adherents") == 0
    a_day_later = run(ws, "scheduler", "tick", now="2027-01-06T10:00:00+01:00")
    assert automation_line(a_day_later) == (
        "automations: 1 active, 0 enrolled, 4 step(s) run, 2 waiting, 0 failed"
    )
    assert sent_to(ws, "bienvenue-adherents") == 2


def test_two_schedulers_at_once_never_advance_a_record_twice(demo: Path, backend: str) -> None:
    import os
    import subprocess
    import sys

    ws = keep(demo, "bienvenue-adherents")
    ok(ws, "apply", "--auto-approve")
    ok(ws, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002", "ACT-003")
    binary = str(Path(sys.executable).parent / "campaignctl")
    env = {**os.environ, "CAMPAIGNCTL_NOW": NOW, "CI": "1"}
    command = [binary, "--workspace", str(ws), "scheduler", "tick", "--lock-timeout", "120s"]
    ticks = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    lines = []
    for tick in ticks:
        _, err = tick.communicate(timeout=300)
        assert tick.returncode == 0, err
        lines.append(err.strip().splitlines()[-1].split("; ", 1)[1])
    assert sorted(lines) == [
        "automations: 1 active, 0 enrolled, 0 step(s) run, 3 waiting, 0 failed",
        "automations: 1 active, 3 enrolled, 3 step(s) run, 3 waiting, 0 failed",
    ]
    assert sent_to(ws, "bienvenue-adherents") == 3


def visit(key: str, at: str = NOW) -> str:
    return json.dumps({"type": "space_visited", "record": key, "audience": "providers", "at": at})


def test_a_space_visit_enrols_its_record_in_the_information_campaign_once(
    demo: Path, backend: str
) -> None:
    """Seed 003 by partner type: the `space_visited` events that `serve` stores (ingested
    here) enrol, at the next pass, the records the campaign targets, inside its window."""
    from datetime import date

    import sqlalchemy as sa

    from campaignctl.automation.information import space_campaigns
    from campaignctl.store import Store

    ws = keep(demo, "charte-qualite-2027")
    ok(ws, "apply", "--auto-approve")
    visits = [
        visit("HOT-003"),  # a hotel: targeted
        visit("RES-001"),  # a restaurant: not among the partner types
        visit("HOT-004", "2027-01-03T10:00:00+01:00"),  # before the window (and activation)
    ]
    ok(ws, "events", "ingest", "-", stdin="\n".join(visits) + "\n")
    plan = json.loads(ok(ws, "plan", "charte-qualite-2027", "--json"))["campaigns"][0]
    assert plan["automation"] == {"state": "active", "affected": 1, "enrolled": 0,
                                  "trigger": "space_visited"}  # fmt: skip
    tick = run(ws, "scheduler", "tick")
    assert automation_line(tick) == (
        "automations: 1 active, 1 enrolled, 0 step(s) run, 0 waiting, 0 failed"
    )
    # a second visit, later: enrolled once per campaign
    ok(ws, "events", "ingest", "-", now=LATER, stdin=visit("HOT-003", LATER) + "\n")
    assert automation_line(run(ws, "scheduler", "tick", now=LATER)) == (
        "automations: 1 active, 0 enrolled, 0 step(s) run, 0 waiting, 0 failed"
    )
    store = Store(os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db",
                  root=ws)  # fmt: skip
    try:
        with store.read() as conn:
            ids = dict(conn.execute(sa.text("SELECT key, id FROM record WHERE key IN "
                                            "('HOT-003', 'RES-001', 'HOT-004')")).all())  # fmt: skip
            shown = {
                key: [c.campaign for c in space_campaigns(conn, [ids[key]], date(2027, 1, 8))]
                for key in ids
            }
    finally:
        store.close()
    assert shown == {"HOT-003": ["charte-qualite-2027"], "RES-001": [], "HOT-004": []}
    # closed by hand before its end date: the space shows it no more
    ok(ws, "campaign", "deactivate", "charte-qualite-2027", now=LATER)
    store = Store(os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db",
                  root=ws)  # fmt: skip
    try:
        with store.read() as conn:
            assert space_campaigns(conn, [ids["HOT-003"]], date(2027, 1, 8)) == []
    finally:
        store.close()


def test_a_space_visit_sends_the_information_campaign_s_notice(demo: Path, backend: str) -> None:
    ws = keep(demo, "charte-qualite-2027")
    spec = ws / "campaigns" / "charte-qualite-2027.yaml"
    spec.write_text(spec.read_text().replace(
        "channels: []                                  # shown in the partner space only\n",
        "channels: [email]\nmessage:\n  subject: La charte qualité 2027 est à signer\n"
        "  template: documents-disponibles\n  blocks: {intro: La charte 2027 vous attend.}\n",
    ))  # fmt: skip
    ok(ws, "validate")
    ok(ws, "apply", "--auto-approve")
    ok(ws, "events", "ingest", "-", stdin=visit("HOT-003") + "\n")
    assert automation_line(run(ws, "scheduler", "tick")) == (
        "automations: 1 active, 1 enrolled, 1 step(s) run, 0 waiting, 0 failed"
    )
    [notice] = (ws / ".campaignctl" / "outbox" / "charte-qualite-2027").glob("*.eml")
    assert "La charte 2027 vous attend." in notice.read_text(encoding="utf-8", errors="replace")
