"""Time `campaignctl events ingest` on a big file, beside a bare executemany (goal ≥ 50,000/s).

Usage: python benchmarks/events.py [--lines 1000000] [--records 100000] [--store URL] [--keep DIR]

Builds a store (SQLite by default; `--store postgresql+psycopg://…` uses a fresh schema
there, dropped at the end) holding a sent campaign: RECORDS records, each sent one
message (an email for nine in ten, else an SMS; 3 % failed). Then writes LINES event
lines as delivery receipts, webhooks and the web side produce them:

- by message id (the Message-ID, or the SMS provider's id for SMS): delivered, opened
  (often several per message), clicked, form opened and submitted, hard and soft
  bounces, complaints, unsubscribes, SMS receipts and replies (some STOP);
- one in ten by campaign + record key instead;
- half with the provider's event `id`, half without (the line's hash is the id);
- 3 % repeat an earlier line (a webhook retried), 1 % name no known message, 1 % are
  bad (not JSON, an unknown type, a 400-character message id, a time in 2999).

Then runs `campaignctl events ingest FILE` as a user does (a subprocess), and prints
its rate, CPU time and peak RSS beside the reference: the same rows (those the ingest
recorded, already resolved to their message, campaign and record) written into the same
emptied event table by a bare `executemany` of the database driver, in batches of as
many rows as the ingest records at once (in the file's order), committed as often, with
the same SQLite page cache: what storing the rows costs with nothing else done. The
machine is shared: compare the ratios, and the rates per CPU second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from campaignctl.events.model import line_hash
from campaignctl.events.record import FLUSH_ROWS, INGEST_CACHE_KIB, TRANSACTION_SECONDS
from campaignctl.scaffold import create_workspace
from campaignctl.store import Store

CAMPAIGN = "newsletter-2027"
FIRST_SEND = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2027, 4, 1, 8, 0, tzinfo=UTC)  # CAMPAIGNCTL_NOW of the ingest
EVENT_COLUMNS = ("id", "type", "message_id", "outbox_id", "campaign_id", "record_id",
                 "record_key", "address", "channel", "at", "data", "received_at")  # fmt: skip
EMAIL_MIX = [("delivered", 40), ("opened", 30), ("clicked", 12), ("form_opened", 5),
             ("form_submitted", 3), ("bounced", 4), ("complained", 1),
             ("unsubscribed", 1)]  # fmt: skip
SMS_MIX = [("sms_delivered", 80), ("sms_reply", 10), ("sms_failed", 5), ("clicked", 5)]


def _stamp(at: datetime, dialect: str) -> object:
    """A time as the store keeps it (SQLAlchemy's SQLite text form, or the datetime)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else at


def build(store: Store, records: int) -> None:
    """RECORDS records, one campaign, its lock, one wave, one message each (sent or failed)."""
    store.ensure_schema()
    d = store.dialect
    first = _stamp(FIRST_SEND, d)
    with store.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO campaign (id, name, type, category, content_hash, state, applied_at,"
                " first_sent_at) VALUES (1, :n, 'message', 'marketing', 'h', 'active', :a, :f)"
            ),
            {"n": CAMPAIGN, "a": _stamp(FIRST_SEND - timedelta(days=10), d), "f": first},
        )
        conn.execute(
            sa.text(
                "INSERT INTO campaign_lock (id, campaign_id, created_at, definition_hash) "
                "VALUES (1, 1, :f, 'h')"
            ),
            {"f": first},
        )
        conn.execute(
            sa.text(
                "INSERT INTO wave (id, campaign_id, number, kind, occurrence_key, scheduled_for,"
                " status, lock_id, created_at, started_at) "
                "VALUES (1, 1, 1, 'initial', 'w1', :f, 'done', 1, :f, :f)"
            ),
            {"f": first},
        )
        for start in range(1, records + 1, 20_000):
            ids = range(start, min(start + 20_000, records + 1))
            conn.execute(
                sa.text(
                    "INSERT INTO record (id, audience, key, email, email_normalized, phone, "
                    "category, status, created_at, updated_at) VALUES (:i, 'providers', :k, :e, "
                    ":e, :p, 'hotel', 'active', :f, :f)"
                ),
                [
                    {
                        "i": i,
                        "k": f"K{i}",
                        "e": f"r{i}@example.org",
                        "p": f"+3361{i:07d}",
                        "f": first,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO recipient (lock_id, record_id, channel, address, segment) "
                    "VALUES (1, :i, :c, :a, 'all')"
                ),
                [{"i": i, **_channel(i)} for i in ids],
            )
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (id, campaign_id, wave_id, record_id, segment, channel,"
                    " address, state, attempts, message_id, provider_id, created_at, updated_at,"
                    " sent_at) VALUES (:i, 1, 1, :i, 'all', :c, :a, :s, 1, :m, :p, :f, :f, :t)"
                ),
                [
                    {
                        "i": i, **_channel(i), "s": "failed" if i % 33 == 0 else "sent",
                        "m": f"m{i}@bench.example", "p": f"p{i}" if i % 10 == 0 else None,
                        "f": first, "t": None if i % 33 == 0 else _stamp(_sent_at(i), d),
                    }
                    for i in ids
                ],
            )  # fmt: skip


def _channel(i: int) -> dict[str, str]:
    """Every tenth record is reached by SMS, the others by email."""
    if i % 10 == 0:
        return {"c": "sms", "a": f"+3361{i:07d}"}
    return {"c": "email", "a": f"r{i}@example.org"}


def _sent_at(i: int) -> datetime:
    return FIRST_SEND + timedelta(seconds=i // 50)


def events(lines: int, records: int, seed: int = 7) -> Iterator[tuple[bytes, dict | None]]:
    """(line, the event row it should give or None) for each line, deterministically."""
    rng = random.Random(seed)
    recent: list[bytes] = []
    for n in range(lines):
        roll = rng.random()
        if roll < 0.03 and recent:  # a webhook retried: the same line again
            yield rng.choice(recent), None
            continue
        if roll < 0.04:
            yield _bad(rng, n), None
            continue
        i = rng.randrange(1, records + 1)
        sms = i % 10 == 0
        type_ = _pick(rng, SMS_MIX if sms else EMAIL_MIX)
        at = _sent_at(i) + timedelta(minutes=rng.randrange(1, 30 * 24 * 60))
        line: dict = {"type": type_, "at": at.isoformat()}
        if rng.random() < 0.5:
            line["id"] = f"evt-{uuid.UUID(int=rng.getrandbits(128)).hex}"
        unknown = roll < 0.05
        by_record = not unknown and roll < 0.15
        if unknown:
            line["message_id"] = f"<gone{n}@elsewhere.example>"
        elif by_record:
            line["campaign"], line["record"] = CAMPAIGN, f"K{i}"
        else:
            line["message_id"] = f"p{i}" if sms else f"<m{i}@bench.example>"
        data = _data(rng, type_)
        if data:
            line["data"] = data
        raw = json.dumps(line).encode() + b"\n"
        recent = [*recent[-999:], raw]
        failed = i % 33 == 0
        yield raw, _row(line, raw, i, sms, unknown or (by_record and failed), at)


def _pick(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    return rng.choices([t for t, _ in mix], weights=[w for _, w in mix])[0]


def _data(rng: random.Random, type_: str) -> dict | None:
    if type_ == "bounced":
        return rng.choice([{"kind": "hard", "code": "5.1.1"}, {"kind": "soft", "code": "4.2.2"}])
    if type_ == "sms_reply":
        return {"text": rng.choice(["STOP", "Merci", "ok"])}
    if type_ == "clicked":
        return {"url": "https://example.org/offre?utm_source=newsletter"}
    if type_ == "form_submitted":
        return {"phone": "+33 6 12 34 56 78", "opening": "2027-04-01/2027-10-31"}
    if type_ == "opened":
        return {"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}
    return None


def _bad(rng: random.Random, n: int) -> bytes:
    return rng.choice([
        b"not json\n",
        b'{"type": "opend", "message_id": "m1@bench.example"}\n',
        json.dumps({"type": "opened", "message_id": "x" * 400}).encode() + b"\n",
        json.dumps({"type": "opened", "message_id": f"m{n}@bench.example",
                    "at": "2999-01-01T00:00:00Z"}).encode() + b"\n",
    ])  # fmt: skip


def _row(line: dict, raw: bytes, i: int, sms: bool, unresolved: bool, at: datetime) -> dict:
    """The event row `events ingest` writes for this line (the reference inserts the same)."""
    known = "campaign" in line or not unresolved  # the record is known
    return {
        "id": line.get("id") or line_hash(json.loads(raw), raw),
        "type": line["type"],
        "message_id": line.get("message_id", "").strip("<>") or None,
        "outbox_id": None if unresolved else i,
        "campaign_id": 1 if known else None,
        "record_id": i if known else None,
        "record_key": f"K{i}" if known else None,
        "address": (f"+3361{i:07d}" if sms else f"r{i}@example.org") if known else None,
        "channel": ("sms" if sms else "email") if known else None,
        "at": at,
        "data": json.dumps(line["data"]) if "data" in line else None,
        "received_at": NOW,
    }


def _reference_rows(lines: int, records: int, dialect: str) -> Iterator[list[tuple]]:
    """The rows the ingest should store, once each, in batches of FLUSH_ROWS (as many as
    the ingest records at once), in the order of the file."""
    seen: set[str] = set()
    batch: list[tuple] = []
    for _, row in events(lines, records):
        if row is None or row["id"] in seen:
            continue
        seen.add(row["id"])
        row["at"] = _stamp(row["at"], dialect)
        row["received_at"] = _stamp(row["received_at"], dialect)
        batch.append(tuple(row[c] for c in EVENT_COLUMNS))
        if len(batch) == FLUSH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def reference(store: Store, lines: int, records: int) -> tuple[float, float, int]:
    """Bare executemany of the rows into the emptied event table, FLUSH_ROWS rows per call,
    committed as the ingest commits (about every TRANSACTION_SECONDS): (seconds, CPU s, rows)."""
    d = store.dialect
    with store.transaction() as conn:
        conn.execute(sa.text("DELETE FROM event"))
    marker = "?" if d == "sqlite" else "%s"
    sql = (f"INSERT INTO event ({', '.join(EVENT_COLUMNS)}) "
           f"VALUES ({', '.join([marker] * len(EVENT_COLUMNS))})")  # fmt: skip
    wall = cpu = in_transaction = 0.0
    count = 0
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if d == "sqlite":  # the page cache the ingest works with
            cursor.execute(f"PRAGMA cache_size = -{INGEST_CACHE_KIB}")
        for rows in _reference_rows(lines, records, d):
            t0, c0 = time.perf_counter(), time.process_time()
            if d == "sqlite" and not in_transaction:
                cursor.execute("BEGIN")  # the store's connections leave transactions to us
            cursor.executemany(sql, rows)
            in_transaction += time.perf_counter() - t0
            if in_transaction >= TRANSACTION_SECONDS:
                raw.commit()
                in_transaction = 0.0
            wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
            count += len(rows)
        t0, c0 = time.perf_counter(), time.process_time()
        raw.commit()
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    finally:
        raw.close()
    return wall, cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--store", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-events-"))
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / "ws"
    if not root.exists():
        create_workspace(root)
    schema = None
    if args.store:
        schema = f"bench_events_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.store, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.store}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{folder / 'store.db'}"
        (folder / "store.db").unlink(missing_ok=True)
    store = Store(url)
    try:
        print(f"building the store ({store.dialect}): {args.records:,} records and messages…")
        build(store, args.records)
        path = folder / "events.jsonl"
        with path.open("wb") as out:
            for raw, _ in events(args.lines, args.records):
                out.write(raw)
        size = path.stat().st_size
        env = {**os.environ, "CAMPAIGNCTL_STORE": url, "CAMPAIGNCTL_NOW": NOW.isoformat()}
        command = [sys.executable, "-c", "from campaignctl.cli.entry import main; main()",
                   "-w", str(root), "events", "ingest", str(path), "--json"]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        ours = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"events ingest failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours_cpu, peak_mib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        summary = json.loads(done.stdout)
        bare, bare_cpu, rows = reference(store, args.lines, args.records)
    finally:
        store.close()
        if schema:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    stored = summary["recorded"] + summary["unknown"] + summary["unattributed"]
    print(
        f"events ingest: {args.lines:,} lines ({size / 1e6:.0f} MB) in {ours:.2f} s "
        f"({ours_cpu:.2f} s CPU): {args.lines / ours:,.0f} lines/s "
        f"({args.lines / ours_cpu:,.0f} per CPU second); peak RSS {peak_mib:.0f} MiB\n"
        f"  {summary['recorded']:,} recorded, {summary['duplicates']:,} already recorded, "
        f"{summary['unknown']:,} unknown, {summary['unattributed']:,} not attributable, "
        f"{summary['bad_lines']:,} bad lines, {summary['suppressions_added']:,} suppressions\n"
        f"bare executemany of the same {rows:,} rows ({stored:,} stored by the ingest): "
        f"{bare:.2f} s ({bare_cpu:.2f} s CPU): {rows / bare:,.0f} rows/s "
        f"({rows / bare_cpu:,.0f} per CPU second)\n"
        f"ratio ingest ÷ bare: {(args.lines / ours) / (rows / bare):.2f} (wall), "
        f"{(args.lines / ours_cpu) / (rows / bare_cpu):.2f} (CPU)"
    )


if __name__ == "__main__":
    main()
