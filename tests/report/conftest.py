"""A store holding campaigns with known sends, events and responses, written as the engine will.

The demo audience is imported through the CLI; then campaigns, waves, a lock with
a grouped recipient, outbox rows (every state, with `sent_at`, `message_id`,
`error`, `reason`, `sms_parts`) and events (several opens per message, record
events with and without the message they came from) are written directly, so the
report is tested before the send engine and `events ingest` are merged.

The expected figures are written out in EXPECTED below, derived by hand from
the scenario (see each block's comment), not computed by code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import postgres_store_url
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.store import tables as t

NOW = "2027-03-16T07:00:00+00:00"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Scenario:
    """What the fixture wrote: the workspace, the store URL and record ids by index."""

    root: Path
    store_url: str
    records: list[int]
    campaign_ids: dict[str, int] = field(default_factory=dict)


class _Writer:
    def __init__(self, conn: sa.Connection, records: list[int]) -> None:
        self.conn, self.r = conn, records
        self._ids = count(1)

    def insert(self, table: Any, **values: Any) -> Any:
        result = self.conn.execute(sa.insert(table).values(**values))
        return result.inserted_primary_key[0]

    def campaign(self, name: str, type_: str, category: str, applied: str) -> int:
        return self.insert(
            t.CAMPAIGN,
            name=name,
            type=type_,
            category=category,
            content_hash="0" * 64,
            state="active",
            applied_at=at(applied),
        )

    def wave(self, campaign_id: int, number: int, kind: str, status: str, when: str, **kw) -> int:
        started = at(when) if status in ("sending", "done", "failed") else None
        return self.insert(
            t.WAVE,
            campaign_id=campaign_id,
            number=number,
            kind=kind,
            occurrence_key=f"{kind}-{number}",
            scheduled_for=at(when),
            status=status,
            created_at=at(when) - timedelta(days=1),
            started_at=started,
            finished_at=started + timedelta(minutes=5) if started and status == "done" else None,
            **kw,
        )

    def message(
        self,
        campaign_id: int,
        wave_id: int,
        record: int,
        segment: str,
        channel: str,
        state: str,
        sent: datetime | None = None,
        **kw: Any,
    ) -> int:
        rid = self.r[record]
        address = f"r{record}@example.org" if channel == "email" else f"+3361234{record:04d}"
        mid = f"{uuid.uuid4().hex}@campaignctl" if state in ("sent", "bounced") else None
        return self.insert(
            t.OUTBOX,
            campaign_id=campaign_id,
            wave_id=wave_id,
            record_id=rid,
            segment=segment,
            channel=channel,
            address=address,
            state=state,
            attempts=1 if state in ("sent", "bounced", "failed") else 0,
            message_id=mid,
            created_at=(sent or at("2027-02-01T00:00")) - timedelta(hours=1),
            updated_at=sent or at("2027-02-01T00:00"),
            sent_at=sent if state in ("sent", "bounced") else None,
            **kw,
        )

    def event(
        self,
        type_: str,
        when: str | datetime,
        *,
        campaign_id: int,
        record: int,
        outbox_id: int | None = None,
        **data: Any,
    ) -> None:
        instant = at(when) if isinstance(when, str) else when
        self.insert(
            t.EVENT,
            id=f"ev-{next(self._ids)}",
            type=type_,
            outbox_id=outbox_id,
            campaign_id=campaign_id,
            record_id=self.r[record],
            at=instant,
            data=data or None,
            received_at=instant + timedelta(seconds=30),
        )


def build_scenario(conn: sa.Connection, records: list[int]) -> dict[str, int]:
    w = _Writer(conn, records)
    ids: dict[str, int] = {}

    # ---- mise-a-jour-2027: the annual questionnaire, three waves -----------------------
    c = ids["mise-a-jour-2027"] = w.campaign(
        "mise-a-jour-2027", "questionnaire", "administrative", "2027-02-20T10:00"
    )
    lock = w.insert(t.LOCK, campaign_id=c, created_at=at("2027-02-28T10:00"), definition_hash="h")
    # one owner of two gîtes (records 20 and 21): one email listing both records
    for record in (20, 21):
        w.insert(
            t.RECIPIENT,
            lock_id=lock,
            record_id=records[record],
            channel="email",
            address="owner@example.org",
            segment="accommodation",
            group_key="owner@example.org",
        )
    w1 = w.wave(c, 1, "initial", "done", "2027-03-01T08:00", lock_id=lock)
    w2 = w.wave(c, 2, "relaunch", "done", "2027-03-08T08:00", lock_id=lock, target="non_responders")
    w3 = w.wave(c, 3, "relaunch", "sending", "2027-03-15T08:00", lock_id=lock, channels=["sms"])

    def sent1(i: int) -> datetime:
        return at("2027-03-01T08:00") + timedelta(seconds=i)

    # wave 1, accommodation × email: records 0-15 sent (14 bounced hard later, 15 soft),
    # 16-17 failed, 18 suppressed, 19 skipped, and the grouped email for records 20+21
    m1 = {}
    for i in range(16):
        state = "bounced" if i == 14 else "sent"
        m1[i] = w.message(c, w1, i, "accommodation", "email", state, sent1(i))
    for i in (16, 17):
        w.message(c, w1, i, "accommodation", "email", "failed", error="550 5.1.1 user unknown")
    w.message(c, w1, 18, "accommodation", "email", "suppressed", reason="unsubscribed")
    w.message(c, w1, 19, "accommodation", "email", "skipped", reason="in another active campaign")
    group = w.message(
        c, w1, 20, "accommodation", "email", "sent", sent1(20), group_key="owner@example.org"
    )
    for i in range(14):
        w.event("delivered", sent1(i) + timedelta(minutes=1), campaign_id=c, record=i,
                outbox_id=m1[i])  # fmt: skip
    w.event("delivered", "2027-03-01T08:02", campaign_id=c, record=20, outbox_id=group)
    w.event("bounced", "2027-03-01T08:03", campaign_id=c, record=14, outbox_id=m1[14],
            kind="hard", code="5.1.1")  # fmt: skip
    w.event("bounced", "2027-03-01T08:03", campaign_id=c, record=15, outbox_id=m1[15],
            kind="soft", code="4.2.2")  # fmt: skip
    for i in range(10):  # opened 0-9; record 0 opened three times: still one open
        for repeat in range(3 if i == 0 else 1):
            w.event("opened", f"2027-03-01T09:{10 + repeat:02d}", campaign_id=c, record=i,
                    outbox_id=m1[i])  # fmt: skip
    for i in range(6):  # clicked 0-5; record 0 twice
        for repeat in range(2 if i == 0 else 1):
            w.event("clicked", f"2027-03-01T09:{20 + repeat:02d}", campaign_id=c, record=i,
                    outbox_id=m1[i])  # fmt: skip
    for i in range(8):  # form opened 0-7, record 0 twice
        for repeat in range(2 if i == 0 else 1):
            w.event("form_opened", f"2027-03-01T09:{30 + repeat:02d}", campaign_id=c, record=i,
                    outbox_id=m1[i])  # fmt: skip
    for i in range(3):
        w.event("form_submitted", "2027-03-01T10:00", campaign_id=c, record=i, outbox_id=m1[i])
    w.event("form_submitted", "2027-03-02T09:00", campaign_id=c, record=3, outbox_id=m1[3])
    # 23:30 UTC is 00:30 the next day in Paris: this answer counts for 3 March
    w.event("form_submitted", "2027-03-02T23:30", campaign_id=c, record=4, outbox_id=m1[4])
    # record 7 answers through the link of the first email, after the relaunch went out:
    # the event names its message, so it counts for wave 1
    w.event("form_submitted", "2027-03-08T10:00", campaign_id=c, record=7, outbox_id=m1[7])
    w.event("complained", "2027-03-01T12:00", campaign_id=c, record=13, outbox_id=m1[13])

    # wave 1, restaurants × SMS: records 30-34 sent (34 failed at the operator)
    sms1 = {}
    for n, i in enumerate(range(30, 35)):
        sms1[i] = w.message(c, w1, i, "restaurants", "sms", "sent", sent1(40 + n),
                            sms_parts=2 if i == 32 else 1)  # fmt: skip
    for i in range(30, 34):
        w.event("sms_delivered", "2027-03-01T08:05", campaign_id=c, record=i, outbox_id=sms1[i])
    w.event("sms_failed", "2027-03-01T08:05", campaign_id=c, record=34, outbox_id=sms1[34])
    # record events known only by campaign + record: they belong to the last message before
    w.event("form_submitted", "2027-03-01T12:00", campaign_id=c, record=30)
    w.event("form_opened", "2027-03-01T12:30", campaign_id=c, record=31)

    # wave 2 (relaunch to non-responders), accommodation × email: records 5-13
    m2 = {}
    for i in range(5, 14):
        m2[i] = w.message(c, w2, i, "accommodation", "email", "sent",
                          at("2027-03-08T08:00") + timedelta(seconds=i))  # fmt: skip
        w.event("delivered", "2027-03-08T08:05", campaign_id=c, record=i, outbox_id=m2[i])
    for i in (5, 6, 7):
        w.event("opened", "2027-03-08T08:30", campaign_id=c, record=i, outbox_id=m2[i])
    w.event("form_submitted", "2027-03-08T09:00", campaign_id=c, record=5)
    w.event("form_submitted", "2027-03-09T09:00", campaign_id=c, record=5)  # again: still one
    w.event("form_submitted", "2027-03-09T14:00", campaign_id=c, record=6)
    w.event("form_opened", "2027-03-08T10:00", campaign_id=c, record=8)

    # wave 3 (relaunch by SMS, still sending): record 35 sent, record 36 queued
    w.message(c, w3, 35, "restaurants", "sms", "sent", at("2027-03-15T08:00"), sms_parts=1)
    w.message(c, w3, 36, "restaurants", "sms", "queued")

    # responses: 0-7 and 30 answered; 4 to process, 3 accepted, 2 rejected
    for n, i in enumerate([0, 1, 2, 3, 4, 30, 7, 5, 6]):
        status = "to_process" if n < 4 else "accepted" if n < 7 else "rejected"
        w.insert(t.RESPONSE, campaign_id=c, record_id=records[i], status=status,
                 submitted_at=at("2027-03-02T00:00"))  # fmt: skip

    # ---- appel-cotisation-2027: one email wave, no delivery receipts, 4 opens ------------
    c = ids["appel-cotisation-2027"] = w.campaign(
        "appel-cotisation-2027", "message", "administrative", "2027-02-10T10:00"
    )
    wa = w.wave(c, 1, "initial", "done", "2027-02-15T09:00")
    for i in range(40, 50):
        m = w.message(c, wa, i, "renewing-soon", "email", "sent",
                      at("2027-02-15T09:00") + timedelta(seconds=i))  # fmt: skip
        if i < 44:
            w.event("opened", "2027-02-15T10:00", campaign_id=c, record=i, outbox_id=m)

    # ---- taxe-sejour-guide: scheduled, nothing sent -------------------------------------
    c = ids["taxe-sejour-guide"] = w.campaign(
        "taxe-sejour-guide", "information", "information", "2027-03-10T10:00"
    )
    w.wave(c, 1, "initial", "scheduled", "2027-04-01T07:00")

    # ---- medias-2027: applied, never scheduled ------------------------------------------
    ids["medias-2027"] = w.campaign(
        "medias-2027", "questionnaire", "administrative", "2027-01-10T10:00"
    )
    return ids


def _import(root: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["--workspace", str(root), "audience", "import"], env=env)
    assert result.exit_code == 0, result.output


def _populate(root: Path, url: str, env: dict[str, str]) -> Scenario:
    from campaignctl.store import Store

    _import(root, env)
    store = Store(url, root=root)
    try:
        with store.transaction() as conn:
            records = list(conn.execute(sa.text("SELECT id FROM record ORDER BY key")).scalars())
            ids = build_scenario(conn, records)
    finally:
        store.close()
    return Scenario(root, url, records, ids)


@pytest.fixture
def reported(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """The demo workspace on SQLite with the scenario written into its store."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    return _populate(demo, "sqlite:///.campaignctl/store.db", {})


@pytest.fixture(params=["sqlite", "postgresql"])
def reported_any(
    request: pytest.FixtureRequest, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scenario]:
    """The same scenario on SQLite and on PostgreSQL (one fresh schema per test)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    if request.param == "sqlite":
        yield _populate(demo, "sqlite:///.campaignctl/store.db", {})
        return
    with postgres_store_url() as url:
        monkeypatch.setenv("CAMPAIGNCTL_STORE", url)
        yield _populate(demo, url, {"CAMPAIGNCTL_STORE": url})
