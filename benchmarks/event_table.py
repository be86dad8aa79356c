"""What storing events costs in today's `event` table and in the shapes issue 17 may need.

Usage: python benchmarks/event_table.py [--lines 1000000] [--records 100000]

`benchmarks/events.py` times `campaignctl events ingest` beside a bare `executemany` of the
same resolved rows into today's event table. This script asks where that bare insert's
time goes: it builds the same store and rows (SQLite, once), then inserts the rows with
the driver's `executemany`, in batches of FLUSH_ROWS each committed (as the ingest
commits), into a fresh copy of the store per variant of the table:

- today: the table as the migrations leave it, rows in the file's order;
- sorted: each batch sorted by message first (what the ingest does), and in batches of
  five times as many;
- without its secondary indexes; and also without foreign-key checks;
- an append-only log: rowid, an 8-byte unique key (a hash of the id), no other index and
  no foreign key; and the same log with two roll-ups upserted per batch (distinct
  message x type and record x type, with their first time and count), which readers
  would query instead of the secondary indexes.

Prints the CPU and wall seconds of each, and CPU ÷ today's sorted. The machine is
shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import events as bench  # benchmarks/events.py: the same store and rows

from campaignctl.events.record import FLUSH_ROWS, INGEST_CACHE_KIB
from campaignctl.store import Store

COLUMNS = ", ".join(bench.EVENT_COLUMNS)
MESSAGE = bench.EVENT_COLUMNS.index("outbox_id")
LOG = f"CREATE TABLE event (seq INTEGER PRIMARY KEY, k INTEGER NOT NULL, {COLUMNS})"
ROLLUPS = (
    """CREATE TABLE message_event (outbox_id INTEGER NOT NULL, type TEXT NOT NULL,
      first_at TEXT, count INTEGER, PRIMARY KEY (outbox_id, type)) WITHOUT ROWID""",
    """CREATE TABLE record_event (campaign_id INTEGER NOT NULL, record_id INTEGER NOT NULL,
      type TEXT NOT NULL, first_at TEXT, count INTEGER,
      PRIMARY KEY (campaign_id, record_id, type)) WITHOUT ROWID""",
)
UPSERTS = (
    """INSERT INTO message_event SELECT outbox_id, type, MIN(at), COUNT(*) FROM batch
      WHERE outbox_id IS NOT NULL GROUP BY outbox_id, type
      ON CONFLICT (outbox_id, type) DO UPDATE SET first_at = MIN(first_at, excluded.first_at),
      count = count + excluded.count""",
    """INSERT INTO record_event SELECT campaign_id, record_id, type, MIN(at), COUNT(*) FROM batch
      WHERE campaign_id IS NOT NULL AND record_id IS NOT NULL GROUP BY campaign_id, record_id, type
      ON CONFLICT (campaign_id, record_id, type) DO UPDATE SET
      first_at = MIN(first_at, excluded.first_at), count = count + excluded.count""",
)


def key(event_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True
    )


def by_message(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: r[MESSAGE] or 0)


def plain(db: sqlite3.Connection, rows: list[tuple]) -> None:
    marks = ", ".join("?" * len(bench.EVENT_COLUMNS))
    db.executemany(
        f"INSERT INTO event ({COLUMNS}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING", rows
    )


def logged(db: sqlite3.Connection, rows: list[tuple], rollups: bool = False) -> None:
    keyed = [(key(r[0]), *r) for r in rows]
    marks = ", ".join("?" * (len(bench.EVENT_COLUMNS) + 1))
    if not rollups:
        db.executemany(
            f"INSERT INTO event (k, {COLUMNS}) VALUES ({marks}) ON CONFLICT (k) DO NOTHING", keyed
        )
        return
    # the batch staged, the new events appended, the roll-ups counting only those
    db.execute("DELETE FROM batch")
    first = db.execute("SELECT COALESCE(MAX(seq), 0) FROM event").fetchone()[0]
    db.executemany(f"INSERT INTO batch (k, {COLUMNS}) VALUES ({marks})", keyed)
    db.execute(
        f"INSERT INTO event (k, {COLUMNS}) SELECT k, {COLUMNS} FROM batch WHERE true "
        "ON CONFLICT (k) DO NOTHING"
    )
    db.execute("DELETE FROM batch WHERE k NOT IN (SELECT k FROM event WHERE seq > ?)", (first,))
    for upsert in UPSERTS:
        db.execute(upsert)


def drop_secondary(db: sqlite3.Connection) -> None:
    db.execute("DROP INDEX ix_event_campaign")
    db.execute("DROP INDEX ix_event_record")


def log_table(db: sqlite3.Connection, rollups: bool = False) -> None:
    db.execute("DROP TABLE event")
    db.execute(LOG)
    db.execute("CREATE UNIQUE INDEX ix_event_key ON event (k)")
    if rollups:
        for table in ROLLUPS:
            db.execute(table)
        db.execute(f"CREATE TEMP TABLE batch (k INTEGER, {COLUMNS})")


# name -> (prepare the copy, rows of a batch -> rows, insert, foreign keys on, batch factor)
Variant = tuple[
    Callable[[sqlite3.Connection], None] | None,
    Callable[[list[tuple]], list[tuple]],
    Callable[..., None],
    bool,
    int,
]
VARIANTS: dict[str, Variant] = {
    "today, file order": (None, list, plain, True, 1),
    "today, sorted by message": (None, by_message, plain, True, 1),
    "today, sorted, batches x5": (None, by_message, plain, True, 5),
    "no secondary index": (drop_secondary, by_message, plain, True, 1),
    "no secondary index, no foreign keys": (drop_secondary, by_message, plain, False, 1),
    "log: 8-byte key, no other index": (log_table, list, logged, False, 1),
    "log + roll-ups": (
        lambda db: log_table(db, True),
        list,
        lambda db, r: logged(db, r, True),
        False,
        1,
    ),
}
REFERENCE = "today, sorted by message"


def run(
    base: Path, work: Path, batches: list[list[tuple]], variant: Variant
) -> tuple[float, float]:
    prepare, order, insert, foreign_keys, factor = variant
    path = work / "variant.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(base, path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA cache_size = -{INGEST_CACHE_KIB}")
    db.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    if prepare:
        prepare(db)
    joined = [
        [row for batch in batches[i : i + factor] for row in batch]
        for i in range(0, len(batches), factor)
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    for rows in joined:
        db.execute("BEGIN IMMEDIATE")
        insert(db, order(rows))
        db.execute("COMMIT")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db.close()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-event-table-"))
    try:
        base = work / "base.db"
        print(f"building the store: {args.records:,} records and messages…")
        store = Store(f"sqlite:///{base}")
        bench.build(store, args.records)
        store.close()
        batches = list(bench._reference_rows(args.lines, args.records, "sqlite"))
        count = sum(len(b) for b in batches)
        print(
            f"{count:,} events from {args.lines:,} lines, batches of {FLUSH_ROWS:,}, each committed"
        )
        figures = {name: run(base, work, batches, variant) for name, variant in VARIANTS.items()}
        reference = figures[REFERENCE][1]
        for name, (wall, cpu) in figures.items():
            rate = count / cpu
            print(
                f"{name:38s} {cpu:6.2f} s CPU {wall:6.2f} s wall  {rate:9,.0f} events per CPU s",
                end="",
            )
            print(f"  {cpu / reference:5.2f}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
