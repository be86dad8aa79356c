"""Seed 003: an information campaign triggered by a received document type, through
`events ingest` (events naming a record alone), on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import json
import os
from datetime import date
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2027-01-05T10:00:00+01:00"
NAME = "taxe-sejour-guide"


def run(root: Path, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, ["--workspace", str(root), *args], input=stdin,
        env={"CAMPAIGNCTL_NOW": NOW, "CI": "1"},
    )  # fmt: skip


def ok(root: Path, *args: str, stdin: str | None = None) -> str:
    result = run(root, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def ws(demo: Path, backend: str) -> Path:
    for path in (demo / "campaigns").glob("*.yaml"):
        if path.stem != NAME:
            path.unlink()
    ok(demo, "audience", "import")
    ok(demo, "apply", "--auto-approve")
    return demo


def received(key: str, document_type: str, at: str = NOW) -> str:
    return json.dumps({"type": "document_received", "record": key, "at": at,
                       "data": {"document_type": document_type, "document": "T4-2026.pdf"}})  # fmt: skip


def test_a_received_document_enrols_its_record_and_sends_the_notice(ws: Path) -> None:
    lines = [
        received("CAM-002", "releve-taxe-sejour"),
        received("CAM-004", "facture"),  # another document type
        received("RES-001", "releve-taxe-sejour"),  # a restaurant: not a partner type targeted
        received("NOPE-1", "releve-taxe-sejour"),  # no such record
        json.dumps({"type": "space_visited", "record": "CAM-001", "audience": "providers"}),
    ]
    result = run(ws, "events", "ingest", "-", "--json", stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["recorded"] == 4
    assert summary["not_counted"] == [
        {"line": 4, "message": 'unknown: no single record has the key "NOPE-1" (none, or one in '
                              "several audiences: add `audience`)"}
    ]  # fmt: skip

    plan = json.loads(ok(ws, "plan", NAME, "--json"))["campaigns"][0]
    assert plan["automation"] == {"state": "active", "affected": 1, "enrolled": 0,
                                  "trigger": "document_received releve-taxe-sejour"}  # fmt: skip
    tick = run(ws, "scheduler", "tick")
    assert tick.exit_code == 0, tick.output
    assert tick.stderr.strip().endswith(
        "automations: 1 active, 1 enrolled, 1 step(s) run, 0 waiting, 0 failed"
    )
    sent = list((ws / ".campaignctl" / "outbox" / NAME).glob("*.eml"))
    assert len(sent) == 1
    notice = email.message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    assert notice["To"] == "reservation@camping-la-bergerie.example"
    assert notice["Subject"] == "Votre relevé de taxe de séjour est disponible"

    # the same document again: enrolled once, never a second notice
    again = received("CAM-002", "releve-taxe-sejour", "2027-01-05T10:00:01+01:00")
    ok(ws, "events", "ingest", "-", stdin=again + "\n")
    assert (
        run(ws, "scheduler", "tick")
        .stderr.strip()
        .endswith("automations: 1 active, 0 enrolled, 0 step(s) run, 0 waiting, 0 failed")
    )

    # what the partner space shows (campaignctl serve reads this)
    from campaignctl.automation.information import space_campaigns
    from campaignctl.store import Store

    store = Store(os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db",
                  root=ws)  # fmt: skip
    with store.read() as conn:
        record = conn.execute(sa.text("SELECT id FROM record WHERE key = 'CAM-002'")).scalar()
        shown = [c.as_json() for c in space_campaigns(conn, [record], date(2027, 1, 5))]
        later = space_campaigns(conn, [record], date(2028, 1, 5))
    store.close()
    assert shown == [{
        "campaign": NAME,
        "description": "Fiche pratique jointe à chaque relevé de taxe de séjour",
        "dashboard_message": "Nouveau : une fiche pratique pour comprendre votre relevé de "
                             "taxe de séjour.",
        "logo": None,
        "documents": {
            "fiche-pratique": [{"path": "lire-releve-taxe-sejour.pdf", "to_sign": False,
                                "label": "Comment lire votre relevé de taxe de séjour"}],
            "bareme": [{"path": "bareme-taxe-sejour-2027.txt", "to_sign": False,
                        "label": "Barème de la taxe de séjour 2027"}],
        },
    }]  # fmt: skip
    assert later == []  # outside its active window


def test_events_outside_the_active_window_enrol_nobody(ws: Path) -> None:
    spec = ws / "campaigns" / f"{NAME}.yaml"
    spec.write_text(spec.read_text().replace("from: 2027-01-01", "from: 2027-02-01"))
    ok(ws, "apply", "--auto-approve")
    ok(ws, "events", "ingest", "-", stdin=received("CAM-002", "releve-taxe-sejour") + "\n")
    tick = run(ws, "scheduler", "tick")
    assert tick.stderr.strip().endswith("1 active, 0 enrolled, 0 step(s) run, 0 waiting, 0 failed")
