"""`campaignctl relaunch`: exactly the records that have not acted, within the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, open_store, seed
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.enums import OutboxState, WaveKind, WaveStatus
from campaignctl.store.tables import OUTBOX, RECORD, WAVE

runner = CliRunner()

EVENTS = [
    '{"type": "form_submitted", "campaign": "update-2027", "record": "H001"}',
    '{"type": "form_submitted", "campaign": "update-2027", "record": "G001"}',
    '{"type": "opened", "message_id": "G001.1@example.org"}',
    '{"type": "bounced", "message_id": "C001.1@example.org", "data": {"code": "5.1.1"}}',
]


@pytest.fixture
def answered(scaffold: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Wave 1 sent to everyone, H002 also got wave 2 (2 messages: the cap), H001 and G001
    answered, C001's email bounced."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-02T09:00:00+01:00")  # the events' time
    seeded = seed(scaffold, options={"group_by_email": True, "max_messages_per_contact": 2})
    with seeded.store.transaction() as conn:
        wave_id = conn.execute(
            sa.insert(WAVE).values(
                campaign_id=seeded.campaign_id,
                number=2,
                kind=WaveKind.RELAUNCH,
                occurrence_key="update-2027/manual/2",
                status=WaveStatus.DONE,
                lock_id=seeded.lock_id,
                created_at=T0,
            )
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(OUTBOX).values(
                campaign_id=seeded.campaign_id, wave_id=wave_id, record_id=seeded.records["H002"],
                channel="email", address="contact@cimes.example", state=OutboxState.SENT,
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
    (scaffold / "events.jsonl").write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    result = runner.invoke(
        app, ["-w", str(scaffold), "events", "ingest", str(scaffold / "events.jsonl")]
    )
    assert result.exit_code == 0, result.output
    return scaffold


def relaunch(root: Path, *args: str):
    return runner.invoke(app, ["-w", str(root), "relaunch", "update-2027", *args])


def test_relaunch_to_non_responders_reaches_exactly_the_others(answered: Path) -> None:
    result = relaunch(answered, "--channels", "email", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Relaunch of update-2027 to non_responders (after wave 2)\n"
        "+---------+---------------+---------+\n"
        "| channel | segment       | records |\n"
        "+---------+---------------+---------+\n"
        "| email   | accommodation | 1       |\n"
        "| email   | food          | 1       |\n"
        "+---------+---------------+---------+\n"
        "2 of 7 record(s) to relaunch; 3 not matching non_responders, 1 suppressed, "
        "1 at max_messages_per_contact.\n"
    )
    assert result.stderr == "dry run: no wave created\n"


def test_a_bounced_email_is_retried_on_sms_and_the_json_plan(answered: Path) -> None:
    result = relaunch(answered, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "format_version": 1,
        "campaign": "update-2027",
        "target": "non_responders",
        "channels": ["email", "sms"],
        "previous_wave": 2,
        "lock": 1,
        "reached": 7,
        "matching": 5,
        "suppressed": 0,
        "capped": 1,
        "selected": 4,
        "cells": [
            {"channel": "email", "segment": "accommodation", "records": 1},
            {"channel": "email", "segment": "food", "records": 1},
            {"channel": "sms", "segment": "accommodation", "records": 2},  # C001, C002
        ],
        "dry_run": True,
        "wave": None,
    }


def test_relaunch_sends_the_selection_through_the_send_engine(
    answered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-15T10:00:00+01:00")  # a Monday, no quiet hours
    result = relaunch(answered, "--to", "non_openers")
    assert result.exit_code == 0, result.output
    assert result.stderr == "wave 3 created: sending\nwave 3: 3 sent, 0 failed\n"
    outbox = OUTBOX
    with open_store(answered).read() as conn:
        sent = conn.execute(
            sa.select(outbox.c.channel, outbox.c.address)
            .where(outbox.c.wave_id == 3)
            .order_by(outbox.c.address)
        ).all()
    # G001 opened the email it shares with G002: neither is a non-opener; H001 answered
    # (so it opened); H002 is at max_messages_per_contact
    assert [tuple(r) for r in sent] == [
        ("sms", "+33612345678"),  # C001: its email bounced
        ("sms", "+33698765432"),  # C002: no email
        ("email", "chezlulu@example.fr"),
    ]
    # and the file transport wrote exactly those: one email, two SMS
    written = answered / ".campaignctl" / "outbox" / "update-2027"
    assert len(list(written.glob("*.eml"))) == 1
    sms = [json.loads(line) for f in written.glob("*.jsonl") for line in f.open()]
    assert sorted(m["to"] for m in sms) == ["+33612345678", "+33698765432"]


def test_relaunch_sends_its_wave_through_the_engine(
    answered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-15T10:00:00+01:00")  # a Monday, no quiet hours
    result = relaunch(answered)
    assert result.exit_code == 0, result.output
    assert "wave 3 created: sending" in result.stderr
    with open_store(answered).read() as conn:
        status = conn.execute(sa.select(WAVE.c.status).where(WAVE.c.number == 3)).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT count(*) FROM outbox o JOIN wave w ON w.id = o.wave_id WHERE w.number = 3"
            )
        ).scalar_one()
    assert status == WaveStatus.DONE
    assert rows == 4  # exactly the relaunch selection: 2 by email, 2 by SMS (one a bounce retried)


def test_an_unknown_target_is_a_usage_error(answered: Path) -> None:
    result = relaunch(answered, "--to", "sleepers")
    assert result.exit_code == 64
    assert result.stderr == (
        "error: --to 'sleepers': choose one of non_responders, non_openers, failed, all\n"
    )


def test_an_uncertain_message_counts_towards_the_cap_in_the_plan_and_the_send(
    answered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R001's wave-2 message is uncertain (maybe delivered before a crash): with wave 1, two
    messages, the cap. Relaunch counted only queued, sending, sent and bounced messages,
    so its plan selected R001 and sent it a third, while `send` counted uncertain ones:
    now the plan's figures are exactly what is sent, by the one rule."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-15T10:00:00+01:00")  # a Monday
    outbox = OUTBOX
    with open_store(answered).transaction() as conn:
        wave2, campaign_id = conn.execute(
            sa.select(WAVE.c.id, WAVE.c.campaign_id).where(WAVE.c.number == 2)
        ).one()
        record_id = conn.execute(sa.select(RECORD.c.id).where(RECORD.c.key == "R001")).scalar_one()
        conn.execute(
            sa.insert(outbox).values(
                campaign_id=campaign_id, wave_id=wave2, record_id=record_id, channel="email",
                address="chezlulu@example.fr", state=OutboxState.UNCERTAIN,
                created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
    planned = relaunch(answered, "--to", "non_openers", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert (plan["capped"], plan["selected"]) == (2, 2)  # H002 and now R001 at the cap
    result = relaunch(answered, "--to", "non_openers")
    assert result.exit_code == 0, result.output
    assert result.stderr == "wave 3 created: sending\nwave 3: 2 sent, 0 failed\n"
    with open_store(answered).read() as conn:
        sent = conn.execute(
            sa.select(outbox.c.address).where(outbox.c.wave_id == 3).order_by(outbox.c.address)
        ).scalars()
        assert list(sent) == ["+33612345678", "+33698765432"]  # C001, C002; not R001
