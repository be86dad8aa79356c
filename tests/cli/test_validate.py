"""`campaignctl validate`: every error class, located at the exact file:line:col, in one pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

runner = CliRunner()


def validate(root: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(root), "validate", *args])


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_init_then_validate_is_clean(scaffold: Path) -> None:
    result = validate(scaffold)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "Checked 8 file(s) (1 Audience, 2 Segments, 1 Questionnaire, 3 Campaigns; "
        "6 template(s)): 0 error(s), 0 warning(s).\n"
    )


# Each case breaks one thing in a fresh scaffold: (file, old text, new text, expected line).
CASES = {
    "yaml-syntax": (
        "campaigns/renewal-reminder.yaml",
        "type: message",
        "type: [message",
        "campaigns/renewal-reminder.yaml:7:9: error[yaml-syntax]: invalid YAML: did not find expected "
        "',' or ']' (while parsing a flow sequence)",
    ),
    "unknown-key": (
        "campaigns/update-2027.yaml",
        "  group_by_email: true",
        "  group_by_emial: true",
        "campaigns/update-2027.yaml:21:3: error[unknown-key]: unknown key 'group_by_emial' in options",
    ),
    "bad-duration": (
        "campaigns/update-2027.yaml",
        "after: 7d",
        "after: 7x",
        "campaigns/update-2027.yaml:28:15: error[invalid-value]: schedule.relaunch[0].after: invalid "
        "duration '7x': write a whole number followed by a unit s, m, h, d or w "
        "(e.g. 30s, 5m, 6h, 7d, 2w, or 1d12h)",
    ),
    "bad-timezone": (
        "campaignctl.yaml",
        "timezone: Europe/Paris",
        "timezone: Europe/Pariss",
        "campaignctl.yaml:4:11: error[invalid-value]: timezone: unknown time zone 'Europe/Pariss'; "
        "did you mean 'Europe/Paris'? Use an IANA name such as 'Europe/Paris'",
    ),
    "bad-relative-date": (
        "audiences/segments/renewing-soon.yaml",
        "today+15d",
        "today+1q",
        "audiences/segments/renewing-soon.yaml:9:39: error[invalid-value]: invalid date 'today+1q': "
        "write an ISO date (2027-03-01) or a relative date: a base (today, start_of_week, "
        "start_of_month, start_of_year, end_of_week, end_of_month, end_of_year) and/or offsets "
        "such as +15d, -2w, +1m, +1y (units d, w, m, y), e.g. today+15d or start_of_month",
    ),
    "bad-sender-email": (
        "campaignctl.yaml",
        '"Office de tourisme <contact@example.org>"',
        '"Office <contact@@example>"',
        "campaignctl.yaml:12:11: error[invalid-value]: senders.default.from: invalid sender "
        "'Office <contact@@example>': write 'Name <address@example.org>' or a bare address",
    ),
    "missing-field": (
        "campaigns/renewal-reminder.yaml",
        "category: administrative\n",
        "",
        "campaigns/renewal-reminder.yaml:3:1: error[missing-field]: missing required key 'category'",
    ),
    "duplicate-name": (
        "campaigns/charter-2027.yaml",
        "name: charter-2027",
        "name: update-2027",
        "campaigns/update-2027.yaml:4:7: error[duplicate-name]: Campaign 'update-2027' is already "
        "defined in campaigns/charter-2027.yaml:4",
    ),
    "duplicate-key": (
        "campaigns/renewal-reminder.yaml",
        "type: message\n",
        "type: message\ntype: message\n",
        "campaigns/renewal-reminder.yaml:7:1: error[duplicate-key]: key 'type' appears twice in "
        "the same mapping (first at line 6)",
    ),
    "unknown-segment": (
        "campaigns/update-2027.yaml",
        "segments: [accommodation]",
        "segments: [accomodation]",
        "campaigns/update-2027.yaml:9:14: error[unknown-reference]: segment 'accomodation' does not exist",
    ),
    "unknown-audience": (
        "audiences/segments/accommodation.yaml",
        "audience: providers",
        "audience: provider",
        "audiences/segments/accommodation.yaml:5:11: error[unknown-reference]: audience 'provider' "
        "does not exist",
    ),
    "unknown-questionnaire": (
        "campaigns/update-2027.yaml",
        "ref: accommodation-update",
        "ref: accommodation",
        "campaigns/update-2027.yaml:12:8: error[unknown-reference]: questionnaire 'accommodation' "
        "does not exist",
    ),
    "unknown-template": (
        "campaigns/renewal-reminder.yaml",
        "template: renewal",
        "template: renewall",
        "campaigns/renewal-reminder.yaml:12:13: error[missing-file]: template 'renewall' has no "
        "email part: templates/renewall.html.j2 or templates/renewall.txt.j2 not found",
    ),
    "unknown-sender": (
        "campaigns/update-2027.yaml",
        "sender: default",
        "sender: defaut",
        "campaigns/update-2027.yaml:14:11: error[unknown-reference]: sender 'defaut' does not exist",
    ),
    "unknown-category": (
        "campaigns/renewal-reminder.yaml",
        "category: administrative",
        "category: admin",
        "campaigns/renewal-reminder.yaml:5:11: error[unknown-reference]: category 'admin' does not exist",
    ),
    "unknown-excluded-campaign": (
        "campaigns/renewal-reminder.yaml",
        "  segments: [renewing-soon]",
        "  segments: [renewing-soon]\n  exclude_campaigns: [update-2026]",
        "campaigns/renewal-reminder.yaml:9:23: error[unknown-reference]: campaign 'update-2026' "
        "does not exist",
    ),
    "unknown-document": (
        "campaigns/charter-2027.yaml",
        "path: charte-qualite.txt",
        "path: charte.pdf",
        "campaigns/charter-2027.yaml:11:12: error[missing-file]: document 'charte.pdf' not found "
        "under documents/",
    ),
    "unknown-column": (
        "audiences/segments/accommodation.yaml",
        "tags: {contains",
        "tag: {contains",
        "audiences/segments/accommodation.yaml:9:7: error[unknown-reference]: attribute 'tag' is "
        "not a column of audience 'providers'",
    ),
    "relaunch-before-send": (
        "campaigns/update-2027.yaml",
        "after: 7d",
        "after: -2d",
        "campaigns/update-2027.yaml:28:15: error[schedule]: relaunch 1 comes before the send it follows",
    ),
    "until-before-send": (
        "campaigns/renewal-reminder.yaml",
        "until: 2027-12-31",
        "until: 2026-12-31",
        "campaigns/renewal-reminder.yaml:15:36: error[schedule]: recurrence ends (2026-12-31) before "
        "the first send (2027-01-04)",
    ),
    "sms-without-template": (
        "campaigns/renewal-reminder.yaml",
        "channels: [email]",
        "channels: [email, sms]",
        "campaigns/renewal-reminder.yaml:12:13: error[missing-file]: template 'renewal' has no SMS "
        "part: templates/renewal.sms.j2 not found",
    ),
    "channel-without-sender": (
        "campaignctl.yaml",
        "    transport: file                         # file writes",
        "    transport: smtp                         # file writes",
        "campaignctl.yaml:14:16: error[channel]: sender 'default' uses transport smtp but has no "
        "`smtp:` settings",
    ),
    "segment-cycle": (
        "audiences/segments/accommodation.yaml",
        "    - tags: {contains: adherent}",
        "    - tags: {contains: adherent}\n    - segment: renewing-soon",
        "audiences/segments/renewing-soon.yaml:7:3: error[reference-cycle]: segments refer to each "
        "other in a cycle: accommodation → renewing-soon → accommodation",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_error_class_is_located_exactly(scaffold: Path, case: str) -> None:
    relative, old, new, expected = CASES[case]
    edit(scaffold, relative, old, new)
    result = validate(scaffold)
    assert result.exit_code == 65, result.output
    lines = [line for line in result.stdout.splitlines() if not line.startswith("  hint:")]
    assert expected in lines, result.stdout
    assert "Traceback" not in result.output


def test_every_problem_is_reported_in_one_pass(scaffold: Path) -> None:
    picked = [
        "unknown-key",
        "bad-timezone",
        "unknown-segment",
        "bad-relative-date",
        "duplicate-key",
    ]
    for case in picked:
        relative, old, new, _ = CASES[case]
        edit(scaffold, relative, old, new)
    result = validate(scaffold, "--format", "json")
    assert result.exit_code == 65
    found = [(d["file"], d["line"], d["code"]) for d in json.loads(result.stdout)["diagnostics"]]
    expected = []
    for case in picked:
        text = CASES[case][3]
        file, line, _col, rest = text.split(":", 3)
        expected.append((file, int(line), rest.split("[")[1].split("]")[0]))
    assert sorted(found) == sorted(expected)


def test_hints_tell_how_to_fix(scaffold: Path) -> None:
    edit(scaffold, "campaigns/update-2027.yaml", "  group_by_email: true", "  group_by_emial: true")
    edit(
        scaffold,
        "campaignctl.yaml",
        "    rate: {per_second: 50}",
        "    rate: {per_second: 50}\n    password: hunter2",
    )
    result = validate(scaffold)
    assert "  hint: did you mean 'group_by_email'?" in result.stdout
    assert (
        "  hint: secrets never go in YAML: put the secret in an environment variable and name it "
        "with `password_env:`" in result.stdout
    )
    assert "hunter2" not in result.output


def test_json_format_is_a_stable_list(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        "segments: [accommodation]",
        "segments: [accomodation]",
    )
    result = validate(scaffold, "--format", "json")
    assert result.exit_code == 65
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    assert document["valid"] is False
    assert document["errors"] == 1
    assert document["diagnostics"] == [
        {
            "file": "campaigns/update-2027.yaml",
            "line": 9,
            "column": 14,
            "severity": "error",
            "code": "unknown-reference",
            "message": "segment 'accomodation' does not exist",
            "hint": "did you mean 'accommodation'?",
        }
    ]


def test_github_format_is_chosen_on_github_actions(scaffold: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        "segments: [accommodation]",
        "segments: [accomodation]",
    )
    result = validate(scaffold)
    assert result.exit_code == 65
    assert result.stdout == (
        "::error file=campaigns/update-2027.yaml,line=9,col=14,title=unknown-reference::"
        "segment 'accomodation' does not exist%0Adid you mean 'accommodation'?\n"
    )


def test_paths_restrict_the_report_but_references_still_resolve(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        "segments: [accommodation]",
        "segments: [accomodation]",
    )
    clean = validate(scaffold, str(scaffold / "audiences"))
    assert clean.exit_code == 0, clean.output
    broken = validate(scaffold, str(scaffold / "campaigns" / "update-2027.yaml"))
    assert broken.exit_code == 65


def test_warnings_fail_only_when_strict(scaffold: Path) -> None:
    (scaffold / "audiences" / "contacts.csv").unlink()
    lenient = validate(scaffold)
    assert lenient.exit_code == 0, lenient.output
    assert (
        "audiences/providers.audience.yaml:7:9: warning[missing-file]: source file "
        "'audiences/contacts.csv' not found" in lenient.stdout
    )
    assert validate(scaffold, "--strict").exit_code == 65


def test_junit_xml_has_one_case_per_file(scaffold: Path, tmp_path: Path) -> None:
    from xml.etree import ElementTree as ET

    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        "segments: [accommodation]",
        "segments: [accomodation]",
    )
    report = tmp_path / "junit.xml"
    validate(scaffold, "--junit-xml", str(report))
    suite = ET.parse(report).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert len(cases) == 8
    assert suite.get("failures") == "1"
    failure = cases["campaigns/update-2027.yaml"].find("failure")
    assert failure is not None and "segment 'accomodation' does not exist" in failure.text


def test_no_workspace_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 64
    assert result.stderr.startswith(f"error: no campaignctl.yaml found in {tmp_path.resolve()}")
    assert "hint: run the command inside a workspace" in result.stderr


def test_workspace_is_found_from_a_subdirectory(scaffold: Path, monkeypatch) -> None:
    monkeypatch.chdir(scaffold / "campaigns")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output


def test_unknown_flag_exits_64_not_2(scaffold: Path) -> None:
    result = validate(scaffold, "--frobnicate")
    assert result.exit_code == 64
    assert "No such option: --frobnicate" in result.stderr


def test_not_a_mapping_and_unknown_kind(scaffold: Path) -> None:
    (scaffold / "campaigns" / "list.yaml").write_text("- a\n- b\n", encoding="utf-8")
    (scaffold / "campaigns" / "kind.yaml").write_text("kind: Campain\nname: x\n", encoding="utf-8")
    result = validate(scaffold)
    assert (
        "campaigns/list.yaml:1:1: error[invalid-value]: a document must be a mapping"
        in result.stdout
    )
    assert "campaigns/kind.yaml:1:7: error[unknown-kind]: unknown kind 'Campain'" in result.stdout
    assert "  hint: did you mean 'Campaign'?" in result.stdout


def test_not_utf8_file(scaffold: Path) -> None:
    (scaffold / "campaigns" / "latin.yaml").write_bytes(
        "kind: Campaign\nname: é\n".encode("latin-1")
    )
    result = validate(scaffold)
    assert "campaigns/latin.yaml:1:1: error[encoding]: the file is not UTF-8 text" in result.stdout


def test_two_problems_at_the_same_place_are_both_reported(scaffold: Path) -> None:
    for suffix in ("html", "txt", "sms"):
        (scaffold / "templates" / f"update-request.{suffix}.j2").unlink()
    result = validate(scaffold)
    lines = [line for line in result.stdout.splitlines() if not line.startswith("  hint:")]
    assert lines == [
        "campaigns/update-2027.yaml:16:13: error[missing-file]: template 'update-request' has no SMS part: templates/update-request.sms.j2 not found",
        "campaigns/update-2027.yaml:16:13: error[missing-file]: template 'update-request' has no email part: templates/update-request.html.j2 or templates/update-request.txt.j2 not found",
    ]
