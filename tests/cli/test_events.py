"""`campaignctl events ingest`: idempotent, linked to messages and records, suppressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import open_store, seed
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.store.tables import EVENT, SUPPRESSION

runner = CliRunner()

LINES = [
    # by message id (angle brackets stripped), resolved to outbox → campaign, record
    '{"type": "delivered", "message_id": "<H001.1@example.org>", "at": "2027-03-01T09:01:00+01:00"}',
    '{"type": "bounced", "message_id": "H002.1@example.org", "data": {"kind": "hard", "code": "5.1.1"}}',
    '{"type": "bounced", "message_id": "C001.1@example.org", "data": {"kind": "soft", "code": "4.2.2"}}',
    "not json",
    '{"id": "e-5", "type": "form_submitted", "campaign": "update-2027", "record": "G002", "data": {"phone": "x"}}',
    '{"type": "sms_reply", "message_id": "prov-C002", "data": {"text": "Arrêt"}}',
    '{"type": "complained", "address": "chezlulu@example.fr"}',
    '{"type": "opened", "message_id": "nobody@example.org"}',
    '{"type": "unsubscribed", "campaign": "update-2027", "record": "G001"}',
    '{"type": "opend", "message_id": "m1"}',
]


def ingest(root: Path, source: str, *args: str, stdin: str | None = None):
    return runner.invoke(
        app, ["--workspace", str(root), "events", "ingest", source, *args], input=stdin
    )


NOW = "2027-03-02T09:00:00+01:00"  # the day after the scaffold's first send (storerows.T0)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)


@pytest.fixture
def events_file(scaffold: Path, backend: str) -> Path:
    seed(scaffold)
    path = scaffold / "events.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_ingest_records_links_and_suppresses(scaffold: Path, events_file: Path) -> None:
    result = ingest(scaffold, str(events_file))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{events_file}:4: skipped: not JSON: invalid literal, expected 'null': line 1 "
        "column 1 (char 0)",
        f"{events_file}:10: skipped: type: Input should be 'delivered', 'bounced', 'opened', "
        "'clicked', 'form_opened', 'form_submitted', 'unsubscribed', 'complained', "
        "'sms_delivered', 'sms_failed', 'sms_reply', 'document_signed', 'document_received', "
        "'space_visited', 'api_call' or 'score_changed'",
        f'{events_file}:8: recorded, unknown: message "nobody@example.org" is not in the store',
        "suppressed email contact@cimes.example (all categories, bounced)",
        "suppressed sms +33698765432 (administrative, sms_stop)",
        "suppressed email chezlulu@example.fr (all categories, complained)",
        "suppressed email famille.martin@example.com (administrative, unsubscribed)",
        "read 10 line(s): 7 recorded, 0 already recorded, 1 for an unknown message or record, "
        "0 not attributable to a message, 2 bad line(s) skipped; 4 suppression(s) added",
    ]
    store = open_store(scaffold)
    with store.read() as conn:
        rows = conn.execute(
            sa.select(EVENT.c.type, EVENT.c.record_key,
                      EVENT.c.channel, EVENT.c.campaign_id)
            .order_by(EVENT.c.type, EVENT.c.record_key)
        ).all()  # fmt: skip
        reasons = conn.execute(sa.select(SUPPRESSION.c.reason, SUPPRESSION.c.source)).all()
    assert [tuple(r) for r in rows] == [
        ("bounced", "C001", "email", 1),
        ("bounced", "H002", "email", 1),
        ("complained", None, "email", None),
        ("delivered", "H001", "email", 1),
        ("form_submitted", "G002", "email", 1),
        ("opened", None, None, None),  # unknown message: kept, linked to nothing
        ("sms_reply", "C002", "sms", 1),
        ("unsubscribed", "G001", "email", 1),
    ]
    assert all(source.startswith("event:") for _, source in reasons)


def test_reingesting_a_file_adds_nothing_and_says_so(scaffold: Path, events_file: Path) -> None:
    assert ingest(scaffold, str(events_file)).exit_code == 0
    again = ingest(scaffold, "-", "--json", stdin=events_file.read_text(encoding="utf-8"))
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert {k: v for k, v in document.items() if k != "problems"} == {
        "format_version": 1,
        "read": 10,
        "recorded": 0,
        "duplicates": 8,
        "unknown": 0,
        "unattributed": 0,
        "bad_lines": 2,
        "suppressions_added": 0,
        "suppressions": [],
        "not_counted": [],
    }
    assert [p["line"] for p in document["problems"]] == [4, 10]
    assert again.stderr.splitlines()[-1] == (
        "read 10 line(s): 0 recorded, 8 already recorded, 0 for an unknown message or record, "
        "0 not attributable to a message, 2 bad line(s) skipped; 0 suppression(s) added"
    )


def test_a_file_with_no_event_at_all_exits_65(scaffold: Path, backend: str) -> None:
    path = scaffold / "report.csv"
    path.write_text("id;type\n1;opened\n", encoding="utf-8")
    result = ingest(scaffold, str(path))
    assert result.exit_code == 65
    assert result.stderr.splitlines()[-2:] == [
        "error: none of the 2 line(s) is an event (line 1: not JSON: unexpected character, "
        "expected a JSON value: line 1 column 1 (char 0))",
        '  hint: each line is a JSON object such as {"type": "opened", "message_id": "..."}',
    ]


def test_an_empty_file_is_not_an_error(scaffold: Path, backend: str) -> None:
    path = scaffold / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    result = ingest(scaffold, str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "read 0 line(s): 0 recorded, 0 already recorded, 0 for an unknown message or record, "
        "0 not attributable to a message, 0 bad line(s) skipped; 0 suppression(s) added\n"
    )


def test_a_missing_file_exits_65(scaffold: Path) -> None:
    result = ingest(scaffold, str(scaffold / "nope.jsonl"))
    assert result.exit_code == 65
    assert (
        result.stderr
        == f"error: cannot read {scaffold / 'nope.jsonl'}: No such file or directory\n"
    )
