"""`campaignctl list add/remove/show` on the demo workspace, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2027-01-05T08:00:00+01:00"


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@pytest.fixture
def ws(demo: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.setenv("CI", "1")
    result = run(demo, "audience", "import")
    assert result.exit_code == 0, result.output
    return demo


def test_list_add_remove_show_count_every_key(ws: Path) -> None:
    result = run(ws, "list", "add", "a-appeler", "HOT-001", "HOT-002", "NOPE-9")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "a-appeler: 2 added, 0 already members, 1 unknown key(s) in audience providers: NOPE-9\n"
    )
    again = run(ws, "list", "add", "a-appeler", "HOT-001", "--json")
    assert json.loads(again.stdout) == {
        "format_version": 1, "list": "a-appeler", "audience": "providers", "action": "add",
        "changed": 0, "unchanged": 1, "unknown_keys": [],
    }  # fmt: skip
    removed = run(ws, "list", "remove", "a-appeler", "HOT-002", "HOT-003")
    assert removed.stdout == "a-appeler: 1 removed, 1 not members\n"

    shown = json.loads(run(ws, "list", "show", "a-appeler", "--json").stdout)
    assert (shown["count"], shown["removed"], shown["audience"]) == (1, 1, "providers")
    assert shown["members"] == [
        {"key": "HOT-001", "added_at": "2027-01-05T07:00:00+00:00", "source": "command"}
    ]
    text = run(ws, "list", "show", "a-appeler").stdout
    assert text == (
        "a-appeler (audience providers) — Adhérents à appeler par le service adhésions\n"
        "1 member(s), 1 removed\n  HOT-001  added 2027-01-05T07:00:00+00:00  by command\n"
    )
    # a removed member added back is a member again
    back = run(ws, "list", "add", "a-appeler", "HOT-002")
    assert back.stdout.startswith("a-appeler: 1 added")


def test_list_commands_name_an_unknown_list_and_missing_keys(ws: Path) -> None:
    result = run(ws, "list", "add", "a-apeler", "HOT-001")
    assert result.exit_code == 64
    assert "list 'a-apeler' is not defined" in result.output
    assert "did you mean 'a-appeler'?" in result.output
    empty = run(ws, "list", "add", "a-appeler")
    assert empty.exit_code == 64
    assert "give the keys of the records to add to 'a-appeler'" in empty.output


def test_validate_names_unknown_lists_and_send_steps(demo: Path) -> None:
    spec = demo / "campaigns" / "bienvenue-adherents.yaml"
    text = spec.read_text()
    text = text.replace("add_to_list: a-appeler", "add_to_list: a-apeler")
    text = text.replace("if: {opened: {eq: true}}", "if: {opened: Email de bienvenu}")
    spec.write_text(text)
    result = run(demo, "validate")
    assert result.exit_code == 65
    lines = result.stdout.splitlines()
    assert any(
        ": error[unknown-reference]: list 'a-apeler' does not exist" in line for line in lines
    ), result.stdout
    assert any(
        "error[unknown-reference]: opened: 'Email de bienvenu' is not a send step of this "
        "campaign" in line
        for line in lines
    ), result.stdout
