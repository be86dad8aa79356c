"""Hostile input: whatever a definition, an argument or the environment holds, the answer is a
located error with the documented exit code, never exit 70 ("a bug") and never a hang."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from campaignctl.cli.main import app

runner = CliRunner()


def run(root: Path, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["--workspace", str(root), *args], env=env)


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def body(result) -> list[str]:
    """The diagnostic lines of `validate`, without hints."""
    return [line for line in result.stdout.splitlines() if not line.startswith("  hint:")]


# ------------------------------------------------------------------ YAML nesting


def test_yaml_nested_400_deep_is_a_located_error(scaffold: Path) -> None:
    (scaffold / "audiences" / "segments" / "deep.yaml").write_text(
        "kind: Segment\nname: deep\nx: " + "[" * 400 + "]" * 400 + "\n", encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "audiences/segments/deep.yaml:3:68: error[yaml-syntax]: values are nested more than "
        "64 levels deep"
    ]
    assert "Traceback" not in result.output


def test_block_style_nesting_is_refused_the_same_way(scaffold: Path) -> None:
    deep = "".join("  " * i + "-\n" for i in range(80)) + "  " * 80 + "- x\n"
    (scaffold / "campaigns" / "deep.yaml").write_text(
        "kind: Campaign\nname: deep\nsteps:\n" + deep, encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "campaigns/deep.yaml:68:129: error[yaml-syntax]: values are nested more than 64 levels deep"
    ]
