"""`plan`, `apply`, `lock`, `unlock` through the CLI, on the demo workspace and a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from golden import Goldens
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import open_store

GOLDEN = Path(__file__).with_name("golden")
golden = Goldens(GOLDEN)
NOW = "2027-01-05T08:00:00+01:00"


@pytest.fixture
def ws(demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Path:
    """The demo, imported, on SQLite and on PostgreSQL (`backend`)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.setenv("CI", "1")
    result = run(demo, "audience", "import")
    assert result.exit_code == 0, result.output
    return demo


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def store(root: Path) -> sa.Engine:
    """The engine of the store the commands use (CAMPAIGNCTL_STORE, else the SQLite file)."""
    return open_store(root).engine


def test_plan_of_every_demo_campaign_matches_the_golden_text_and_json(ws: Path) -> None:
    text = run(ws, "plan")
    assert text.exit_code == 0, text.output
    golden("plan.txt", text.stdout)
    document = run(ws, "plan", "--json")
    assert document.exit_code == 0, document.output
    golden("plan.json", document.stdout)
    assert json.loads(document.stdout)["summary"] == {
        "to_send": 6, "to_add": 8, "to_change": 0, "to_archive": 0, "refused": 0,
    }  # fmt: skip


def test_detailed_exitcode_is_2_with_changes_and_0_once_applied(ws: Path) -> None:
    assert run(ws, "plan", "--detailed-exitcode").exit_code == 2
    applied = run(ws, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.endswith("Apply complete: 8 created, 0 updated, 0 unchanged.\n")
    assert run(ws, "plan", "--detailed-exitcode").exit_code == 0


def test_detailed_exitcode_errors_keep_their_own_code_as_the_help_says(ws: Path) -> None:
    help_text = " ".join(run(ws, "plan", "--help").stdout.split())
    assert (
        "an error keeps its own code (65 invalid definitions, 69 store unreachable…)" in help_text
    )
    assert "1 error" not in help_text
    path = ws / "campaigns" / "medias-2027.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "bogus_key: 1\n", encoding="utf-8")
    assert run(ws, "plan", "--detailed-exitcode").exit_code == 65


def test_plan_shows_the_sms_encoding_so_an_emoji_multiplying_the_cost_is_visible(ws: Path) -> None:
    def sms_figures() -> tuple[str, dict]:
        text = run(ws, "plan", "mise-a-jour-2027").stdout
        (line,) = [line.strip() for line in text.splitlines() if "SMS parts:" in line]
        document = json.loads(run(ws, "plan", "mise-a-jour-2027", "--json").stdout)
        return line, document["campaigns"][0]["sms"]

    line, sms = sms_figures()
    assert line == "SMS parts: 1–1 per message (GSM-7), 9 in total, cost 0.41 EUR"
    assert sms["encodings"] == {"gsm-7": 9}
    template = ws / "templates" / "mise-a-jour.sms.j2"
    template.write_text(template.read_text().replace("vérifiez", "vérifiez 👋"))
    line, sms = sms_figures()
    assert line == "SMS parts: 3–3 per message (UCS-2), 27 in total, cost 1.22 EUR"
    assert (sms["encodings"], sms["total_parts"]) == ({"ucs-2": 9}, 27)


@pytest.mark.parametrize(
    ("schedule", "shown"),
    [
        # a first send 8 months ahead (NOW is 2027-01-05)
        ("  send_at: 2027-09-01T10:00\n", "2027-09-01 10:00 CEST (+02:00)  first send"),
        # a yearly cron without send_at: its next run, not one a year later
        ("  recurrence: {cron: '0 9 1 9 *'}\n", "2027-09-01 09:00 CEST (+02:00)  recurrence"),
    ],
)
def test_a_send_beyond_the_90_days_is_shown_as_the_next_send(
    ws: Path, schedule: str, shown: str
) -> None:
    path = ws / "campaigns" / "medias-2027.yaml"
    text = path.read_text().replace("  send_at: 2027-03-08T10:00\n", schedule)
    path.write_text(text.replace("  relaunch:\n    - {after: 10d, to: non_responders}\n", ""))
    result = run(ws, "plan", "medias-2027")
    assert result.exit_code == 0, result.output
    assert f"    {shown} (the next send, beyond the next 90 days)\n" in result.stdout
    assert "nothing scheduled" not in result.stdout
    document = json.loads(run(ws, "plan", "medias-2027", "--json").stdout)
    assert [(w["local"][:16], w["note"]) for w in document["campaigns"][0]["schedule"]] == [
        (shown[:16].replace(" ", "T"), "the next send, beyond the next 90 days")
    ]


def test_apply_without_a_terminal_needs_auto_approve(ws: Path) -> None:
    result = run(ws, "apply")
    assert result.exit_code == 64
    assert "add --auto-approve" in result.output


def test_apply_refuses_a_plan_made_stale_by_a_changed_campaign_file(ws: Path) -> None:
    planfile = ws / "plan.json"
    assert run(ws, "plan", "--out", str(planfile)).exit_code == 0
    path = ws / "campaigns" / "medias-2027.yaml"
    path.write_text(
        path.read_text().replace("max_messages_per_contact: 2", "max_messages_per_contact: 4")
    )
    result = run(ws, "apply", str(planfile), "--auto-approve")
    assert result.exit_code == 65, result.output
    assert f"the plan {planfile} is stale: campaign 'medias-2027' changed" in result.output


def test_a_fresh_saved_plan_applies(ws: Path) -> None:
    planfile = ws / "plan.json"
    assert run(ws, "plan", "medias-2027", "--out", str(planfile)).exit_code == 0
    result = run(ws, "apply", str(planfile), "--auto-approve")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout
        == "medias-2027: created\nApply complete: 1 created, 0 updated, 0 unchanged.\n"
    )


def test_apply_refuses_to_change_an_option_frozen_by_the_first_send(ws: Path) -> None:
    assert run(ws, "apply", "--auto-approve").exit_code == 0
    with store(ws).begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE campaign SET first_sent_at = '2027-01-04 09:00:00' WHERE name = 'medias-2027'"
            )
        )
    path = ws / "campaigns" / "medias-2027.yaml"
    path.write_text(path.read_text().replace("group_by_email: true", "group_by_email: false"))
    planned = run(ws, "plan", "medias-2027")
    assert (
        "    ! options.group_by_email: true → false  (refused: frozen by the first send)"
        in planned.stdout
    )
    result = run(ws, "apply", "--auto-approve")
    assert result.exit_code == 65
    assert (
        "error: medias-2027: option 'group_by_email' is frozen since the first send on "
        "2027-01-04 (options.group_by_email: true → false)" in result.output
    )


def test_double_solicitation_names_the_other_active_campaign(ws: Path) -> None:
    assert run(ws, "apply", "--auto-approve").exit_code == 0
    locked = run(ws, "lock", "mise-a-jour-2027")
    assert locked.exit_code == 0, locked.output
    planned = run(ws, "plan", "medias-2027", "--json")
    reasons = json.loads(planned.stdout)["campaigns"][0]["not_contacted"]
    conflict = [r for r in reasons if r["reason"] == "other_campaign"]
    assert conflict and conflict[0]["detail"] == "mise-a-jour-2027"
    text = run(ws, "plan", "medias-2027", "--show", "not-contacted").stdout
    assert "other_campaign (mise-a-jour-2027)" in text


def test_suppressed_excluded_and_max_messages_reasons(ws: Path) -> None:
    from campaignctl.audience.privacy import add_suppression
    from campaignctl.enums import Channel

    assert run(ws, "apply", "--auto-approve").exit_code == 0
    s = open_store(ws)
    with s.read() as conn:
        keys = conn.execute(
            sa.text(
                "SELECT key, email_normalized FROM record WHERE email_normalized IS NOT NULL "
                "AND phone IS NULL AND category = 'hotel' ORDER BY key LIMIT 1"
            )
        ).one()
    add_suppression(s, keys[1], channel=Channel.EMAIL)
    listing = run(ws, "plan", "mise-a-jour-2027", "--show", "not-contacted").stdout
    assert f"      - {keys[0]} [accommodation] suppressed" in listing
    # a first send of appel-cotisation-2027 excludes its recipients from rappel-renouvellement
    assert run(ws, "lock", "appel-cotisation-2027").exit_code == 0
    with store(ws).begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, lock_id, created_at) "
                "SELECT c.id, 1, 'initial', 'x/0/0', 'done', l.id, '2027-01-04' FROM campaign c "
                "JOIN campaign_lock l ON l.campaign_id = c.id WHERE c.name = 'appel-cotisation-2027'"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO outbox (campaign_id, wave_id, record_id, channel, address, state, attempts, "
                "created_at, updated_at) SELECT w.campaign_id, w.id, r.record_id, r.channel, r.address, "
                "'sent', 1, '2027-01-04', '2027-01-04' FROM wave w JOIN recipient r ON r.lock_id = w.lock_id"
            )
        )
    rappel = json.loads(run(ws, "plan", "rappel-renouvellement", "--json").stdout)["campaigns"][0]
    assert rappel["reached"] == 0
    assert rappel["not_contacted"] == [
        {"reason": "excluded_campaign", "records": 5, "detail": None}
    ]
    appel = json.loads(run(ws, "plan", "appel-cotisation-2027", "--json").stdout)["campaigns"][0]
    assert {r["reason"] for r in appel["not_contacted"]} >= {"max_messages"}
    unlocked = run(ws, "unlock", "appel-cotisation-2027")
    assert unlocked.exit_code == 65
    assert "message(s) were sent from lock" in unlocked.output
    assert run(ws, "unlock", "appel-cotisation-2027", "--force").exit_code == 0


def test_lock_shows_frozen_figures_and_refresh_shows_the_difference(ws: Path) -> None:
    assert run(ws, "apply", "--auto-approve").exit_code == 0
    first = run(ws, "lock", "medias-2027")
    assert first.exit_code == 0, first.output
    assert "  recipients: 65\n" in first.stdout
    again = run(ws, "lock", "medias-2027")
    assert "locked since" in again.stdout
    from campaignctl.errors import StateError
    from campaignctl.plan.lock import check_content
    from campaignctl.spec.workspace import load_workspace

    template = ws / "templates" / "medias.html.j2"
    template.write_text(template.read_text() + "\n")
    s = open_store(ws)
    with pytest.raises(StateError, match=r"templates/medias\.html\.j2"):
        check_content(s, load_workspace(ws), "medias-2027")
    with store(ws).begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE record SET email = NULL, email_normalized = NULL WHERE key = (SELECT r.key FROM record r JOIN recipient x ON x.record_id = r.id ORDER BY r.key LIMIT 1)"
            )
        )
    refreshed = run(ws, "lock", "medias-2027", "--refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "since the previous lock: +0 -1 recipient(s)" in refreshed.stdout
    check_content(s, load_workspace(ws), "medias-2027")
    assert run(ws, "unlock", "medias-2027").stdout == "medias-2027: lock 2 released\n"


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        ("Europe/Paris", "2027-03-22T09:00+01:00", "2027-03-29T09:00+02:00"),
        ("America/New_York", "2027-03-08T09:00-05:00", "2027-03-15T09:00-04:00"),
    ],
)
def test_schedules_keep_their_wall_clock_across_dst(
    ws: Path, tz: str, before: str, after: str
) -> None:
    path = ws / "campaigns" / "rappel-renouvellement.yaml"
    text = path.read_text().replace("  timezone: Europe/Paris", f"  timezone: {tz}")
    path.write_text(text)
    document = json.loads(run(ws, "plan", "rappel-renouvellement", "--json").stdout)
    times = [w["local"] for w in document["campaigns"][0]["schedule"]]
    assert before in times and after in times


# ----------------------------------------------------------------------------- show PLANFILE
def test_show_prints_a_saved_plan_as_plan_printed_it(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planfile = ws / "plan.json"
    saved = run(ws, "plan", "--out", str(planfile))
    assert saved.exit_code == 0, saved.output
    elsewhere = tmp_path / "elsewhere"  # show needs no workspace and no store
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shown = CliRunner().invoke(app, ["show", str(planfile)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == (GOLDEN / "plan.txt").read_text() == saved.stdout
    as_json = CliRunner().invoke(app, ["show", str(planfile), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert as_json.stdout == planfile.read_text() == run(ws, "plan", "--json").stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format_version": 1,\n"campaigns": [}', "{path}:2:15: not a saved plan: invalid JSON"),
        ('["a", "list"]', "{path}: not a saved plan: a JSON document without format_version"),
        ('{"format_version": 9, "campaigns": []}', "{path}: plan format 9 is not supported"),
        (
            '{"format_version": 1, "campaigns": [{"name": "x"}]}',
            "{path}: not a saved plan: missing field 'matrix'",
        ),
        ("kind: Campaign\n", "{path}:1:1: not a saved plan: invalid JSON (Expecting value)"),
    ],
    ids=["corrupt", "foreign-json", "other-version", "incomplete", "yaml"],
)
def test_show_refuses_a_file_that_is_not_a_saved_plan(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    result = CliRunner().invoke(app, ["show", str(path)])
    assert result.exit_code == 65, result.output
    assert result.output.startswith("error: " + message.format(path=path)), result.output
    assert "\n  hint: " in result.output and "`campaignctl plan --out FILE`" in result.output
    assert "Traceback" not in result.output


def test_show_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["show", str(tmp_path / "nope.json")])
    assert result.exit_code == 64
    assert result.output.startswith(f"error: {tmp_path / 'nope.json'}: no such plan file\n")


# ----------------------------------------------------------------------------- terminal layout
def test_plan_on_a_terminal_is_a_boxed_layout_with_the_same_figures(ws: Path) -> None:
    import re

    result = run(ws, "--color", "always", "plan", "medias-2027", "bienvenue-adherents")
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stdout  # styled
    golden("plan.terminal.txt", re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    plain = run(ws, "plan", "medias-2027", "bienvenue-adherents").stdout
    assert "╭" not in plain and "\x1b[" not in plain
    assert plain.startswith(LEGEND_LINE) and "    email: 65 records → 61 emails\n" in plain


LEGEND_LINE = (
    "Legend: + new campaign, ~ changed, - file removed (archive it), > will send, ! refused\n"
)
