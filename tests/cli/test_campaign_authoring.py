"""`campaign clone` and `campaign new --from TEMPLATE`, through the CLI, on real workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.scaffold.authoring import list_templates

NOW = "2026-12-06T10:00:00+01:00"
TEMPLATES = [
    "crm-appeal",
    "information-documents",
    "membership-renewal",
    "newsletter-monthly",
    "record-update",
    "welcome-automation",
]


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def test_clone_keeps_comments_and_order_renames_drafts_and_moves_past_dates(demo: Path) -> None:
    source = (demo / "campaigns" / "rappel-renouvellement.yaml").read_text(encoding="utf-8")

    result = run(demo, "campaign", "clone", "rappel-renouvellement", "rappel-2027")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "wrote campaigns/rappel-2027.yaml (draft, from rappel-renouvellement)\n"
        "  schedule.send_at was past: moved to 2026-12-07T09:00\n"
        "  schedule.recurrence.until was past: moved to 2027-07-05\n"
    )
    written = (demo / "campaigns" / "rappel-2027.yaml").read_text(encoding="utf-8")
    expected = (
        source.replace("name: rappel-renouvellement", "name: rappel-2027\ndraft: true")
        .replace(
            "kind: Campaign",
            "# Cloned from rappel-renouvellement (campaigns/rappel-renouvellement.yaml) on "
            "2026-12-06.\nkind: Campaign",
        )
        .replace("send_at: 2026-11-30T09:00 ", "send_at: 2026-12-07T09:00 ")
        .replace("until: 2027-06-28}", "until: 2027-07-05}")
    )
    assert written == expected  # every comment and key where it was
    assert run(demo, "validate").exit_code == 0


def test_a_clone_validates_at_once_and_plan_shows_it_new(demo: Path) -> None:
    assert run(demo, "campaign", "clone", "mise-a-jour-2027", "mise-a-jour-2028").exit_code == 0

    plan = run(demo, "plan", "--json", "mise-a-jour-2028")
    assert plan.exit_code == 0, plan.output
    (campaign,) = json.loads(plan.stdout)["campaigns"]
    assert (campaign["name"], campaign["draft"]) == ("mise-a-jour-2028", True)
    assert "+ mise-a-jour-2028" in run(demo, "plan", "mise-a-jour-2028").stdout


def test_a_future_send_at_is_kept_and_json_says_what_was_written(demo: Path) -> None:
    result = run(demo, "campaign", "clone", "appel-cotisation-2027", "appel-2028", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "format_version": 1,
        "draft": True,
        "name": "appel-2028",
        "path": "campaigns/appel-2028.yaml",
        "source": "appel-cotisation-2027",
        "companions": [],
        "moved_dates": {},
        "warnings": [],
    }
    assert "send_at: 2027-01-11T09:30\n" in (demo / "campaigns/appel-2028.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("mise-a-jour-2072", "x"),
            "error: campaign 'mise-a-jour-2072' does not exist\n  hint: did you mean 'mise-a-jour-2027'?\n",
        ),
        (
            ("medias-2027", "appel-cotisation-2027"),
            "error: campaign 'appel-cotisation-2027' already exists "
            "(campaigns/appel-cotisation-2027.yaml)\n  hint: choose another name\n",
        ),
        (
            ("medias-2027", "Médias 2028"),
            "error: 'Médias 2028' is not a valid campaign name\n"
            "  hint: use lower-case letters, digits and dashes, e.g. update-2028\n",
        ),
    ],
)
def test_clone_refuses_a_bad_source_or_name_with_exit_64(
    demo: Path, args: tuple[str, str], message: str
) -> None:
    result = run(demo, "campaign", "clone", *args)

    assert (result.exit_code, result.stderr) == (64, message)
    assert sorted(p.name for p in (demo / "campaigns").iterdir()) == sorted(
        p.name for p in (Path(__file__).parents[2] / "campaigns").iterdir()
    )


def test_the_bundled_templates_are_the_ones_listed() -> None:
    assert [t.name for t in list_templates()] == TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("workspace", ["demo", "scaffold"])
def test_each_template_starts_a_draft_campaign_that_validates(
    template: str, workspace: str, request: pytest.FixtureRequest
) -> None:
    root: Path = request.getfixturevalue(workspace)

    result = run(root, "campaign", "new", "nouvelle", "--from", template, "--json")

    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert (written["path"], written["source"]) == (
        "campaigns/nouvelle.yaml",
        f"template:{template}",
    )
    text = (root / "campaigns" / "nouvelle.yaml").read_text(encoding="utf-8")
    assert "draft: true" in text and "__" not in text
    for companion in written["companions"]:
        assert "__" not in (root / companion).read_text(encoding="utf-8")
    validated = run(root, "validate", "--format", "json")
    assert validated.exit_code == 0, validated.output
    plan = run(root, "plan", "--json", "nouvelle")
    assert plan.exit_code == 0, plan.output


def test_new_targets_the_segments_given(demo: Path) -> None:
    result = run(
        demo, "campaign", "new", "appel-2028", "--from", "crm-appeal",
        "--segment", "lapsed-members", "--segment", "members-new",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    text = (demo / "campaigns" / "appel-2028.yaml").read_text(encoding="utf-8")
    assert "  segments: [lapsed-members, members-new]" in text
    assert "system: crm-adherents" in text


def test_new_list_shows_every_template(demo: Path) -> None:
    result = run(demo, "campaign", "new", "--list", "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [t["name"] for t in listed["templates"]] == TEMPLATES
    assert all(t["summary"] for t in listed["templates"])


def test_new_names_an_unknown_template_and_the_list(demo: Path) -> None:
    result = run(demo, "campaign", "new", "x", "--from", "crm-apeal")

    assert (result.exit_code, result.stderr) == (
        64,
        "error: there is no campaign template 'crm-apeal'\n"
        "  hint: did you mean 'crm-appeal'? `campaignctl campaign new --list` shows them\n",
    )
    assert not (demo / "campaigns" / "x.yaml").exists()


def test_new_reports_a_template_that_cannot_validate_here_located(scaffold: Path) -> None:
    config = scaffold / "campaignctl.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text[: text.index("systems:")], encoding="utf-8")

    result = run(scaffold, "campaign", "new", "appel", "--from", "crm-appeal")

    assert result.exit_code == 65
    assert "campaigns/appel.yaml:" in result.stderr
    assert "export system 'SYSTEM'" in result.stderr or "'SYSTEM'" in result.stderr
    assert "was written but does not validate yet" in result.stderr
