"""A template that is not UTF-8 is a located `encoding` error (exit 65) in every command
that reads templates, never an exit-70 UnicodeDecodeError (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

CAMPAIGN = "appel-cotisation-2027"
DIAGNOSTIC = [
    "templates/appel-cotisation.txt.j2:3:19: error[encoding]: the file is not UTF-8 text: "
    "byte 0xe9 (invalid continuation byte)",
    '  hint: re-save the file as UTF-8 (the editor\'s "save with encoding", or `iconv -f latin1 '
    "-t utf-8 templates/appel-cotisation.txt.j2 > templates/appel-cotisation.txt.j2.new` then "
    "rename it)",
]


def run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@pytest.fixture
def latin1(demo: Path) -> Path:
    """The demo with one template saved in Latin-1 (an "é" on line 3, after "café")."""
    path = demo / "templates" / "appel-cotisation.txt.j2"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "Merci de votre fidélité, café offert. {{ record.name }}\n"
    path.write_bytes("".join(lines).encode("latin-1"))
    return demo


def test_validate_names_the_template_line_and_column_that_is_not_utf8(latin1: Path) -> None:
    result = run(latin1, "validate")

    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines() == DIAGNOSTIC
    assert result.stderr.endswith(": 1 error(s), 0 warning(s).\n")


@pytest.mark.parametrize(
    "command",
    [("plan",), ("lock", CAMPAIGN), ("send", CAMPAIGN, "--now"), ("preview", CAMPAIGN)],
    ids=" ".join,
)
def test_commands_refuse_a_template_that_is_not_utf8_with_its_location(
    latin1: Path, command: tuple[str, ...]
) -> None:
    result = run(latin1, *command)

    assert result.exit_code == 65, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        *DIAGNOSTIC,
        "error: 1 error(s) in the workspace definitions",
    ]


def test_an_included_layout_that_is_not_utf8_is_reported_at_the_layout(demo: Path) -> None:
    layout = demo / "templates" / "layouts" / "base.txt.j2"
    layout.write_bytes(layout.read_bytes() + "\n-- Réseau des partenaires\n".encode("cp1252"))

    result = run(demo, "validate")

    assert result.exit_code == 65, result.output
    lines = layout.read_bytes().split(b"\n")
    assert result.stdout.splitlines()[0] == (
        f"templates/layouts/base.txt.j2:{len(lines) - 1}:5: error[encoding]: the file is not "
        "UTF-8 text: byte 0xe9 (invalid continuation byte)"
    )
