"""Time `report` over a big store: 1,000,000 outbox rows and 3,000,000 events (targets ≤ 1 s).

Usage: python benchmarks/report.py [DIR] [--scale 1.0]

Builds DIR/store-SCALE.db (SQLite, the default store) once with INSERT … SELECT in
bulk: 200,000 records, 10 campaigns of different sizes, 2-4 waves each (an
initial wave, relaunches to ~55 % then ~35 % of it), email and SMS, ~3 % of
emails grouped by address through the lock's recipients, states as the send
engine writes them, and events as `events ingest` and the web side write them
(delivered, several opens per opener, clicks, form opened and submitted with
and without the message they came from, bounces, unsubscribes). Then times the
campaign list and the report of the largest campaign, three runs each, and
prints the best and the figures:

- built: the first report after the upgrade builds the report's summary from
  every row, once (untimed against the target);
- up to date: nothing changed since the previous report;
- after new activity: before each run, 10,000 new events (opens, clicks,
  answers by message and by record), 100 queued messages sent and 100 new
  messages, so the run includes bringing the summary up to date;
- full aggregation: the same figures from the raw rows (PostgreSQL's path, and
  what every report cost before the summary), once each.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from campaignctl.report.figures import campaign_list, campaign_report
from campaignctl.report.render import report_tables, summary_line
from campaignctl.store import Store

RECORDS = 200_000
# (name, type, initial wave size): sizes sum to ~ 1,000,000 messages with the relaunches
CAMPAIGNS = [
    ("mise-a-jour-2027", "questionnaire", 160_000),
    ("appel-cotisation-2027", "message", 100_000),
    ("medias-2027", "questionnaire", 75_000),
    ("charte-qualite-2027", "information", 50_000),
    ("rappel-renouvellement", "message", 40_000),
    ("bienvenue-adherents", "message", 30_000),
    ("taxe-sejour-guide", "information", 25_000),
    ("merci-mise-a-jour", "message", 20_000),
    ("enquete-satisfaction", "questionnaire", 15_000),
    ("mise-a-jour-2026", "questionnaire", 12_000),
]
SUMMARY_TABLES = ["report_mark", "report_message", "report_cell", "report_open_wave",
                  "report_seen", "report_count", "report_first_answer"]  # fmt: skip
SHARES = [1.0, 0.55, 0.35, 0.2]  # initial, relaunch 1, 2, 3 (as a share of the initial)
TS = "strftime('%Y-%m-%d %H:%M:%S', {}) || '.000000'"


def build(path: Path, scale: float) -> None:
    Store(f"sqlite:///{path}").ensure_schema()  # the real schema, by the real migrations
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    records = int(RECORDS * scale)
    with db:
        db.execute(
            f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {records})
            INSERT INTO record (id, audience, key, email, email_normalized, phone, category,
                                status, created_at, updated_at)
            SELECT i, 'providers', 'K' || i, 'r' || i || '@example.org', 'r' || i || '@example.org',
                   '+336' || (10000000 + i), 'hotel', 'active', '2027-01-01 00:00:00.000000',
                   '2027-01-01 00:00:00.000000' FROM n"""
        )
        db.execute(f"CREATE TEMP TABLE seq AS WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
                   f"SELECT i + 1 FROM n WHERE i < {records}) SELECT i FROM n")  # fmt: skip
        for c, (name, kind, size) in enumerate(CAMPAIGNS, start=1):
            size = int(size * scale)
            start = f"datetime('2027-01-05', '+{(c * 9) % 60} days', '+8 hours')"
            db.execute(
                "INSERT INTO campaign (id, name, type, category, content_hash, state, applied_at)"
                " VALUES (?, ?, ?, 'administrative', 'h', 'active', '2027-01-01 00:00:00.000000')",
                (c, name, kind),
            )
            db.execute(
                "INSERT INTO campaign_lock (id, campaign_id, created_at, definition_hash)"
                " VALUES (?, ?, '2027-01-01 00:00:00.000000', 'h')",
                (c, c),
            )
            offset = (c * 7919) % records
            # 3 % of the emails are grouped: two records per address, both in the lock
            db.execute(
                f"""INSERT INTO recipient (lock_id, record_id, channel, address, segment, group_key)
                SELECT {c}, 1 + (i + {offset} + d) % {records}, 'email', 'g' || i || '@x.org',
                       'seg-' || (i % 4), 'g' || i
                FROM seq, (SELECT 0 AS d UNION ALL SELECT 1) WHERE i < {size} AND i % 33 = 0"""
            )
            waves = len(SHARES) if c % 3 == 0 else 3 if c % 3 == 1 else 2
            for w, share in enumerate(SHARES[:waves], start=1):
                wave_id = c * 10 + w
                at = f"datetime({start}, '+{(w - 1) * 7} days')"
                status = "sending" if (w == waves and c % 4 == 0) else "done"
                db.execute(
                    f"""INSERT INTO wave (id, campaign_id, number, kind, occurrence_key,
                        scheduled_for, status, lock_id, created_at, started_at)
                    VALUES ({wave_id}, {c}, {w}, '{"initial" if w == 1 else "relaunch"}', 'w{w}',
                            {TS.format(at)}, '{status}', {c}, {TS.format(at)}, {TS.format(at)})"""
                )
                count = int(size * share)
                # email for 85 %, SMS for the rest; states: 93 % sent, 2 % bounced, 2 % failed,
                # 1.5 % suppressed, 1 % skipped, the rest queued on a sending wave
                db.execute(
                    f"""INSERT INTO outbox (campaign_id, wave_id, record_id, group_key, segment,
                        channel, address, state, reason, attempts, message_id, error, sms_parts,
                        created_at, updated_at, sent_at)
                    SELECT {c}, {wave_id}, 1 + (i + {offset}) % {records},
                      CASE WHEN i % 33 = 0 AND i % 20 < 17 THEN 'g' || i END,
                      'seg-' || (i % 4), CASE WHEN i % 20 < 17 THEN 'email' ELSE 'sms' END,
                      'a' || i, s.state,
                      CASE s.state WHEN 'suppressed' THEN 'unsubscribed'
                                   WHEN 'skipped' THEN 'max_messages_per_contact' END,
                      1, CASE WHEN s.state IN ('sent', 'bounced') THEN 'm{wave_id}.' || i END,
                      CASE WHEN s.state = 'failed' THEN '550 5.7.1 rejected' END,
                      CASE WHEN i % 20 >= 17 THEN 1 + (i % 7 = 0) END,
                      {TS.format(at)}, {TS.format(at)},
                      CASE WHEN s.state IN ('sent', 'bounced')
                           THEN {TS.format(f"datetime({at}, '+' || (i / 500) || ' seconds')")} END
                    FROM (SELECT i, CASE
                            WHEN i % 200 < 186 THEN 'sent' WHEN i % 200 < 190 THEN 'bounced'
                            WHEN i % 200 < 194 THEN 'failed' WHEN i % 200 < 197 THEN 'suppressed'
                            WHEN i % 200 < 199 THEN 'skipped'
                            ELSE '{"queued" if status == "sending" else "sent"}' END AS state
                          FROM seq WHERE i < {count}) s"""
                )
    with db:
        _events(db)
    db.execute("ANALYZE")
    db.close()


def _events(db: sqlite3.Connection) -> None:
    """Events for the sent messages, drawn with a hash of the outbox id (deterministic)."""
    h = "((o.id * 2654435761) % 1000)"
    when = "datetime(o.sent_at, '+' || ({h} * {m} % 4000) || ' minutes')"
    cols = "id, type, message_id, outbox_id, campaign_id, record_id, channel, at, data, received_at"

    def insert(type_: str, where: str, k: int = 1, mult: int = 1, outbox: bool = True,
               data: str = "NULL") -> None:  # fmt: skip
        at = TS.format(when.format(h=h, m=mult))
        outbox_id = "o.id" if outbox else "NULL"
        db.execute(
            f"""INSERT INTO event ({cols})
            SELECT '{type_}.{mult}.' || o.id || '.' || k.k, '{type_}', o.message_id, {outbox_id},
                   o.campaign_id, o.record_id, o.channel, {at}, {data}, {at}
            FROM outbox o, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) k
            WHERE o.state IN ('sent', 'bounced') AND k.k <= {k} AND ({where})"""
        )

    insert("delivered", f"o.channel = 'email' AND o.state = 'sent' AND {h} < 960")
    insert("sms_delivered", f"o.channel = 'sms' AND {h} < 950")
    insert("bounced", "o.state = 'bounced'", data='\'{"kind": "hard", "code": "5.1.1"}\'')
    insert("opened", f"o.channel = 'email' AND {h} < 420", k=3, mult=3)  # ~2.5 opens each
    insert("clicked", f"o.channel = 'email' AND {h} < 250", k=2, mult=5)
    insert("form_opened", f"{h} < 250", k=2, mult=7)
    insert("form_submitted", f"{h} < 90", mult=11)
    insert("form_submitted", f"{h} >= 90 AND {h} < 130", mult=13, outbox=False)  # by record
    insert("unsubscribed", f"{h} >= 990", outbox=False)
    insert("opened", f"o.channel = 'email' AND {h} >= 300 AND {h} < 420", k=1, mult=17)


def best(fn, runs: int = 3, before=None) -> tuple[float, object]:
    times, result = [], None
    for run in range(runs):
        if before is not None:
            before(run)
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    global WORST
    WORST = max(times)
    return min(times), result


WORST = 0.0  # the slowest of the last `best` runs


def activity(path: Path, round_: int, events: int = 10_000, sends: int = 100) -> None:
    """What happens between two reports: new events, queued messages sent, new messages."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA busy_timeout = 10000")
    kinds = ["opened", "opened", "clicked", "form_opened", "form_submitted"]
    run = uuid.uuid4().hex[:8]  # new ids at every run of the benchmark on the same store
    with db:
        for k, kind in enumerate(kinds):
            db.execute(
                f"""INSERT INTO event (id, type, message_id, outbox_id, campaign_id, record_id,
                    channel, at, data, received_at)
                SELECT 'more.{run}.{round_}.{k}.' || o.id, '{kind}', o.message_id,
                  CASE WHEN {k} = 4 AND o.id % 2 = 0 THEN NULL ELSE o.id END,
                  o.campaign_id, o.record_id, o.channel, '2027-04-01 10:00:00.000000', NULL,
                  '2027-04-01 10:00:00.000000'
                FROM outbox o WHERE o.state = 'sent'
                  AND o.id % 199 = {round_ * len(kinds) + k} LIMIT {events // len(kinds)}"""
            )
        db.execute(
            f"""UPDATE outbox SET state = 'sent', sent_at = '2027-04-01 09:00:00.000000',
                message_id = 'late.{run}.' || id
            WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' LIMIT {sends})"""
        )
        # and as many new messages of a wave still sending, sent at once (queued ones run out)
        db.execute(
            f"""INSERT INTO outbox (campaign_id, wave_id, record_id, group_key, segment, channel,
                address, state, attempts, message_id, sms_parts, created_at, updated_at, sent_at)
            SELECT campaign_id, wave_id, record_id, NULL, segment, channel,
              'new.{run}.{round_}.' || id, 'sent', 1, 'new.{run}.{round_}.' || id, sms_parts,
              created_at, updated_at, '2027-04-01 09:00:00.000000'
            FROM outbox WHERE wave_id = (SELECT MAX(id) FROM wave WHERE status = 'sending')
              AND state = 'sent' LIMIT {sends}"""
        )
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="report-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"store-{args.scale:g}.db"
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.scale)
        print(f"built {path} in {time.perf_counter() - t0:.1f}s")
    store = Store(f"sqlite:///{path}")
    store.ensure_schema()  # a store built by an older campaignctl is upgraded first, untimed
    with store.read() as conn:
        for table in ("record", "outbox", "event", "wave", "campaign"):
            n = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            print(f"{table:>8}: {n:>10,}")
    tz = "Europe/Paris"
    name = "mise-a-jour-2027"
    with store.transaction(bump=False) as conn:  # the summary is built again, timed
        for table in SUMMARY_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    t0 = time.perf_counter()
    campaign_list(store, timezone=tz)
    print(f"\nsummary built from every row (once, by the first report): "
          f"{time.perf_counter() - t0:.1f}s")  # fmt: skip
    seconds, listing = best(lambda: campaign_list(store, timezone=tz))
    print(f"\ncampaign list, up to date: {seconds:.3f}s (target ≤ 1 s)")
    seconds, _ = best(lambda: campaign_list(store, timezone=tz), before=lambda r: activity(path, r))
    print(f"campaign list, after new activity: {seconds:.3f}s, worst {WORST:.3f}s (target ≤ 1 s)")
    for table in report_tables(listing):
        for row in table.rows[:3]:
            print("  ", row)
    seconds, report = best(lambda: campaign_report(store, name, timezone=tz))
    print(f"\ncampaign report ({name}), up to date: {seconds:.3f}s (target ≤ 1 s)")
    seconds, report = best(
        lambda: campaign_report(store, name, timezone=tz), before=lambda r: activity(path, r + 3)
    )
    print(
        f"campaign report ({name}), after new activity: {seconds:.3f}s, worst {WORST:.3f}s "
        "(target ≤ 1 s)"
    )
    print("  ", summary_line(report))
    for wave in report.waves:
        print("   wave", wave.number, wave.kind, wave.figures.counts())
    t0 = time.perf_counter()
    full_list = campaign_list(store, timezone=tz, use_summary=False)
    middle = time.perf_counter()
    full = campaign_report(store, name, timezone=tz, use_summary=False)
    end = time.perf_counter()
    print(f"\nfull aggregation: list {middle - t0:.3f}s, report {end - middle:.3f}s")
    kept = (campaign_list(store, timezone=tz), campaign_report(store, name, timezone=tz))
    same = kept == (full_list, full)
    print(f"summary and full aggregation agree: {same}")
    store.close()
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
