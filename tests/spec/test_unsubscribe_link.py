"""`validate`: a template of a category that allows unsubscribing shows `links.unsubscribe`
in its HTML and text parts (the 2024 Gmail/Yahoo rules ask for it beside the header)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2026-12-07T10:00:00+01:00"


def validate(root: Path):
    return CliRunner().invoke(app, ["--workspace", str(root), "validate"])


def test_the_demo_shows_its_unsubscribe_links(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    result = validate(demo)
    assert result.exit_code == 0, result.output


def test_a_marketing_layout_that_only_tests_the_link_is_an_error_per_part(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    for name in ("base.html.j2", "base.txt.j2"):
        layout = demo / "templates" / "layouts" / name
        text = layout.read_text(encoding="utf-8")
        # tested but never printed: the link is not visible
        layout.write_text(text.replace("{{ links.unsubscribe }}", "#"), encoding="utf-8")
    result = validate(demo)
    assert result.exit_code == 65, result.output
    lines = [line for line in result.output.splitlines() if "missing-unsubscribe" in line]
    assert lines == [
        "templates/rappel-renouvellement.html.j2:1:1: error[missing-unsubscribe]: campaign "
        "'rappel-renouvellement' (category 'marketing', which allows unsubscribing) sends this "
        "HTML part without a visible unsubscribe link",
        "templates/rappel-renouvellement.txt.j2:1:1: error[missing-unsubscribe]: campaign "
        "'rappel-renouvellement' (category 'marketing', which allows unsubscribing) sends this "
        "text part without a visible unsubscribe link",
    ]
    assert (
        '  hint: add <a href="{{ links.unsubscribe }}">Se désinscrire</a> to it or to the layout '
        "it extends"
    ) in result.output
