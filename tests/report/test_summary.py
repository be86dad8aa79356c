"""The report's summary (SQLite) against the full aggregation, as events and sends arrive.

Every report brings the summary up to date from what changed; here each step
changes the store the way the send engine, `events ingest` and the web side do
(new events of every kind, rows moving from queued to sent, a new wave, rows
left uncertain then sent), and the campaign report and the list read from the
summary must equal, figure for figure, those aggregated from the raw rows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from campaignctl.report.figures import campaign_list, campaign_report
from campaignctl.store import Store
from campaignctl.store import tables as t
from tests.report import expected as x
from tests.report.conftest import _Writer, at

CAMPAIGNS = ["mise-a-jour-2027", "appel-cotisation-2027", "taxe-sejour-guide", "medias-2027"]


@pytest.fixture
def store(reported):
    s = Store(reported.store_url, root=reported.root)
    yield s
    s.close()


def assert_same(store: Store) -> None:
    for name in CAMPAIGNS:
        kept = campaign_report(store, name, timezone="Europe/Paris", use_summary=True)
        full = campaign_report(store, name, timezone="Europe/Paris", use_summary=False)
        assert kept == full, name
    kept_list = campaign_list(store, timezone="Europe/Paris", use_summary=True)
    assert kept_list == campaign_list(store, timezone="Europe/Paris", use_summary=False)


def _summary_rows(store: Store) -> int:
    with store.read() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM report_cell")).scalar_one()


def test_the_summary_is_the_full_aggregation_as_events_and_sends_arrive(store, reported) -> None:
    assert _summary_rows(store) == 0  # nothing kept before the first report
    assert_same(store)
    first = campaign_report(store, "mise-a-jour-2027", timezone="Europe/Paris")
    assert first.totals == x.TOTALS  # the hand-derived figures, through the summary
    assert _summary_rows(store) > 0

    with store.transaction() as conn:
        campaign = reported.campaign_ids["mise-a-jour-2027"]
        w = _Writer(conn, reported.records)
        w._ids = iter(range(1000, 2000))
        ids = dict(conn.execute(sa.text(
            "SELECT record_id, id FROM outbox WHERE wave_id = (SELECT id FROM wave WHERE "
            "campaign_id = :c AND number = 1) AND state IN ('sent', 'bounced')"), {"c": campaign}
        ).all())  # fmt: skip

        def mid(i: int) -> int:
            return ids[reported.records[i]]

        # more events on messages already counted: new bits, repeated bits, bounces
        for i in (10, 11, 12):
            w.event("opened", "2027-03-10T09:00", campaign_id=campaign, record=i,
                    outbox_id=mid(i))  # fmt: skip
        w.event("opened", "2027-03-10T09:05", campaign_id=campaign, record=0, outbox_id=mid(0))
        w.event("clicked", "2027-03-10T09:06", campaign_id=campaign, record=9, outbox_id=mid(9))
        w.event("bounced", "2027-03-10T09:07", campaign_id=campaign, record=12,
                outbox_id=mid(12), kind="soft", code="4.2.2")  # fmt: skip
        # record 15 bounced soft before: a hard bounce now makes it hard
        w.event(
            "bounced",
            "2027-03-10T09:08",
            campaign_id=campaign,
            record=15,
            outbox_id=mid(15),
            code="5.1.1",
        )
        # neither kind nor code: hard
        w.event("bounced", "2027-03-10T09:09", campaign_id=campaign, record=11, outbox_id=mid(11))
        # record events by record only (the last message before them), and repeated ones
        w.event("form_submitted", "2027-03-10T10:00", campaign_id=campaign, record=9)
        w.event("form_submitted", "2027-03-10T11:00", campaign_id=campaign, record=9)
        w.event("form_opened", "2027-03-10T10:00", campaign_id=campaign, record=33)
        w.event("unsubscribed", "2027-03-10T12:00", campaign_id=campaign, record=10)
        w.event("complained", "2027-03-10T12:00", campaign_id=campaign, record=10,
                outbox_id=mid(10))  # fmt: skip
        # an answer earlier than the first one of record 3: the day moves
        w.event("form_submitted", "2027-03-01T20:00", campaign_id=campaign, record=3,
                outbox_id=mid(3))  # fmt: skip
    assert_same(store)

    # the wave still sending goes on: its queued SMS is sent, delivered and answered
    with store.transaction() as conn:
        w = _Writer(conn, reported.records)
        w._ids = iter(range(2000, 3000))
        queued = conn.execute(
            sa.text("SELECT id FROM outbox WHERE campaign_id = :c AND state = 'queued'"),
            {"c": campaign},
        ).scalar_one()
        sent_at = at("2027-03-16T08:00")
        conn.execute(
            sa.update(t.OUTBOX)
            .where(t.OUTBOX.c.id == queued)
            .values(state="sent", sent_at=sent_at, sms_parts=3, message_id="late@x")
        )
        w.event("sms_delivered", sent_at + timedelta(minutes=1), campaign_id=campaign,
                record=36, outbox_id=queued)  # fmt: skip
        w.event("form_submitted", sent_at + timedelta(hours=1), campaign_id=campaign, record=36)
        # a fourth wave: one message sent, one left uncertain, one failed, one skipped
        wave = w.wave(campaign, 4, "relaunch", "sending", "2027-03-16T09:00",
                      lock_id=conn.execute(sa.text("SELECT MAX(id) FROM campaign_lock")).scalar())  # fmt: skip
        when = at("2027-03-16T09:00")
        sent = w.message(campaign, wave, 20, "accommodation", "email", "sent", when,
                         group_key="owner@example.org")  # fmt: skip
        uncertain = w.message(campaign, wave, 22, "accommodation", "email", "uncertain")
        w.message(campaign, wave, 23, "accommodation", "email", "failed")
        w.message(campaign, wave, 24, "hotels", "email", "skipped", reason="max_messages")
        w.event("delivered", when + timedelta(minutes=1), campaign_id=campaign, record=20,
                outbox_id=sent)  # fmt: skip
        w.event("delivered", when + timedelta(minutes=1), campaign_id=campaign, record=22,
                outbox_id=uncertain)  # fmt: skip
        w.event("opened", when + timedelta(minutes=5), campaign_id=campaign, record=22,
                outbox_id=uncertain)  # fmt: skip
    assert_same(store)
    fourth = campaign_report(store, "mise-a-jour-2027", timezone="Europe/Paris").waves[3].figures
    assert (fourth.sent, fourth.uncertain, fourth.failed, fourth.skipped) == (1, 1, 1, 1)

    # the uncertain message turns out sent; the wave ends; more opens arrive
    with store.transaction() as conn:
        w = _Writer(conn, reported.records)
        w._ids = iter(range(3000, 4000))
        conn.execute(
            sa.update(t.OUTBOX)
            .where(t.OUTBOX.c.id == uncertain)
            .values(state="sent", sent_at=when, message_id="unc@x")
        )
        conn.execute(sa.text("UPDATE wave SET status = 'done' WHERE id = :w"), {"w": wave})
        w.event("clicked", when + timedelta(minutes=9), campaign_id=campaign, record=22,
                outbox_id=uncertain)  # fmt: skip
        w.event("form_submitted", when + timedelta(minutes=10), campaign_id=campaign, record=22)
    assert_same(store)
    final = campaign_report(store, "mise-a-jour-2027", timezone="Europe/Paris")
    assert final.waves[3].figures.sent == 2 and final.waves[3].figures.clicked == 1
    assert final.waves[3].figures.uncertain == 0
    assert final.totals.answered == x.TOTALS.answered + 3  # records 9, 36 and 22
    # 14 and the failed SMS, then 15 (hard after soft) and 11 (no kind, no code); 12 soft
    assert (final.totals.bounced_hard, final.totals.bounced_soft) == (4, 1)


def test_reports_keep_the_store_serial(store) -> None:
    before = store.serial()
    campaign_report(store, "mise-a-jour-2027", timezone="Europe/Paris")
    campaign_list(store, timezone="Europe/Paris")
    assert store.serial() == before  # a saved plan stays valid across reports


def test_a_backlog_is_taken_in_steps_to_the_same_figures(store, reported) -> None:
    from campaignctl.report import summary

    steps = 0
    done = False
    while not done:
        with store.transaction(immediate=True, bump=False) as conn:
            done = summary.refresh(conn, events=7, rows=5)
            steps += 1
        if steps == 4:  # an answer arrives while the backlog is being taken
            with store.transaction() as conn:
                w = _Writer(conn, reported.records)
                w._ids = iter(range(5000, 5100))
                w.event("form_submitted", "2027-03-12T10:00", record=12,
                        campaign_id=reported.campaign_ids["mise-a-jour-2027"])  # fmt: skip
    assert steps > 10
    assert_same(store)


def test_a_store_locked_by_a_long_writer_is_reported_from_the_raw_rows(
    reported, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from campaignctl.store import store as store_module

    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 50)
    s = Store(reported.store_url, root=reported.root)
    s.ensure_schema()
    writer = sqlite3.connect(reported.root / ".campaignctl" / "store.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # an import holding the write lock
    try:
        report = campaign_report(s, "mise-a-jour-2027", timezone="Europe/Paris")
        listing = campaign_list(s, timezone="Europe/Paris")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert report.totals == x.TOTALS
    assert [r.name for r in listing.rows][1] == "mise-a-jour-2027"
    assert _summary_rows(s) == 0  # nothing was kept: the figures came from the raw rows
    s.close()
