"""An event naming campaign + record counts exactly as one naming that record's message.

Issue 16 §4: `events ingest` accepted such events ("1 recorded") but the report
and the relaunch selections never counted an open, a click, a receipt or a
bounce named that way. Each event type is ingested both ways into the same
sent campaign (the store's events emptied in between), and `report --format
json` and `relaunch --dry-run --json` must then say the same, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, Seeded, open_store, seed
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.enums import OutboxState, WaveKind, WaveStatus
from campaignctl.store.tables import OUTBOX, WAVE

runner = CliRunner()

CAMPAIGN = "update-2027"
AT = "2027-03-01T10:00:00+01:00"  # an hour after the first send (storerows.T0)
NOW = "2027-03-02T09:00:00+01:00"
SUMMARY_TABLES = ("report_mark", "report_message", "report_cell", "report_open_wave",
                  "report_seen", "report_count", "report_first_answer")  # fmt: skip
TARGETS = ("non_openers", "non_responders", "failed")

# type -> (record key, message id naming its message, data, the record's figure it moves,
# records `relaunch --to failed` selects)
CASES = {
    "delivered": ("H001", "<H001.1@example.org>", {}, "delivered", 0),
    "bounced": ("H001", "H001.1@example.org", {"kind": "hard", "code": "5.1.1"}, "bounced_hard", 1),
    "opened": ("H001", "H001.1@example.org", {}, "opened", 0),
    "clicked": ("H001", "H001.1@example.org", {"url": "https://example.org"}, "clicked", 0),
    "form_opened": ("H001", "H001.1@example.org", {}, "form_opened", 0),
    "form_submitted": ("H001", "H001.1@example.org", {"phone": "x"}, "answered", 0),
    "unsubscribed": ("H001", "H001.1@example.org", {}, "unsubscribed", 0),
    "complained": ("H001", "H001.1@example.org", {}, "complained", 0),
    "sms_delivered": ("C002", "prov-C002", {}, "delivered", 0),
    "sms_failed": ("C002", "prov-C002", {}, "bounced_hard", 1),
    "sms_reply": ("C002", "prov-C002", {"text": "STOP"}, None, 0),
}


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)


def cli(root: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(root), *args])


def ingest(root: Path, *events: dict) -> list[str]:
    """`events ingest` of these events; its stderr lines."""
    path = root / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    result = cli(root, "events", "ingest", str(path))
    assert result.exit_code == 0, result.output
    return [line.replace(str(path), "FILE") for line in result.stderr.splitlines()]


def outcome(root: Path) -> dict:
    """What the user sees: the campaign's report, and who each relaunch would reach."""
    report = cli(root, "report", CAMPAIGN, "--format", "json")
    assert report.exit_code == 0, report.output
    seen = {"report": {k: v for k, v in json.loads(report.stdout).items() if k != "generated_at"}}
    for target in TARGETS:
        plan = cli(root, "relaunch", CAMPAIGN, "--to", target, "--dry-run", "--json")
        assert plan.exit_code == 0, plan.output
        seen[target] = json.loads(plan.stdout)
    return seen


def forget_events(seeded: Seeded) -> None:
    """Back to the store as sent: no events, no suppressions, no report summary (which
    `report` rebuilds when it is empty)."""
    with seeded.store.transaction() as conn:
        for table in ("event", "suppression", *SUMMARY_TABLES):
            conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture
def sent(scaffold: Path, backend: str) -> Seeded:
    return seed(scaffold)


@pytest.mark.parametrize("type_", list(CASES))
def test_an_event_by_campaign_and_record_counts_as_one_by_its_message(
    scaffold: Path, sent: Seeded, type_: str
) -> None:
    key, message_id, data, figure, failed = CASES[type_]
    before = outcome(scaffold)
    extra = {"data": data} if data else {}
    by_message = {"type": type_, "message_id": message_id, "at": AT, **extra}
    assert ingest(scaffold, by_message)[-1].startswith("read 1 line(s): 1 recorded, ")
    counted = outcome(scaffold)
    forget_events(sent)
    by_record = {"type": type_, "campaign": CAMPAIGN, "record": key, "at": AT, **extra}
    assert ingest(scaffold, by_record)[-1].startswith("read 1 line(s): 1 recorded, ")
    assert outcome(scaffold) == counted
    if figure is not None:  # the event moved the figure it is about, in the wave and in total
        totals, wave = counted["report"]["totals"], counted["report"]["waves"][0]["figures"]
        assert (totals[figure], wave[figure]) == (1, 1)
        assert before["report"]["totals"][figure] == 0
    assert counted["failed"]["selected"] == failed


def test_an_event_counts_for_the_last_message_sent_before_it(
    scaffold: Path, sent: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """H001 got wave 1 then wave 2 a week later: an open between the two is wave 1's."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-10T09:00:00+01:00")
    with sent.store.transaction() as conn:
        wave = conn.execute(
            sa.insert(WAVE).values(
                campaign_id=sent.campaign_id, number=2, kind=WaveKind.RELAUNCH,
                occurrence_key="update-2027/manual/2", status=WaveStatus.DONE,
                lock_id=sent.lock_id, created_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(
            sa.insert(OUTBOX).values(
                campaign_id=sent.campaign_id, wave_id=wave, record_id=sent.records["H001"],
                group_key="reservation@hotel-du-lac.example", segment="accommodation",
                channel="email", address="reservation@hotel-du-lac.example",
                state=OutboxState.SENT, attempts=1, message_id="H001.2@example.org",
                created_at=T0, updated_at=T0, sent_at=T0.replace(day=8),
            )
        )  # fmt: skip

    def opens(**target: str) -> list[dict]:
        return [
            {"type": "opened", "at": "2027-03-02T10:00:00+01:00", **target},
            {"type": "clicked", "at": "2027-03-09T10:00:00+01:00", **target},
        ]

    first, second = ({"message_id": f"H001.{n}@example.org"} for n in (1, 2))
    ingest(scaffold, opens(**first)[0], opens(**second)[1])
    by_message = outcome(scaffold)
    forget_events(sent)
    ingest(scaffold, *opens(campaign=CAMPAIGN, record="H001"))
    assert outcome(scaffold) == by_message
    waves = [w["figures"] for w in by_message["report"]["waves"]]
    assert [(w["opened"], w["clicked"]) for w in waves] == [(1, 0), (0, 1)]


def test_a_short_link_click_by_record_counts_for_its_sms_even_after_an_email(
    scaffold: Path, sent: Seeded
) -> None:
    """C002 got the SMS (prov-C002) then, later, an email: a click on the SMS's short link
    (`/q/`, `data.short`) is the SMS's, where another click by record is the email's."""
    with sent.store.transaction() as conn:
        conn.execute(
            sa.insert(OUTBOX).values(
                campaign_id=sent.campaign_id, wave_id=sent.wave_id, record_id=sent.records["C002"],
                segment="accommodation", channel="email", address="contact@camping.example",
                state=OutboxState.SENT, attempts=1, message_id="C002.2@example.org",
                created_at=T0, updated_at=T0, sent_at=T0.replace(minute=30),
            )
        )  # fmt: skip
    click = {"type": "clicked", "campaign": CAMPAIGN, "record": "C002", "at": AT}
    ingest(
        scaffold, {**click, "data": {"short": True}}, {**click, "data": {"url": "https://x.org"}}
    )
    with sent.store.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.data, o.channel FROM event e JOIN outbox o ON o.id = e.outbox_id "
                "WHERE e.type = 'clicked'"
            )
        ).all()
    channels = {json.dumps(data if isinstance(data, dict) else json.loads(data)): channel
                for data, channel in rows}  # fmt: skip
    assert channels == {'{"short": true}': "sms", '{"url": "https://x.org"}': "email"}


def test_an_open_by_a_grouped_record_is_the_open_of_the_email_it_shared(
    scaffold: Path, sent: Seeded
) -> None:
    """G001 and G002 share one email (G001.1): an open named by G002 is that email's."""
    ingest(scaffold, {"type": "opened", "message_id": "G001.1@example.org", "at": AT})
    by_message = outcome(scaffold)
    forget_events(sent)
    ingest(scaffold, {"type": "opened", "campaign": CAMPAIGN, "record": "G002", "at": AT})
    assert outcome(scaffold) == by_message
    assert by_message["report"]["totals"]["opened"] == 1
    # neither record of the shared address is a non-opener: 7 reached, 5 left
    assert by_message["non_openers"]["matching"] == 5


def test_an_event_before_any_message_to_its_record_is_said_not_attributable(
    scaffold: Path, sent: Seeded
) -> None:
    before = outcome(scaffold)
    lines = ingest(
        scaffold,
        # an hour before the first send (within the day the time window allows)
        {
            "type": "opened",
            "campaign": CAMPAIGN,
            "record": "H001",
            "at": "2027-03-01T08:00:00+01:00",
        },
        # C002 was sent an SMS, never an email: no email of it can have been delivered
        {"type": "delivered", "campaign": CAMPAIGN, "record": "C002", "at": AT},
        {"type": "opened", "campaign": "update-2072", "record": "H001", "at": AT},
        {"type": "opened", "campaign": CAMPAIGN, "record": "H999", "at": AT},
        {"type": "opened", "message_id": "H999.1@example.org", "at": AT},
    )
    assert lines == [
        'FILE:1: recorded, not attributable: no email of campaign "update-2027" was sent to '
        'record "H001" before 2027-03-01T07:00:00+00:00',
        'FILE:2: recorded, not attributable: no email of campaign "update-2027" was sent to '
        'record "C002" before 2027-03-01T09:00:00+00:00',
        'FILE:3: recorded, unknown: campaign "update-2072" is not in the store',
        'FILE:4: recorded, unknown: campaign "update-2027" reached no record "H999", and no '
        "single record has that key",
        'FILE:5: recorded, unknown: message "H999.1@example.org" is not in the store',
        "read 5 line(s): 0 recorded, 0 already recorded, 3 for an unknown message or record, "
        "2 not attributable to a message, 0 bad line(s) skipped; 0 suppression(s) added",
    ]
    assert outcome(scaffold) == before


def test_ingest_json_lists_what_is_not_counted(scaffold: Path, sent: Seeded) -> None:
    path = scaffold / "events.jsonl"
    path.write_text(
        json.dumps({"type": "opened", "campaign": CAMPAIGN, "record": "C002", "at": AT}) + "\n",
        encoding="utf-8",
    )
    result = cli(scaffold, "events", "ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "format_version": 1,
        "read": 1,
        "recorded": 0,
        "duplicates": 0,
        "unknown": 0,
        "unattributed": 1,
        "bad_lines": 0,
        "suppressions_added": 0,
        "suppressions": [],
        "problems": [],
        "not_counted": [
            {
                "line": 1,
                "message": 'not attributable: no email of campaign "update-2027" was sent to '
                'record "C002" before 2027-03-01T09:00:00+00:00',
            }
        ],
    }


def test_a_re_ingested_event_by_record_is_one_event(scaffold: Path, sent: Seeded) -> None:
    event = {"type": "clicked", "campaign": CAMPAIGN, "record": "H001", "at": AT}
    ingest(scaffold, event)
    assert ingest(scaffold, event, event)[-1].startswith("read 2 line(s): 0 recorded, 2 already ")
    with open_store(scaffold).read() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one() == 1
