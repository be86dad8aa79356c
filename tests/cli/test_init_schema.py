"""`campaignctl init` and `campaignctl schema`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.spec.schema import schema_names

runner = CliRunner()
KIND_OF_FOLDER = {"campaigns": "campaign", "questionnaires": "questionnaire"}


def test_init_writes_a_workspace_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before the example's first send_at (2027-03-01): past it, validate warns
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-12-07T10:00:00+01:00")
    target = tmp_path / "new"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert f"Workspace ready in {target}." in result.stderr
    assert (target / ".gitignore").read_text() == (
        "# local state of campaignctl: store, outbox captures, logs\n.campaignctl/\n"
    )
    for name in schema_names():
        assert (target / "schemas" / f"{name}.schema.json").is_file()
    yaml_files = [*target.glob("*.yaml"), *target.glob("*/**/*.yaml")]
    assert len(yaml_files) == 8
    for path in yaml_files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        schema = (path.parent / first.split("$schema=")[1]).resolve()
        assert schema.is_file(), f"{path}: {first}"
    checked = runner.invoke(app, ["--workspace", str(target), "validate", "--strict"])
    assert checked.exit_code == 0, checked.output


def test_init_refuses_to_overwrite_without_force(scaffold: Path) -> None:
    (scaffold / "campaignctl.yaml").write_text("# mine\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(scaffold)])
    assert result.exit_code == 64
    assert result.stderr.startswith(
        f"error: {scaffold} already has 17 of the files init would write"
    )
    assert "hint: choose an empty directory, or pass --force to overwrite them" in result.stderr
    assert (scaffold / "campaignctl.yaml").read_text() == "# mine\n"
    forced = runner.invoke(app, ["init", str(scaffold), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (scaffold / "campaignctl.yaml").read_text().startswith("# yaml-language-server")


def test_schema_prints_one_kind(scaffold: Path) -> None:
    result = runner.invoke(app, ["schema", "Campaign"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["title"] == "Campaign"
    assert schema["additionalProperties"] is False
    assert schema["properties"]["kind"] == {"const": "Campaign", "title": "Kind", "type": "string"}


def test_schema_prints_all_kinds_and_refuses_unknown_ones() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert sorted(json.loads(result.stdout)["schemas"]) == sorted(schema_names())
    bad = runner.invoke(app, ["schema", "campain"])
    assert bad.exit_code == 64
    assert "error: unknown kind 'campain'" in bad.stderr


def test_schema_out_writes_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(
        f"{n}.schema.json" for n in schema_names()
    )


def test_scaffold_files_pass_check_jsonschema(scaffold: Path) -> None:
    """The schemas editors use accept what the loader accepts."""
    tool = Path(sys.executable).with_name("check-jsonschema")
    groups: dict[str, list[Path]] = {"config": [scaffold / "campaignctl.yaml"]}
    groups["audience"] = [scaffold / "audiences" / "providers.audience.yaml"]
    groups["segment"] = sorted((scaffold / "audiences" / "segments").glob("*.yaml"))
    for folder, kind in KIND_OF_FOLDER.items():
        groups[kind] = sorted((scaffold / folder).glob("*.yaml"))
    for kind, files in groups.items():
        schema = scaffold / "schemas" / f"{kind}.schema.json"
        proc = subprocess.run(
            [str(tool), "--schemafile", str(schema), *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_rejects_what_the_loader_rejects(scaffold: Path) -> None:
    tool = Path(sys.executable).with_name("check-jsonschema")  # a dev dependency
    path = scaffold / "campaigns" / "renewal-reminder.yaml"
    path.write_text(path.read_text().replace("type: message", "type: mesage"), encoding="utf-8")
    proc = subprocess.run(
        [str(tool), "--schemafile", str(scaffold / "schemas" / "campaign.schema.json"), str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout
