"""The repository's own demo workspace stays valid, reproducible and editor-checkable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from campaignctl.cli.main import app

REPO = Path(__file__).resolve().parent.parent
SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")
EXPECTED_COUNTS = {"Audience": 1, "Segment": 11, "Questionnaire": 2, "Campaign": 8, "List": 5}


def demo_yaml_files(root: Path) -> list[Path]:
    files = [root / "campaignctl.yaml"]
    for folder in ("audiences", "questionnaires", "campaigns"):
        files.extend(sorted((root / folder).rglob("*.yaml")))
    return files


# before the demo's first send_at (2027-01-11): a send_at in the past is a warning
BEFORE_THE_DEMO_SENDS = "2026-12-07T10:00:00+01:00"


def test_demo_validates_strictly_with_no_error_and_no_warning(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", BEFORE_THE_DEMO_SENDS)
    result = CliRunner().invoke(app, ["--workspace", str(demo), "validate", "--strict"])

    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert summary == (
        "Checked 28 file(s) (1 Audience, 11 Segments, 2 Questionnaires, 8 Campaigns, 5 Lists; "
        "24 template(s)): 0 error(s), 0 warning(s)."
    )


def test_demo_validate_json_reports_every_document(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", BEFORE_THE_DEMO_SENDS)
    result = CliRunner().invoke(
        app, ["--workspace", str(demo), "validate", "--strict", "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["documents"] == EXPECTED_COUNTS
    assert (report["errors"], report["warnings"], report["diagnostics"]) == (0, 0, [])


def test_demo_contacts_csv_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "contacts.csv"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_demo_contacts.py"), "--out", str(out)],
        check=True,
    )

    assert out.read_bytes() == (REPO / "audiences" / "contacts.csv").read_bytes()


def test_demo_documents_are_what_the_generator_writes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_demo_documents.py"), "--out", str(tmp_path)],
        check=True,
    )

    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == ["charte-qualite-2027.pdf", "lire-releve-taxe-sejour.pdf", "logo.png"]
    for name in generated:
        assert (tmp_path / name).read_bytes() == (REPO / "documents" / name).read_bytes(), name


def test_demo_contacts_header_matches_the_audience_columns() -> None:
    audience = yaml.safe_load((REPO / "audiences" / "providers.audience.yaml").read_text("utf-8"))
    header = (REPO / "audiences" / "contacts.csv").read_text("utf-8").splitlines()[0].split(";")
    expected = [spec.get("header", name) for name, spec in audience["columns"].items()]
    if audience["key"] not in audience["columns"]:
        expected.append(audience["key"])  # a text column without being listed

    assert sorted(header) == sorted(expected)


def schema_kind(path: Path) -> str:
    if path.name == "campaignctl.yaml":
        return "config"
    return yaml.safe_load(path.read_text("utf-8"))["kind"].lower()


@pytest.mark.parametrize(
    "path", demo_yaml_files(REPO), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_demo_yaml_names_the_schema_of_its_kind_on_line_one(path: Path) -> None:
    match = SCHEMA_LINE.match(path.read_text("utf-8").splitlines()[0])

    assert match, f"{path.name}: line 1 is not a `# yaml-language-server: $schema=` comment"
    schema = (path.parent / match["path"]).resolve()
    assert schema == REPO / "schemas" / f"{schema_kind(path)}.schema.json"


@pytest.mark.parametrize("kind", ["config", "audience", "segment", "questionnaire", "campaign"])
def test_demo_yaml_passes_check_jsonschema_against_the_committed_schema(kind: str) -> None:
    files = [p for p in demo_yaml_files(REPO) if schema_kind(p) == kind]
    schema = REPO / "schemas" / f"{kind}.schema.json"

    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
    )

    assert files
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_schemas_are_what_campaignctl_schema_writes(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schema", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    committed = sorted(p.name for p in (REPO / "schemas").iterdir())
    assert committed == sorted(p.name for p in tmp_path.iterdir())
    for name in committed:
        assert (tmp_path / name).read_text("utf-8") == (REPO / "schemas" / name).read_text(
            "utf-8"
        ), f"schemas/{name} is stale: run `campaignctl schema --out schemas`"


def test_demo_exercises_the_features_of_every_seed() -> None:
    """Guard against a demo edit that silently drops a scenario the other tests rely on."""
    from campaignctl.spec.workspace import load_workspace

    ws = load_workspace(REPO)
    config = ws.config
    assert config is not None
    campaigns = ws.campaigns

    update = campaigns["mise-a-jour-2027"]  # seed 000
    assert update.options.group_by_email and update.options.prefill
    assert update.options.periods_mode == "next_year" and update.options.internal_criteria
    assert [r.to for r in update.schedule.relaunch] == ["non_responders", "non_openers"]
    assert any(f.only_for for f in ws.questionnaires["fiche-prestataire"].fields)

    appeal = campaigns["appel-cotisation-2027"]  # seed 001
    assert {e.system for e in appeal.exports} == set(config.systems)
    assert {s.type for s in config.systems.values()} == {"csv", "webhook"}

    reminder = campaigns["rappel-renouvellement"]  # seed 002
    assert reminder.channels == ["email", "sms"] and reminder.schedule.recurrence
    assert reminder.audience.exclude_campaigns and config.categories["marketing"].unsubscribe

    information = [c for c in campaigns.values() if c.type == "information"]  # seed 003
    assert {c.trigger.event for c in information} == {"space_visited", "document_received"}
    assert any(d.to_sign for c in information for d in c.documents)

    automations = [c for c in campaigns.values() if c.steps]  # seed 004
    assert {c.trigger.event for c in automations} == {"list_added", "form_submitted"}
    assert any(c.draft for c in campaigns.values())
    assert all(c.tags for c in campaigns.values())
    assert any("do-not-disturb" in c.audience.exclude_segments for c in campaigns.values())
