"""`campaignctl validate`: every error class, located at the exact file:line:col, in one pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

runner = CliRunner()
# before the scaffold's first send_at (2027-03-01): a send_at in the past is a warning
BEFORE_THE_FIRST_SEND = "2026-12-07T10:00:00+01:00"


@pytest.fixture(autouse=True)
def _before_the_first_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", BEFORE_THE_FIRST_SEND)


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
        "duration '7x'",
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
    "logo-outside-documents": (
        "campaigns/charter-2027.yaml",
        "dashboard_message:",
        "logo: ../campaignctl.yaml\ndashboard_message:",
        "campaigns/charter-2027.yaml:13:7: error[unsafe-path]: logo '../campaignctl.yaml' climbs "
        "out of documents/",
    ),
    "logo-missing": (
        "campaigns/charter-2027.yaml",
        "dashboard_message:",
        "logo: charte.png\ndashboard_message:",
        "campaigns/charter-2027.yaml:13:7: error[missing-file]: logo 'charte.png' not found under "
        "documents/",
    ),
    "logo-not-an-image": (
        "campaigns/charter-2027.yaml",
        "dashboard_message:",
        "logo: charte-qualite.txt\ndashboard_message:",
        "campaigns/charter-2027.yaml:13:7: error[invalid-value]: logo 'charte-qualite.txt' is not "
        "an image (by its name: text/plain)",
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


def test_a_logo_too_big_for_the_partner_space_is_an_error(scaffold: Path) -> None:
    """The space embeds a campaign's logo (256 KiB at most): a bigger one would show nothing."""
    (scaffold / "documents" / "charte.png").write_bytes(b"\x89PNG" + bytes(300 * 1024))
    edit(scaffold, "campaigns/charter-2027.yaml", "dashboard_message:",
         "logo: charte.png\ndashboard_message:")  # fmt: skip
    result = validate(scaffold)
    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines()[:2] == [
        "campaigns/charter-2027.yaml:13:7: error[invalid-value]: logo 'charte.png' is 300 KiB; "
        "the partner space embeds a logo of at most 256 KiB",
        "  hint: make the picture smaller (a 128-pixel-high PNG is a few KiB)",
    ]


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


@pytest.mark.parametrize("given", ["flag", "variable"])
@pytest.mark.parametrize(
    ("folder", "problem"),
    [
        ("my-campaignz", "no such directory"),  # a typo
        ("campaigns", "this directory holds no campaignctl.yaml: it is not a workspace"),
    ],
)
@pytest.mark.parametrize(
    "command", [["validate"], ["plan"], ["send", "reminder", "--now", "--dry-run"]]
)
def test_a_workspace_given_explicitly_must_hold_campaignctl_yaml_itself(
    scaffold: Path, monkeypatch, given: str, folder: str, problem: str, command: list[str]
) -> None:
    """Inside a workspace, `--workspace DIR` (or CAMPAIGNCTL_WORKSPACE) naming a folder
    that is not one stops at once; it never falls back on the workspace above."""
    monkeypatch.chdir(scaffold)
    directory = scaffold / folder
    if given == "flag":
        result = runner.invoke(app, ["--workspace", str(directory), *command])
        setting = f"--workspace {directory}"
    else:
        result = runner.invoke(app, command, env={"CAMPAIGNCTL_WORKSPACE": str(directory)})
        setting = f"CAMPAIGNCTL_WORKSPACE={directory}"
    assert result.exit_code == 64, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {setting}: {problem}\n"
        "  hint: give the directory that holds campaignctl.yaml (the directories above one "
        "given explicitly are not searched), or create a workspace there with "
        f"`campaignctl init {directory}`\n"
    )


def test_a_subcommands_workspace_flag_is_held_to_the_same_rule(scaffold: Path, monkeypatch) -> None:
    monkeypatch.chdir(scaffold)
    result = runner.invoke(app, ["validate", "--workspace", "my-campaignz"])
    assert result.exit_code == 64
    assert result.stderr.startswith("error: --workspace my-campaignz: no such directory\n")
    assert runner.invoke(app, ["validate", "--workspace", "."]).exit_code == 0


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


def test_a_send_at_in_the_past_is_a_warning_unless_a_recurrence_goes_on(
    scaffold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # after update-2027's send_at; renewal-reminder's weekly recurrence runs until 2027-12-31
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T12:00:00+01:00")
    result = validate(scaffold, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [(d["file"], d["line"], d["severity"], d["message"]) for d in
            json.loads(result.stdout)["diagnostics"]] == [
        ("campaigns/update-2027.yaml", 26, "warning",
         "campaign 'update-2027': send_at 2027-03-01 09:00 (Europe/Paris) is in the past: unless "
         "it was sent already, the next scheduler pass sends it"),
    ]  # fmt: skip
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2028-01-02T12:00:00+01:00")
    later = json.loads(validate(scaffold, "--format", "json").stdout)["diagnostics"]
    assert [(d["file"], d["message"].split(": ", 1)[1]) for d in later] == [
        ("campaigns/renewal-reminder.yaml", "send_at 2027-01-04 09:00 (Europe/Paris) is in the "
         "past; its recurrence ended on 2027-12-31: unless it was sent already, the scheduler "
         "records it as missed (later than max_lateness 6h)"),
        ("campaigns/update-2027.yaml", "send_at 2027-03-01 09:00 (Europe/Paris) is in the past: "
         "unless it was sent already, the scheduler records it as missed (later than "
         "max_lateness 6h)"),
    ]  # fmt: skip
    assert validate(scaffold, "--strict").exit_code == 65  # warnings fail with --strict


def test_an_unknown_filter_or_test_in_an_if_branch_is_an_error_at_validate(scaffold: Path) -> None:
    # Jinja only fails on these when the branch renders: here, the relaunch text
    edit(
        scaffold,
        "templates/update-request.txt.j2",
        "RAPPEL : nous",
        "RAPPEL {{ record.nom | upperr }} : nous",
    )
    edit(
        scaffold,
        "templates/update-request.txt.j2",
        "{% if field.required %}",
        "{% if field.required is trueish %}",
    )
    result = validate(scaffold)
    assert result.exit_code == 65, result.output
    assert result.stdout == (
        "templates/update-request.txt.j2:1:56: error[template-filter]: unknown filter 'upperr'\n"
        "  hint: did you mean 'upper'?\n"
        "templates/update-request.txt.j2:20:78: error[template-filter]: unknown test 'trueish'\n"
        "  hint: did you mean 'true'?\n"
    )


def test_an_unknown_filter_outside_any_branch_is_a_diagnostic_not_a_crash(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        'subject: "{{ organization.name }}',
        'subject: "{{ organization.name | tittle }}',
    )
    edit(
        scaffold,
        "templates/update-request.sms.j2",
        "{{ organization.name }}",
        "{{ organization.name | xyzzy }}",
    )
    result = validate(scaffold)
    assert result.exit_code == 65, result.output
    assert result.stdout == (
        "campaigns/update-2027.yaml:15:12: error[template-filter]: unknown filter 'tittle'\n"
        "  hint: did you mean 'title'?\n"
        "templates/update-request.sms.j2:1:76: error[template-filter]: unknown filter 'xyzzy'\n"
        "  hint: the filters are Jinja's own (https://jinja.palletsprojects.com/en/stable/templates/) and date\n"
    )


def test_validate_accepts_exactly_the_filters_and_tests_the_renderer_has(scaffold: Path) -> None:
    from campaignctl.render.environment import make_environment
    from campaignctl.spec.templates import TemplateChecker

    rendering = make_environment(scaffold)
    checking = TemplateChecker(scaffold).env
    # the sandbox's own helpers (`_counted_loop`) are not for templates: validate refuses them
    assert set(checking.filters) == {f for f in rendering.filters if not f.startswith("_")}
    assert set(checking.tests) == set(rendering.tests)
    # campaignctl's own `date` filter is one of them, and validates
    edit(
        scaffold,
        "templates/update-request.txt.j2",
        "Bonjour,",
        "Bonjour, {{ record.contract_end | date('%Y') }}",
    )
    assert validate(scaffold).exit_code == 0


# ----------------------------------------------------------------------------- every code
def _write(relative: str, content: bytes):  # a file of its own: an edit cannot make it
    def make(root: Path) -> None:
        (root / relative).write_bytes(content)

    return make


def _dangling(root: Path) -> None:
    # a broken link that stays inside campaigns/ (one leading out is unsafe-path)
    (root / "campaigns" / "gone.yaml").symlink_to(root / "campaigns" / "nowhere.yaml")


# One way to cause each diagnostic code: an edit (file, old, new) of CASES' kind, or a function.
def _marketing_without_visible_unsubscribe(root: Path) -> None:
    edit(root, "campaigns/update-2027.yaml", "category: administrative", "category: marketing")
    edit(
        root,
        "templates/update-request.txt.j2",
        "Se désinscrire : {{ links.unsubscribe }}",
        "Pour vous désinscrire, répondez STOP",
    )


CODE_CASES = {
    "missing-unsubscribe": _marketing_without_visible_unsubscribe,
    "yaml-syntax": CASES["yaml-syntax"][:3],
    "encoding": _write("campaigns/latin.yaml", "kind: Campaign\nname: é\n".encode("latin-1")),
    "duplicate-key": CASES["duplicate-key"][:3],
    "invalid-key": ("campaigns/renewal-reminder.yaml", "type: message", "[a, b]: 1\ntype: message"),
    "unknown-kind": ("campaigns/renewal-reminder.yaml", "kind: Campaign", "kind: Campain"),
    "unknown-key": CASES["unknown-key"][:3],
    "missing-field": CASES["missing-field"][:3],
    "invalid-value": CASES["bad-duration"][:3],
    "duplicate-name": CASES["duplicate-name"][:3],
    "unknown-reference": CASES["unknown-segment"][:3],
    "reference-cycle": CASES["segment-cycle"][:3],
    "missing-file": CASES["unknown-template"][:3],
    "missing-signing": (
        "campaigns/charter-2027.yaml",
        "typology: charte, to_sign: true,",
        "typology: charte, to_sign: true, sign: true,",
    ),
    "schedule": CASES["relaunch-before-send"][:3],
    "channel": CASES["channel-without-sender"][:3],
    "unknown-transport": ("campaignctl.yaml", "transport: file", "transport: smpt"),
    "template-syntax": (
        "templates/update-request.txt.j2",
        "{{ blocks.outro }}",
        "{{ blocks.outro }",
    ),
    "template-undefined": (
        "templates/update-request.txt.j2",
        "{{ blocks.outro }}",
        "{{ blocks.outr }}",
    ),
    "template-filter": (
        "templates/update-request.txt.j2",
        "{{ blocks.outro }}",
        "{{ blocks.outro | upperr }}",
    ),
    "unsafe-path": (
        "campaigns/update-2027.yaml",
        "template: update-request",
        "template: layouts/../../../outside",
    ),
    "plaintext-auth": lambda root: _smtp_sender(root, "host: smtp.example.org, starttls: false"),
    "csv-source": _write("audiences/contacts.csv", "id,nom\nH001,Hôtel\n".encode("cp1252")),
    "empty-file": _write("campaigns/empty.yaml", b"# nothing yet\n"),
    "unreadable": _dangling,
}


def _readme_codes() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Diagnostics", 1)[1].split("\n## ", 1)[0]
    return [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]


def _source_codes() -> set[str]:
    """Every code the loader, the checks of spec/ and the render environment can report,
    read from their source."""
    import ast

    found: set[str] = set()
    package = Path(__file__).resolve().parents[2] / "campaignctl"
    paths = [*package.glob("spec/**/*.py"), package / "render" / "environment.py"]
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in paths]
    # module constants a code may be passed by (SOURCE_PROBLEM = "csv-source"), imported
    # from one module of spec/ into another
    constants = {
        node.targets[0].id: node.value
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                at = {"Diagnostic": 4, "_report": 2, "_error": 1}.get(name)
                if at is None or len(node.args) <= at:
                    continue
                arg = node.args[at]
                if isinstance(arg, ast.Name):
                    arg = constants.get(arg.id, arg)
                if isinstance(arg, ast.Constant):
                    found.add(arg.value)
            elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple)):
                target, value = node.targets[0], node.value
                if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                    target, value = target.elts[0], value.elts[0]
                if isinstance(target, ast.Name) and target.id == "code":
                    found.add(value.value)
    return found


# Codes only a render can find (validate cannot know a text's size before rendering it):
# each with an edit that causes it and the command that reports it.
RENDER_CODE_CASES = {
    "template-too-large": (
        ("templates/update-request.txt.j2", "Bonjour,", "Bonjour, {{ 'a' * 2000000 }}"),
        ("preview", "update-2027"),
    ),
    "template-unsafe": (
        ("templates/update-request.txt.j2", "Bonjour,", "Bonjour, {{ ''.__class__.__mro__ }}"),
        ("preview", "update-2027"),
    ),
    "template-error": (
        ("templates/update-request.txt.j2", "Bonjour,", "Bonjour, {{ (record.key | length) / 0 }}"),
        ("preview", "update-2027"),
    ),
}


def test_every_diagnostic_code_is_documented_and_has_a_case() -> None:
    assert (
        sorted(_readme_codes())
        == sorted(_source_codes())
        == sorted([*CODE_CASES, *RENDER_CODE_CASES])
    )


@pytest.mark.parametrize("code", sorted(RENDER_CODE_CASES))
def test_every_render_time_code_comes_with_a_hint(scaffold: Path, code: str) -> None:
    change, command = RENDER_CODE_CASES[code]
    edit(scaffold, *change)
    result = runner.invoke(app, ["--workspace", str(scaffold), *command])
    assert result.exit_code == 65, result.output
    lines = result.stderr.splitlines()
    (at,) = [i for i, line in enumerate(lines) if f"error[{code}]: " in line]
    assert lines[at + 1].startswith("  hint: ") and len(lines[at + 1]) > len("  hint: ")


@pytest.mark.parametrize("code", sorted(CODE_CASES))
def test_every_diagnostic_code_comes_with_a_hint(scaffold: Path, code: str) -> None:
    case = CODE_CASES[code]
    if callable(case):
        case(scaffold)
    else:
        edit(scaffold, *case)
    result = validate(scaffold)
    lines = result.stdout.splitlines()
    found = [i for i, line in enumerate(lines) if f"[{code}]: " in line]
    assert found, result.output
    for i in found:
        assert lines[i + 1].startswith("  hint: ") and len(lines[i + 1]) > len("  hint: "), (
            result.stdout
        )


def test_a_bad_duration_on_the_command_line_gets_the_same_hint(scaffold: Path) -> None:
    result = runner.invoke(
        app, ["--workspace", str(scaffold), "send", "update-2027", "--now", "--lock-timeout", "5x"]
    )
    assert result.exit_code == 64, result.output
    assert result.stderr == (
        "error: --lock-timeout: invalid duration '5x'\n"
        "  hint: write a whole number followed by a unit s, m, h, d or w "
        "(e.g. 30s, 5m, 6h, 7d, 2w, or 1d12h)\n"
    )


def _smtp_sender(root: Path, settings: str) -> None:
    edit(root, "campaignctl.yaml", "    transport: file                         # file writes", "    transport: smtp                         # file writes")  # fmt: skip
    edit(root, "campaignctl.yaml", "    # smtp: {host: smtp.example.org, port: 587, starttls: true, ", f"    smtp: {{{settings}, ")  # fmt: skip


def test_smtp_auth_without_tls_to_another_machine_is_an_error(scaffold: Path) -> None:
    _smtp_sender(scaffold, "host: smtp.example.org, port: 587, starttls: false")

    result = validate(scaffold)

    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines()[:2] == [
        "campaignctl.yaml:16:78: error[plaintext-auth]: senders.default.smtp: AUTH would send the "
        "password in clear to smtp.example.org (starttls and tls are off)",
        "  hint: set `starttls: true` (port 587) or `tls: true` (port 465); if the network to the "
        "server is trusted, set `allow_plaintext_auth: true`",
    ]


@pytest.mark.parametrize(
    "settings",
    [
        "host: smtp.example.org, port: 587, starttls: true",
        "host: smtp.example.org, port: 465, tls: true, starttls: false",
        "host: smtp.example.org, port: 25, starttls: false, allow_plaintext_auth: true",
        "host: 127.0.0.1, port: 25, starttls: false",
        "host: localhost, port: 25, starttls: false",
        "host: '::1', port: 25, starttls: false",
    ],
)
def test_smtp_auth_goes_over_tls_to_this_machine_or_when_allowed(
    scaffold: Path, settings: str
) -> None:
    _smtp_sender(scaffold, settings)

    result = validate(scaffold)

    assert result.exit_code == 0, result.output


def test_a_name_longer_than_the_store_keeps_is_refused_at_validate(scaffold: Path) -> None:
    """`apply` of a 110-character campaign name stopped with an internal error on PostgreSQL
    (VARCHAR(100)) and went through on SQLite: validate now refuses it on both, located."""
    name = "update-" + "x" * 103
    edit(scaffold, "campaigns/update-2027.yaml", "name: update-2027", f"name: {name}")
    result = validate(scaffold)
    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines()[0] == (
        "campaigns/update-2027.yaml:4:7: error[invalid-value]: name: the name "
        "'update-xxxxxxxxxxxxxxxxx'… has 110 characters: a name has at most 64"
    )
    edit(scaffold, "campaigns/update-2027.yaml", f"name: {name}", f"name: {name[:64]}")
    assert validate(scaffold).exit_code == 0
