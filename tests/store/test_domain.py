"""The store's domain queries (campaigns, suppressions, the outbox's rules, events, upsert),
each on SQLite and on PostgreSQL, as APScheduler 4's `test_datastores.py` runs one suite
over every data store.

The workspace is the scaffold's, its records imported by `audience import`; campaign,
lock, wave and outbox rows are those `apply`, `lock` and `send` leave (`storerows`).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, Seeded, seed

from campaignctl.delivery import outbox as delivery
from campaignctl.enums import Channel, OutboxState, SuppressionReason, WaveKind, WaveStatus
from campaignctl.errors import ExitCode, StateError, UsageError
from campaignctl.events.model import Event, Incoming
from campaignctl.events.record import record_events
from campaignctl.plan.targeting import NotContacted, materialized
from campaignctl.schedule.relaunch import load_campaign, plan_relaunch
from campaignctl.spec.models import EventType, RelaunchTarget
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import campaigns, suppressions
from campaignctl.store import outbox as rules
from campaignctl.store.suppressions import SuppressionEntry
from campaignctl.store.tables import CAMPAIGN, EVENT, LEASE, LOCK, OUTBOX, RECORD, SUPPRESSION, WAVE
from campaignctl.store.upsert import upsert

NAME = "update-2027"
H002 = "contact@cimes.example"  # H002's email: one message in wave 1 (storerows)


@pytest.fixture
def seeded(scaffold: Path, backend: str) -> Seeded:
    """Wave 1 of update-2027 sent to every record (one message per address), cap 2."""
    return seed(scaffold, options={"group_by_email": True, "max_messages_per_contact": 2})


def _wave(seeded: Seeded, number: int, status: WaveStatus = WaveStatus.DONE) -> int:
    with seeded.store.transaction() as conn:
        return conn.execute(
            sa.insert(WAVE).values(
                campaign_id=seeded.campaign_id, number=number, kind=WaveKind.RELAUNCH,
                occurrence_key=f"{NAME}/manual/{number}", status=status,
                lock_id=seeded.lock_id, created_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip


def _message(seeded: Seeded, wave_id: int, key: str, address: str, state: OutboxState) -> int:
    with seeded.store.transaction() as conn:
        return conn.execute(
            sa.insert(OUTBOX).values(
                campaign_id=seeded.campaign_id, wave_id=wave_id, record_id=seeded.records[key],
                channel="email", address=address, state=state, created_at=T0, updated_at=T0,
                message_id=f"{key}.{wave_id}@example.org",
            )
        ).inserted_primary_key[0]  # fmt: skip


# ============================================================================ campaigns


def test_a_campaign_is_found_by_name_with_its_lock_in_force(seeded: Seeded) -> None:
    with seeded.store.read() as conn:
        row = campaigns.by_name(conn, NAME)
        assert (row.id, row.name, row.category) == (seeded.campaign_id, NAME, "administrative")
        assert campaigns.names(conn) == [NAME]
        assert campaigns.state(conn, NAME) == "scheduled"
        assert campaigns.state(conn, "renewal-reminder") is None
        assert campaigns.lock_id_in_force(conn, seeded.campaign_id) == seeded.lock_id
    with seeded.store.transaction() as conn:
        conn.execute(sa.update(LOCK).values(released_at=T0))
    with seeded.store.read() as conn:
        assert campaigns.lock_in_force(conn, seeded.campaign_id) is None


@pytest.mark.parametrize(
    ("name", "defined", "error", "code", "text"),
    [
        (
            "update-2072", ["update-2027", "renewal-reminder"], UsageError, ExitCode.USAGE,
            "error: campaign 'update-2072' does not exist\n"
            "  hint: did you mean 'update-2027'?",
        ),
        (
            "renewal-reminder", ["update-2027", "renewal-reminder"], StateError, ExitCode.DATA,
            "error: campaign 'renewal-reminder' is not applied: the store does not know it yet\n"
            "  hint: run `campaignctl apply` first",
        ),
        (  # a caller without a workspace: what the store knows, with its names
            "update-2072", None, StateError, ExitCode.DATA,
            "error: campaign 'update-2072' is not applied: the store does not know it yet\n"
            "  hint: run `campaignctl apply` first, or did you mean 'update-2027'?",
        ),
    ],
    ids=["named-nowhere", "defined-not-applied", "no-workspace"],
)  # fmt: skip
def test_a_campaign_the_store_does_not_know_is_one_error_everywhere(
    seeded: Seeded, name: str, defined: list[str] | None, error: type, code: int, text: str
) -> None:
    with seeded.store.read() as conn, pytest.raises(error) as raised:
        campaigns.by_name(conn, name, defined=defined)
    assert (raised.value.exit_code, raised.value.render()) == (code, text)


def test_an_archived_campaign_is_not_sendable(seeded: Seeded) -> None:
    with seeded.store.transaction() as conn:
        assert campaigns.sendable(conn, NAME).id == seeded.campaign_id
        conn.execute(sa.update(CAMPAIGN).values(state="archived"))
    with seeded.store.read() as conn, pytest.raises(StateError) as raised:
        campaigns.sendable(conn, NAME)
    assert raised.value.message == "campaign 'update-2027' is archived: it sends nothing more"


# ============================================================================ suppressions


def _suppressed_records(seeded: Seeded, category: str | None, *, hashed: bool = True) -> list:
    """The keys of the records whose email `applies` (as a column) for that category."""
    with seeded.store.read() as conn:
        return list(
            conn.execute(
                sa.select(RECORD.c.key)
                .where(
                    suppressions.applies(
                        RECORD.c.email_normalized, "email", category, hashed=hashed
                    )
                )
                .order_by(RECORD.c.key)
            ).scalars()
        )


def _add(seeded: Seeded, *entries: SuppressionEntry) -> list[SuppressionEntry]:
    with seeded.store.transaction() as conn:
        return suppressions.add(conn, entries)


def test_a_suppression_applies_to_its_channel_and_category_or_to_all(seeded: Seeded) -> None:
    email, manual = Channel.EMAIL, SuppressionReason.MANUAL
    added = _add(
        seeded,
        SuppressionEntry(email, H002, None, SuppressionReason.BOUNCED, "test"),  # every category
        SuppressionEntry(email, "chezlulu@example.fr", "marketing", manual, "test"),
        SuppressionEntry(Channel.SMS, "+33612345678", None, manual, "test"),  # C001's phone
    )
    assert len(added) == 3
    assert _add(seeded, SuppressionEntry(email, H002, None, manual, "again")) == []  # existed

    assert _suppressed_records(seeded, "administrative") == ["H002"]
    assert _suppressed_records(seeded, "marketing") == ["H002", "R001"]
    with seeded.store.read() as conn:
        assert conn.execute(sa.select(suppressions.applies(H002, "email", "x"))).scalar()
        assert not conn.execute(sa.select(suppressions.applies(H002, "sms", "x"))).scalar()
        assert suppressions.present(conn, "email", "administrative") == suppressions.Present(1, 0)
        assert suppressions.present(conn) == suppressions.Present(3, 0)
        assert suppressions.reasons(
            conn, [("email", H002), ("email", "chezlulu@example.fr"), ("sms", H002)], "marketing"
        ) == {("email", H002): "bounced", ("email", "chezlulu@example.fr"): "manual"}
        reason = suppressions.reason(OUTBOX.c.address, OUTBOX.c.channel, None)
        rows = conn.execute(sa.select(OUTBOX.c.address, reason).order_by(OUTBOX.c.address)).all()
    assert [tuple(r) for r in rows if r[1]] == [(H002, "bounced")]

    with seeded.store.transaction() as conn:
        assert suppressions.remove(conn, "email", H002, None)
        assert not suppressions.remove(conn, "email", H002, None)
    assert _suppressed_records(seeded, "marketing") == ["R001"]


def test_a_forgotten_address_is_matched_by_its_hash_only(seeded: Seeded) -> None:
    _add(seeded, SuppressionEntry(Channel.EMAIL, H002, None, SuppressionReason.BOUNCED, "test"))
    forgotten = SuppressionEntry(
        Channel.EMAIL, H002, None, SuppressionReason.FORGOTTEN, "forget", keep_address=False
    )
    with seeded.store.transaction() as conn:
        suppressions.keep_hash_only(conn, H002)
        assert suppressions.add(conn, [forgotten]) == []  # one per channel, address, category
    with seeded.store.read() as conn:
        listed = [(r.channel, r.address, r.reason) for r in suppressions.listing(conn, "email")]
        assert listed == [("email", None, "bounced")]
        assert suppressions.listing(conn, "sms") == []
        assert suppressions.present(conn) == suppressions.Present(0, 1)
    assert _suppressed_records(seeded, None) == ["H002"]
    assert _suppressed_records(seeded, None, hashed=False) == []  # what `present` lets skip


# ============================================================================ the outbox


@pytest.mark.parametrize("state", list(OutboxState))
def test_plan_send_and_relaunch_count_the_same_messages_towards_the_cap(
    seeded: Seeded, scaffold: Path, state: OutboxState
) -> None:
    """H002 got wave 1 (sent); its message of wave 2 is in `state`; the cap is 2. Plan,
    send (the rows of a new wave) and relaunch agree on whether H002 is at the cap. They
    did not: `uncertain` counted for send only, `queued` for relaunch only, `sending` for
    send and relaunch but not for plan."""
    _message(seeded, _wave(seeded, 2), "H002", H002, state)
    capped = state in OutboxState.toward_cap()
    assert capped == (
        state not in (OutboxState.FAILED, OutboxState.SUPPRESSED, OutboxState.SKIPPED)
    )
    workspace = load_workspace(scaffold).require_valid()
    wave3 = _wave(seeded, 3, WaveStatus.SCHEDULED)
    with seeded.store.transaction() as conn:
        applied = load_campaign(conn, NAME)
        # plan (and lock): the targeting selection's reason
        with materialized(conn, workspace, applied.spec, date(2027, 3, 15)) as chosen:
            planned = dict(conn.execute(sa.select(chosen.c.key, chosen.c.reason)).all())
        # send: the state of the wave's row
        lock = delivery.lock_ref(conn, NAME)
        assert lock is not None
        wave = delivery.WaveRef(wave3, 3, WaveKind.RELAUNCH, WaveStatus.SCHEDULED, False)
        query = delivery.candidates(conn, lock, wave, 2).subquery()
        sent = dict(conn.execute(sa.select(query.c.address, query.c.state)).all())
        # relaunch: the plan of a wave to everybody, by email
        relaunch = plan_relaunch(conn, applied, RelaunchTarget.ALL, channels=["email"])
    assert planned["H002"] == (NotContacted.MAX_MESSAGES if capped else None)
    assert sent[H002] == (OutboxState.SKIPPED if capped else OutboxState.QUEUED)
    assert relaunch.capped == (1 if capped else 0)
    # nobody else is near the cap
    assert [k for k, why in planned.items() if why == NotContacted.MAX_MESSAGES] == (
        ["H002"] if capped else []
    )
    assert [a for a, s in sent.items() if s == OutboxState.SKIPPED] == ([H002] if capped else [])


def test_the_cap_counts_every_wave_but_the_one_being_made(seeded: Seeded) -> None:
    wave2 = _wave(seeded, 2, WaveStatus.SENDING)
    _message(seeded, wave2, "H002", H002, OutboxState.QUEUED)
    count = rules.toward_cap(seeded.campaign_id, "email", H002)
    others = rules.toward_cap(seeded.campaign_id, "email", H002, other_than_wave=wave2)
    by_record = rules.toward_cap(
        seeded.campaign_id, "sms", "+33600000000", record_id=seeded.records["H002"]
    )
    with seeded.store.read() as conn:
        assert conn.execute(sa.select(count, others, by_record)).one() == (2, 1, 2)
        assert [tuple(r) for r in conn.execute(rules.capped_addresses(seeded.campaign_id, 2))] == [
            ("email", H002)
        ]


def test_a_claim_takes_due_rows_once_and_an_outcome_only_the_holders_rows(
    seeded: Seeded,
) -> None:
    wave2 = _wave(seeded, 2, WaveStatus.SENDING)
    first = _message(seeded, wave2, "H001", "reservation@hotel-du-lac.example", OutboxState.QUEUED)
    later = _message(seeded, wave2, "H002", H002, OutboxState.QUEUED)
    with seeded.store.transaction() as conn:
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == later)
            .values(next_attempt_at=T0 + timedelta(hours=1))
        )
    lease = timedelta(minutes=5)
    with seeded.store.transaction(immediate=True) as conn:
        claimed = rules.claim(conn, wave2, "a:1", 10, T0, lease)
    with seeded.store.transaction(immediate=True) as conn:
        assert rules.claim(conn, wave2, "b:2", 10, T0, lease) == []  # nothing due left
    assert [row.id for row in claimed] == [first]
    row = claimed[0]
    with seeded.store.transaction() as conn:
        rules.outcome(conn, "b:2", [rules.RowOutcome(row, OutboxState.SENT)], T0)  # not its own
        assert conn.execute(sa.select(OUTBOX.c.state).where(OUTBOX.c.id == first)).scalar() == (
            "sending"
        )
        rules.outcome(conn, "a:1", [rules.RowOutcome(row, OutboxState.SENT, "m@x")], T0)
        done = conn.execute(
            sa.select(OUTBOX.c.state, OUTBOX.c.claimed_by, OUTBOX.c.attempts, OUTBOX.c.message_id)
            .where(OUTBOX.c.id == first)
        ).one()  # fmt: skip
    assert tuple(done) == ("sent", None, 1, "m@x")
    with seeded.store.read() as conn:
        due_later = conn.execute(
            sa.select(OUTBOX.c.id).where(rules.due(wave2, T0 + timedelta(hours=1)))
        ).scalars()
        assert list(due_later) == [later]


# ============================================================================ events


def test_a_hard_bounce_met_while_sending_goes_through_the_one_event_writer(
    seeded: Seeded,
) -> None:
    """The send engine's bounce is an event like one `events ingest` reads: linked to its
    message and record (record_key included), recorded once, and the suppression of its
    address for every category added by the same writer."""
    wave2 = _wave(seeded, 2, WaveStatus.SENDING)
    message = _message(seeded, wave2, "H002", H002, OutboxState.QUEUED)
    with seeded.store.transaction(immediate=True) as conn:
        (row,) = rules.claim(conn, wave2, "a:1", 10, T0, timedelta(minutes=5))
    bounce = rules.RowOutcome(
        row, OutboxState.BOUNCED, f"H002.{wave2}@example.org",
        error="550 5.1.1 User unknown", bounce_code="5.1.1",
    )  # fmt: skip
    for _ in range(2):  # a resumed send writing its journal again adds nothing
        delivery.record_outcomes(
            seeded.store, "a:1", [bounce], campaign_id=seeded.campaign_id, campaign=NAME, now=T0
        )
    with seeded.store.read() as conn:
        events = conn.execute(
            sa.select(
                EVENT.c.id, EVENT.c.type, EVENT.c.outbox_id, EVENT.c.campaign_id,
                EVENT.c.record_id, EVENT.c.record_key, EVENT.c.address, EVENT.c.channel,
                EVENT.c.data,
            )
        ).all()  # fmt: skip
        suppressed = conn.execute(
            sa.select(
                SUPPRESSION.c.channel, SUPPRESSION.c.address, SUPPRESSION.c.category,
                SUPPRESSION.c.reason, SUPPRESSION.c.source,
            )
        ).all()  # fmt: skip
    event_id = f"send:H002.{wave2}@example.org:bounced"
    assert [tuple(e) for e in events] == [
        (
            event_id, "bounced", message, seeded.campaign_id, seeded.records["H002"], "H002",
            H002, "email", {"kind": "hard", "code": "5.1.1", "reply": "550 5.1.1 User unknown"},
        )
    ]  # fmt: skip
    assert [tuple(s) for s in suppressed] == [("email", H002, None, "bounced", f"event:{event_id}")]
    # the same bounce reported again by the provider, under the same id: a duplicate
    again = Event(type=EventType.BOUNCED, message_id=f"H002.{wave2}@example.org")
    with seeded.store.transaction() as conn:
        done = record_events(conn, [Incoming(again, event_id)], now=T0)
    assert (done.recorded, done.duplicates, done.suppressions) == (0, 1, [])


# ============================================================================ upsert


def test_upsert_inserts_then_updates_only_where_allowed(seeded: Seeded) -> None:
    values = {
        "name": "job", "holder": "a:1", "operation": "test", "since": T0,
        "heartbeat_at": T0, "expires_at": T0 + timedelta(minutes=1),
    }  # fmt: skip

    def take(holder: str, now: object) -> bool:
        with seeded.store.transaction() as conn:
            result = upsert(
                conn, LEASE, {**values, "holder": holder}, key=["name"],
                where=sa.or_(LEASE.c.expires_at <= now, LEASE.c.holder == holder),
                returning=[LEASE.c.holder],
            )  # fmt: skip
            return result.first() is not None

    assert take("a:1", T0)  # inserted
    assert not take("b:2", T0)  # held by a:1: nothing written
    assert take("b:2", T0 + timedelta(minutes=2))  # expired: taken over
    with seeded.store.read() as conn:
        assert conn.execute(sa.select(LEASE.c.holder)).scalar_one() == "b:2"
