"""A CAMPAIGN argument naming nothing is a usage error (64) in every command that takes one;
a campaign defined in the workspace but never applied is the state error (65) `send` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import import_audience

COMMANDS = [
    ["send"],
    ["send", "--dry-run"],
    ["send", "--test-to", "test@example.org"],
    ["report"],
    ["preview"],
    ["plan"],
    ["lock"],
    ["lock", "--refresh"],
    ["unlock"],
    ["relaunch", "--dry-run"],
    ["apply", "--auto-approve"],
]


def _run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@pytest.fixture
def imported(demo: Path) -> Path:
    import_audience(demo)
    return demo


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unknown_campaign_is_the_same_usage_error_with_did_you_mean_everywhere(
    imported: Path, command: list[str]
) -> None:
    result = _run(imported, command[0], "mise-a-jour-2072", *command[1:])

    assert result.exit_code == 64, result.output
    assert result.stderr == (
        "error: campaign 'mise-a-jour-2072' does not exist\n"
        "  hint: did you mean 'mise-a-jour-2027'?\n"
    )


@pytest.mark.parametrize("command", ["send", "report", "lock", "unlock", "relaunch"])
def test_a_campaign_never_applied_is_a_state_error(imported: Path, command: str) -> None:
    result = _run(imported, command, "mise-a-jour-2027")

    assert result.exit_code == 65, result.output
    assert result.stderr.startswith(
        "error: campaign 'mise-a-jour-2027' is not applied: the store does not know it yet\n"
    )
