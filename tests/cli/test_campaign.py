"""`campaign archive` through the CLI, on the demo workspace and a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import open_store

NOW = "2027-01-05T08:00:00+01:00"


@pytest.fixture
def ws(demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Path:
    """The demo, imported and applied, on SQLite and on PostgreSQL (`backend`)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.setenv("CI", "1")
    for args in (("audience", "import"), ("apply", "--auto-approve")):
        result = run(demo, *args)
        assert result.exit_code == 0, result.output
    return demo


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def store(root: Path) -> sa.Engine:
    """The engine of the store the commands use (CAMPAIGNCTL_STORE, else the SQLite file)."""
    return open_store(root).engine


def plan_json(root: Path, *names: str) -> dict:
    result = run(root, "plan", "--json", *names)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_archive_retires_a_campaign_that_plan_and_the_scheduler_then_skip(ws: Path) -> None:
    assert run(ws, "lock", "mise-a-jour-2027").exit_code == 0
    before = plan_json(ws, "medias-2027")["campaigns"][0]["not_contacted"]
    assert {"reason": "other_campaign", "records": 62, "detail": "mise-a-jour-2027"} in before
    upcoming = json.loads(run(ws, "scheduler", "status", "--json", "--days", "90").stdout)
    assert "mise-a-jour-2027" in {w["campaign"] for w in upcoming["next"]}
    sending = {c["name"] for c in plan_json(ws)["campaigns"] if c["reached"] and not c["draft"]}
    assert "mise-a-jour-2027" in sending

    result = run(ws, "campaign", "archive", "mise-a-jour-2027")
    assert result.exit_code == 0, result.output
    assert result.stdout == "mise-a-jour-2027: archived (was scheduled)\n"
    with store(ws).connect() as conn:
        state = conn.execute(
            sa.text("SELECT state, archived_at IS NOT NULL FROM campaign WHERE name = :n"),
            {"n": "mise-a-jour-2027"},
        ).one()
        audit = conn.execute(
            sa.text("SELECT object, data FROM audit_log WHERE action = 'archive'")
        ).all()
    assert tuple(state) == ("archived", 1)
    assert [(o, d if isinstance(d, dict) else json.loads(d)) for o, d in audit] == [
        ("mise-a-jour-2027", {"previous_state": "scheduled", "force": False, "waves_sending": 0})
    ]

    # no longer an active campaign: its lock solicits nobody any more
    after = plan_json(ws, "medias-2027")["campaigns"][0]["not_contacted"]
    assert "other_campaign" not in {r["reason"] for r in after}
    # plan skips it (no targeting, no schedule) and no longer counts it as sending
    text = run(ws, "plan", "mise-a-jour-2027").stdout
    assert (
        "  mise-a-jour-2027 (questionnaire, administrative; archived)\n"
        "    archived: not targeted or scheduled (`campaign archive` retired it)\n\n"
        "No changes. Campaigns are up to date.\n"
    ) in text
    archived = plan_json(ws, "mise-a-jour-2027")["campaigns"][0]
    assert (archived["targeted"], archived["matrix"], archived["schedule"]) == (0, [], [])
    whole = plan_json(ws)
    sending = {c["name"] for c in whole["campaigns"] if c["messages"] and not c["draft"]}
    assert "mise-a-jour-2027" not in sending
    assert whole["summary"]["to_send"] == len(sending)
    upcoming = json.loads(run(ws, "scheduler", "status", "--json", "--days", "90").stdout)
    assert "mise-a-jour-2027" not in {w["campaign"] for w in upcoming["next"]}

    again = run(ws, "campaign", "archive", "mise-a-jour-2027")
    assert (again.exit_code, again.stdout) == (0, "mise-a-jour-2027: already archived\n")


def test_archive_is_refused_while_a_wave_is_sending_unless_forced(ws: Path) -> None:
    with store(ws).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, created_at) "
                "SELECT id, 1, 'initial', 'x/0/0', 'sending', '2027-01-04' FROM campaign "
                "WHERE name = 'medias-2027'"
            )
        )
    refused = run(ws, "campaign", "archive", "medias-2027")
    assert refused.exit_code == 65
    assert refused.output == (
        "error: campaign 'medias-2027' has a wave in progress (wave 1 is sending): archiving it "
        "now would leave that wave half sent\n"
        "  hint: let `campaignctl send medias-2027` finish, or archive anyway with "
        "`campaignctl campaign archive medias-2027 --force`\n"
    )
    with store(ws).connect() as conn:
        state = conn.execute(sa.text("SELECT state FROM campaign WHERE name = 'medias-2027'"))
        assert state.scalar_one() == "scheduled"
    forced = run(ws, "campaign", "archive", "medias-2027", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    document = json.loads(forced.stdout)
    assert (document["previous_state"], document["waves_in_progress"]) == ("scheduled", 1)
    assert document["archived_at"] == "2027-01-05T07:00:00+00:00"


def test_archive_of_an_unknown_campaign_is_the_usage_error_every_command_gives(ws: Path) -> None:
    result = run(ws, "campaign", "archive", "medias-2072")
    assert result.exit_code == 64
    assert result.output == (
        "error: campaign 'medias-2072' does not exist\n  hint: did you mean 'medias-2027'?\n"
    )


def test_apply_points_a_removed_campaign_file_at_campaign_archive(ws: Path) -> None:
    (ws / "campaigns" / "medias-2027.yaml").unlink()
    applied = run(ws, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert (
        "medias-2027: applied but its file is gone; "
        "`campaignctl campaign archive medias-2027` retires it\n"
    ) in applied.stderr
    planned = run(ws, "plan").stdout
    assert "- medias-2027 (questionnaire, administrative; scheduled)\n" in planned
    assert run(ws, "campaign", "archive", "medias-2027").exit_code == 0
    assert "medias-2027" not in run(ws, "apply", "--auto-approve").output
    assert "medias-2027" not in run(ws, "plan").stdout


def test_an_archived_campaign_is_never_sent(ws: Path) -> None:
    assert run(ws, "campaign", "archive", "mise-a-jour-2027").exit_code == 0
    result = run(ws, "send", "mise-a-jour-2027", "--now")
    assert result.exit_code == 65
    assert result.stderr.startswith(
        "error: campaign 'mise-a-jour-2027' is archived: it sends nothing more\n"
    )
    assert not (ws / ".campaignctl" / "outbox" / "mise-a-jour-2027").exists()
