"""`record_events`: the one event writer (issue 22), in a producer's own transaction.

`events ingest` is one producer; the send engine and the web side record their
events through the same function, one event or a batch at a time.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import Seeded, open_store, seed

from campaignctl.events.model import Event, Incoming
from campaignctl.events.record import ingest_events, record_event, record_events
from campaignctl.events.responses import list_responses
from tests.processes import child_pids, running

NOW = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
AT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def sent(scaffold: Path, backend: str) -> Seeded:
    return seed(scaffold)


def bounce(message_id: str) -> Event:
    return Event(type="bounced", message_id=message_id, at=AT, data={"code": "5.1.1"})


def test_one_event_is_recorded_linked_and_suppresses_once(sent: Seeded) -> None:
    with sent.store.transaction() as conn:
        done = record_event(conn, bounce("H002.1@example.org"), "send:H002.1:bounced", now=NOW)
    assert (done.recorded, done.duplicates, done.refused) == (1, 0, [])
    assert done.suppressions == ["email contact@cimes.example (all categories, bounced)"]
    with sent.store.transaction() as conn:
        again = record_event(conn, bounce("H002.1@example.org"), "send:H002.1:bounced", now=NOW)
    assert (again.recorded, again.duplicates, again.suppressions) == (0, 1, [])
    with sent.store.read() as conn:
        row = conn.execute(
            sa.text("SELECT outbox_id, campaign_id, record_key, channel, address FROM event")
        ).one()
    assert tuple(row)[1:] == (sent.campaign_id, "H002", "email", "contact@cimes.example")


def test_an_event_outside_the_window_is_refused_not_raised(sent: Seeded) -> None:
    with sent.store.transaction() as conn:
        done = record_event(
            conn, Event(type="opened", message_id="H001.1@example.org", at=NOW.replace(year=2999)),
            "web:1", now=NOW,
        )  # fmt: skip
    assert done.recorded == 0
    assert [(p.line, p.message) for p in done.refused] == [
        (
            1,
            "at: 2999-03-02T08:00:00+00:00 is more than a day after now (2027-03-02T08:00:00+00:00)",
        )
    ]


def test_a_batch_counts_each_event_once(sent: Seeded) -> None:
    items = [
        Incoming(Event(type="opened", message_id="H001.1@example.org", at=AT), "a", 1),
        Incoming(Event(type="opened", message_id="H001.1@example.org", at=AT), "a", 2),
        Incoming(Event(type="clicked", campaign="update-2027", record="H001", at=AT), "b", 3),
        Incoming(Event(type="opened", campaign="update-2027", record="nobody", at=AT), "c", 4),
    ]
    with sent.store.transaction() as conn:
        done = record_events(conn, items, now=NOW)
    assert (done.recorded, done.duplicates, done.unknown, done.unattributed) == (2, 1, 1, 0)
    assert [p.line for p in done.not_counted] == [4]


def test_ingests_running_at_once_record_each_event_once(scaffold: Path, sent: Seeded) -> None:
    """Two producers with the same lines at the same time (a webhook retried while the
    export is ingested): every event once, counted once, on both stores."""
    lines = (
        b"".join(
            json.dumps(
                {
                    "type": "opened",
                    "id": f"e{n}",
                    "message_id": "H001.1@example.org",
                    "at": AT.isoformat(),
                }
            ).encode()
            + b"\n"
            for n in range(3000)
        )
        + json.dumps(
            {"type": "bounced", "message_id": "C001.1@example.org", "at": AT.isoformat()}
        ).encode()
    )
    summaries = []

    def run() -> None:
        store = open_store(scaffold)
        try:
            summaries.append(ingest_events(store, io.BytesIO(lines), now=NOW))
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(summaries) == 2
    assert sum(s.recorded for s in summaries) == 3001
    assert sum(s.duplicates for s in summaries) == 3001
    assert sum(s.suppressions_added for s in summaries) >= 1
    with open_store(scaffold).read() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one() == 3001
        assert conn.execute(sa.text("SELECT COUNT(*) FROM suppression")).scalar_one() == 1


def test_an_ingest_in_many_batches_counts_as_one_batch(
    sent: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are read ahead (in a thread) while the one before is stored, and several are
    staged before they are recorded at once: the figures, the bad lines (with their
    numbers), the rows and the responses are those of one batch holding everything, with
    duplicates, answers and bad lines on both sides of every batch and flush boundary."""
    from campaignctl.events import record

    good = [
        {"type": "opened", "message_id": "H001.1@example.org", "at": AT.isoformat(), "id": f"o{n}"}
        for n in range(30)
    ]
    for n in (3, 11, 24):  # the recipient corrects the form twice: the last answers count
        good[n] = {
            "type": "form_submitted",
            "message_id": "H001.1@example.org",
            "at": AT.isoformat(),
            "id": f"f{n}",
            "data": {"stars": n},
        }
    lines: list[bytes] = []
    for n, event in enumerate(good):
        lines.append(json.dumps(event).encode())
        if n % 4 == 1:
            lines.append(json.dumps(good[n - 1]).encode())  # a webhook retried
        if n % 5 == 2:
            lines.append(b"{not json")
        if n % 9 == 0:
            lines.append(b"")
    lines.append(json.dumps({"type": "opened", "message_id": "nobody@example.org"}).encode())
    data = b"\n".join(lines) + b"\n"

    def ingest(batch_size: int, flush_rows: int) -> tuple[dict, int, list]:
        monkeypatch.setattr(record, "BATCH_SIZE", batch_size)
        monkeypatch.setattr(record, "FLUSH_ROWS", flush_rows)
        with sent.store.transaction() as conn:
            conn.execute(sa.text("DELETE FROM event"))
            conn.execute(sa.text("DELETE FROM response"))
        summary = ingest_events(sent.store, io.BytesIO(data), now=NOW)
        with sent.store.read() as conn:
            stored = conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()
        answers = [(r.record, r.answers) for r in list_responses(sent.store)]
        return summary.as_json(), stored, answers

    whole, stored, answers = ingest(10_000, 10_000)
    assert (whole["recorded"], whole["duplicates"], whole["unknown"]) == (30, 8, 1)
    assert whole["bad_lines"] == 6 and stored == 31
    assert [p["line"] for p in whole["problems"]] == sorted(p["line"] for p in whole["problems"])
    assert answers == [("H001", {"stars": 24})]
    for size in (1, 3, 7):
        for flush in (1, 5, 10_000):
            assert ingest(size, flush) == (whole, stored, answers)


def test_a_record_deleted_between_linking_and_recording_is_linked_again(
    sent: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest links the events naming a message before its write transaction (in its
    reading process). When another writer deletes what one was linked to in between (an
    import's --prune deleting the record), the insert would break a foreign key: those
    events are linked again inside the transaction, nothing is lost or counted twice, and
    the others of the batch are recorded as they were linked."""
    from campaignctl.store import events as store_events

    looked_up = store_events.messages

    def then_pruned(conn: sa.Connection, ids: list[str]) -> dict:
        found = looked_up(conn, ids)
        with sent.store.transaction() as other:  # another command, committed meanwhile
            other.execute(sa.text("DELETE FROM record WHERE key = 'H002'"))
        return found

    monkeypatch.setattr(store_events, "messages", then_pruned)
    lines = [
        {"type": "opened", "message_id": f"{key}.1@example.org", "at": AT.isoformat(), "id": key}
        for key in ("H001", "H002")
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    summary = ingest_events(sent.store, io.BytesIO(data), now=NOW)
    figures = (summary.recorded, summary.duplicates, summary.unknown, summary.bad_lines)
    assert figures == (2, 0, 0, 0)
    with sent.store.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT e.id, e.record_id, e.record_key, o.message_id FROM event e "
                "JOIN outbox o ON o.id = e.outbox_id ORDER BY e.id"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("H001", sent.records["H001"], "H001", "H001.1@example.org"),
        ("H002", None, None, "H002.1@example.org"),  # its message kept, its record gone
    ]


def test_resolving_a_batch_never_scans_a_store_table(scaffold: Path) -> None:
    """Each statement resolving a batch starts from the batch and reaches the store's
    tables through their indexes: its cost follows the batch, not the outbox or recipient
    table (a scan of them for every batch made a big ingest quadratic). SQLite only: its
    planner knows nothing of the temporary batch table."""
    from campaignctl.store.events import BATCH, RESOLVE

    sent = seed(scaffold)  # on SQLite: PostgreSQL ANALYZEs the batch and plans each join
    scanned = []
    with sent.store.transaction() as conn:
        conn.execute(sa.schema.CreateTable(BATCH, if_not_exists=True))
        for statement in RESOLVE:
            plan = conn.execute(sa.text(f"EXPLAIN QUERY PLAN {statement}"), {"since": 0}).all()
            scans = [row[3] for row in plan if row[3].startswith("SCAN ")]
            scanned += [
                s for s in scans if s.split()[1] not in ("event_batch", "b", "reached", "latest")
                and not s.startswith("SCAN (subquery")
            ]  # fmt: skip
    assert scanned == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_killed_ingest_takes_its_reading_process_along_and_loses_nothing(
    scaffold: Path,
) -> None:
    """A big ingest reads in a child process (Linux). A kill -9 of the command ends that
    child too (it would keep reading and holding memory), and what the killed run
    committed stays recorded once: the next ingest of the same file records the rest."""
    seed(scaffold)
    count = 60_000  # a dozen batches: the child reads from the third on
    path = scaffold / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            line = {"type": "opened", "message_id": "H001.1@example.org", "id": f"o{n}"}
            out.write(json.dumps({**line, "at": AT.isoformat()}) + "\n")
    command = [sys.executable, "-c", "from campaignctl.cli.entry import main; main()"]
    env = {**os.environ, "CAMPAIGNCTL_NOW": NOW.isoformat()}
    killed = subprocess.Popen(
        [*command, "-w", str(scaffold), "events", "ingest", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (readers := child_pids(killed.pid)) and killed.poll() is None:
        assert time.monotonic() < deadline, "the ingest never started its reading process"
        time.sleep(0.02)
    assert readers, "the ingest ended before its reading process was seen"
    killed.kill()
    killed.wait()
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in readers):
        assert time.monotonic() < deadline, "the reading process outlived the killed command"
        time.sleep(0.05)
    done = subprocess.run(
        [*command, "-w", str(scaffold), "events", "ingest", str(path), "--json"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout)
    assert summary["read"] == count
    assert summary["recorded"] + summary["duplicates"] == count
    with open_store(scaffold).read() as conn:
        stored = conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()
    assert stored == count
