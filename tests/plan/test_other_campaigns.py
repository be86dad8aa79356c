"""Double solicitation (`respect_other_campaigns`, seed 000) through the CLI, on the demo.

Only questionnaire campaigns leave out, by default, the records that another active
questionnaire campaign already asks; message campaigns reach everybody. Every record
left out is counted with the other campaign's name in `plan`, `send`, the scheduler's
line and `report` (docs/targeting.md §6).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.delivery.locking import open_store

FIRST = "mise-a-jour-2027"  # questionnaire, first send 2027-03-01 09:00 (Paris)
SECOND = "medias-2027"  # questionnaire, first send 2027-03-08 10:00; 62 of its records are FIRST's
MONDAY = "2027-03-01T09:00:30+01:00"  # FIRST is due; outside the demo's SMS quiet hours
NEXT_MONDAY = "2027-03-08T10:00:30+01:00"  # FIRST's relaunch and SECOND are due
LEFT_OUT = 62
HINT = f"(`campaignctl plan {SECOND} --show not-contacted` lists them)."


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--workspace", str(root), *args])
    return result


def ok(root: Path, *args: str):  # type: ignore[no-untyped-def]
    result = run(root, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


@pytest.fixture
def demo_at(demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str):  # type: ignore[no-untyped-def]
    """The demo, its audience imported (on SQLite and on PostgreSQL); `at(ISO)` moves the
    clock."""
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)

    def at(instant: str) -> Path:
        monkeypatch.setenv("CAMPAIGNCTL_NOW", instant)
        return demo

    ok(at(MONDAY), "audience", "import")
    return at


def _questionnaires_by_default(root: Path) -> None:
    """The demo writes `respect_other_campaigns: true`: rely on the default instead."""
    for name in (FIRST, SECOND):
        path = root / "campaigns" / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\n  respect_other_campaigns: .*", "", text), encoding="utf-8")
        assert "  respect_other_campaigns:" not in path.read_text(encoding="utf-8")


def _outbox_keys(root: Path, campaign: str) -> set[str]:
    store = open_store(root)
    with store.read() as conn:
        keys = conn.execute(
            sa.text(
                "SELECT r.key FROM outbox o JOIN record r ON r.id = o.record_id "
                "JOIN campaign c ON c.id = o.campaign_id WHERE c.name = :c"
            ),
            {"c": campaign},
        ).scalars()
        found = set(keys)
    store.close()
    return found


# --------------------------------------------------------------------------- messages


def test_five_message_campaigns_on_one_audience_all_reach_their_recipients(demo_at) -> None:
    """Newsletters do not solicit records for a questionnaire: none of them is left out
    because an earlier one was sent (the issue: 400, then 0, 0, 0, 0)."""
    root = demo_at(MONDAY)
    for number in range(1, 6):
        (root / "campaigns" / f"newsletter-{number}.yaml").write_text(
            f"kind: Campaign\nname: newsletter-{number}\ncategory: administrative\n"
            "type: message\naudience: {segments: [members-loyal]}\nchannels: [email]\n"
            f"message:\n  sender: adhesions\n  subject: Lettre {number}\n"
            "  template: appel-cotisation\n"
            "  blocks: {intro: Les nouvelles du mois., outro: À bientôt.}\n",
            encoding="utf-8",
        )
    names = [f"newsletter-{n}" for n in range(1, 6)]
    ok(root, "apply", *names, "--auto-approve")
    sent = []
    for name in names:
        result = ok(root, "send", name, "--now")
        sent.append(int(re.search(rf"^{name} wave 1: (\d+) sent,", result.stderr, re.M)[1]))
        assert "not contacted" not in result.stderr
    assert sent[0] > 0 and sent == [sent[0]] * 5
    assert all(_outbox_keys(root, name) == _outbox_keys(root, names[0]) for name in names)
    report = json.loads(ok(root, "report", names[-1], "--format", "json").stdout)
    assert report["totals"]["sent"] == sent[0]
    assert "other_campaign" not in {n["reason"] for n in report["not_contacted"]}


# --------------------------------------------------------------------------- questionnaires


def test_a_second_questionnaire_campaign_leaves_out_the_first_ones_records_and_names_it(
    demo_at,
) -> None:
    root = demo_at(MONDAY)
    _questionnaires_by_default(root)
    ok(root, "apply", FIRST, SECOND, "--auto-approve")
    ok(root, "send", FIRST, "--now")
    first = _outbox_keys(root, FIRST)

    # plan: the records FIRST asks, counted and named
    planned = json.loads(ok(root, "plan", SECOND, "--json").stdout)["campaigns"][0]
    assert {"reason": "other_campaign", "records": LEFT_OUT, "detail": FIRST} in planned[
        "not_contacted"
    ]
    text = ok(root, "plan", SECOND).stdout
    assert (
        f"    not contacted: other_campaign ({FIRST}): {LEFT_OUT} — "
        "already asked by an active questionnaire campaign\n"
    ) in text

    # lock: the frozen figures keep the other campaign's name
    locked = ok(root, "lock", SECOND)
    assert f"  not contacted: other_campaign ({FIRST}): {LEFT_OUT}\n" in locked.stdout + "\n"
    counts = json.loads(ok(root, "lock", SECOND, "--json").stdout)["counts"]
    assert counts["other_campaigns"] == {FIRST: LEFT_OUT}

    # send: what it sent, then who it left out and for which campaign
    result = ok(root, "send", SECOND, "--now")
    lines = result.stderr.splitlines()
    assert re.fullmatch(
        rf"{SECOND} wave 1: 6 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain, "
        r"0 suppressed, 0 skipped \(\d+ msg/s\)\.",
        lines[-2],
    )
    assert lines[-1] == (
        f"{LEFT_OUT} record(s) not contacted: already asked by active questionnaire campaign "
        f"{FIRST} {HINT}"
    )
    second = _outbox_keys(root, SECOND)
    assert len(second) == 6 and not second & first
    summary = json.loads(ok(root, "send", SECOND, "--now", "--json").stdout.splitlines()[-1])
    assert (summary["type"], summary["other_campaigns"]) == ("summary", {FIRST: LEFT_OUT})

    # report: the table and the JSON
    report = json.loads(ok(root, "report", SECOND, "--format", "json").stdout)
    assert report["not_contacted"][0] == {
        "reason": "other_campaign",
        "records": LEFT_OUT,
        "detail": FIRST,
    }
    assert sum(n["records"] for n in report["not_contacted"]) == planned["targeted"] - 6
    table = ok(root, "report", SECOND).stdout
    assert (
        f"{SECOND}: records not contacted (as locked)\n"
        "+-----------------+------------------+---------+\n"
        "| reason          | other campaign   | records |\n"
        "+-----------------+------------------+---------+\n"
        f"| other_campaign  | {FIRST} | {LEFT_OUT}      |\n"
    ) in table


def test_the_scheduler_line_names_the_campaign_that_already_asks_the_records(
    demo_at,
) -> None:
    root = demo_at(MONDAY)
    _questionnaires_by_default(root)
    ok(root, "apply", FIRST, SECOND, "--auto-approve")
    assert f"sent: {FIRST}/0/0" in ok(root, "scheduler", "tick").stderr

    tick = ok(demo_at(NEXT_MONDAY), "scheduler", "tick")
    assert (
        f"sent: {SECOND}/0/0 (due 2027-03-08 10:00 +0100, wave 1): 6 sent, 0 failed; "
        f"{LEFT_OUT} record(s) not contacted: already asked by {FIRST}"
    ) in tick.stderr.splitlines()
    assert not _outbox_keys(root, SECOND) & _outbox_keys(root, FIRST)


def _news_of_the_labelled(root: Path) -> None:
    """A message campaign to SECOND's segment, asking nobody to update anything."""
    (root / "campaigns" / "labelled-news.yaml").write_text(
        "kind: Campaign\nname: labelled-news\ncategory: administrative\ntype: message\n"
        "audience: {segments: [labelled]}\nchannels: [email]\n"
        "message:\n  sender: adhesions\n  subject: Nouvelles\n  template: appel-cotisation\n"
        "  blocks: {intro: Les nouvelles., outro: À bientôt.}\n",
        encoding="utf-8",
    )


def _drafted(root: Path) -> None:
    path = root / "campaigns" / f"{FIRST}.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "\ntype: questionnaire\n", "\ntype: questionnaire\ndraft: true\n"
        ),
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    ("case", "holder", "prepare", "command", "plan_at"),
    [
        # a draft is saved, not activated: its lock asks nobody yet
        ("draft", FIRST, _drafted, "lock", MONDAY),
        # a message campaign asks nobody to update a record
        ("message campaign", "labelled-news", _news_of_the_labelled, "send", MONDAY),
        # its form links expired (tracking.token_max_age: 180d after its last message)
        ("links expired", FIRST, None, "send", "2027-08-29T09:00:00+02:00"),
    ],
)
def test_only_an_active_questionnaire_campaign_holds_its_records(
    demo_at, case: str, holder: str, prepare, command: str, plan_at: str
) -> None:
    root = demo_at(MONDAY)
    if prepare is not None:
        prepare(root)
    ok(root, "apply", "--auto-approve")
    ok(root, command, holder)  # locked (and sent) on MONDAY
    planned = json.loads(ok(demo_at(plan_at), "plan", SECOND, "--json").stdout)["campaigns"][0]
    assert "other_campaign" not in {r["reason"] for r in planned["not_contacted"]}, case


def test_a_questionnaire_campaign_still_holds_its_records_until_its_links_expire(
    demo_at,
) -> None:
    root = demo_at(MONDAY)
    ok(root, "apply", "--auto-approve")
    ok(root, "send", FIRST, "--now")
    planned = json.loads(ok(demo_at("2027-08-27T09:00:00+02:00"), "plan", SECOND, "--json").stdout)
    assert {"reason": "other_campaign", "records": LEFT_OUT, "detail": FIRST} in planned[
        "campaigns"
    ][0]["not_contacted"]


def test_a_sent_message_campaign_applied_under_the_old_default_applies_the_new_one(
    demo_at,
) -> None:
    """A message campaign that sent with `respect_other_campaigns: true` recorded (the old
    default) is not frozen by it: the next apply records false instead of refusing the
    whole workspace with exit 65; a questionnaire campaign's option stays frozen."""
    root = demo_at(MONDAY)
    message = root / "campaigns" / "newsletter.yaml"
    body = (
        "kind: Campaign\nname: newsletter\ncategory: administrative\n"
        "type: message\naudience: {segments: [members-loyal]}\nchannels: [email]\n"
        "message:\n  sender: adhesions\n  subject: Lettre\n  template: appel-cotisation\n"
        "  blocks: {intro: Les nouvelles du mois., outro: À bientôt.}\n"
    )
    message.write_text(body + "options: {respect_other_campaigns: true}\n", encoding="utf-8")
    ok(root, "apply", "newsletter", "--auto-approve")
    ok(root, "send", "newsletter", "--now")

    message.write_text(body, encoding="utf-8")
    plan = ok(root, "plan", "newsletter")
    assert "options.respect_other_campaigns: true → false" in plan.stdout, plan.stdout
    assert "(refused: frozen by the first send)" not in plan.stdout
    ok(root, "apply", "newsletter", "--auto-approve")
    assert "No changes. Campaigns are up to date." in ok(root, "plan", "newsletter").stdout

    ok(root, "apply", FIRST, "--auto-approve")
    ok(root, "send", FIRST, "--now")
    path = root / "campaigns" / f"{FIRST}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("respect_other_campaigns: true", "respect_other_campaigns: false"),
        encoding="utf-8",
    )
    refused = run(root, "apply", FIRST, "--auto-approve")
    assert refused.exit_code == 65, refused.output
    assert "respect_other_campaigns" in refused.output
