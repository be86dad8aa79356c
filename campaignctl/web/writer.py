"""Every hit the web side answers is stored first, through the one event writer.

`EventWriter.record` (any event) and `EventWriter.track` (an open or a click of a signed
link) queue the event and return once it is committed: the caller answers only then (a
crash loses no answered hit). Requests that arrive while a transaction is being written
wait for the next one, which takes them all: group commit, one transaction for many
concurrent hits, so that the store's commit rate does not bound the request rate.

Opens and clicks, most of the traffic, are inserted by one prepared statement from their
messages' outbox rows (`store.events.record_hits`); every other event, and a hit whose
Message-ID the outbox does not hold, goes through `campaignctl.events.record.
record_events`, in the same transaction. On SQLite a transaction of opens and clicks
alone is written in the event loop's own thread (it is short CPU work: in WAL mode a
commit does not wait for the disk, and a thread would only fight the requests for the
GIL); any other, and every one on PostgreSQL (it waits for the server), in a worker
thread. The workers of `serve --workers N` take turns on a lock file; while another
program holds SQLite's write lock (`send`, a long `events ingest`), the batch waits for it
in a thread: the loop goes on answering. This module is the web side's only caller of
the event writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import sqlalchemy as sa

from campaignctl import clock
from campaignctl.events.model import Event, Incoming
from campaignctl.events.record import Recording, record_events
from campaignctl.spec.models import EventType
from campaignctl.store import events as store_events
from campaignctl.store.store import Store, sqlite_busy

RETRIES = 3  # a transaction PostgreSQL rolled back to break a deadlock is written again
RETRIED_STATES = ("40P01", "40001")  # deadlock detected, serialization failure
ADVISORY_LOCK = 0x63_61_6D_70  # "camp": serve's writers take turns on it (PostgreSQL)


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


@dataclass
class _Pending:
    item: Incoming
    done: asyncio.Future[None]


@dataclass
class _Hit:
    id: str
    type: EventType  # opened or clicked
    message_id: str
    data: dict[str, Any] | None
    at: datetime
    done: asyncio.Future[None]

    def event(self) -> Incoming:
        # built from a token we signed: no validation needed (Event's rules hold by making)
        event = Event.model_construct(
            type=self.type,
            message_id=self.message_id,
            at=self.at,
            data=self.data or {},
            id=None,
            campaign=None,
            record=None,
            address=None,
            audience=None,
        )
        return Incoming(event, self.id)


class EventWriter:
    """Group-committing event writer of one worker process."""

    def __init__(self, store: Store, *, region: str = "FR", batch_max: int = 1000) -> None:
        self.store = store
        self.region = region
        self.batch_max = batch_max
        self._pending: list[_Pending] = []
        self._hits: list[_Hit] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Lock | None = None  # one transaction of this process at a time
        self.batches = 0  # transactions written (for the benchmark's note)
        # event ids: unique per process (a random prefix) and per hit (a counter), without
        # asking the kernel for random bytes on every hit
        self._prefix = f"web-{uuid.uuid4().hex}"
        self._serial = 0
        database = store.engine.url.database
        self._sqlite = store.dialect == "sqlite"
        self._lock_path = (
            f"{database}-serve.lock"
            if self._sqlite and database and database != ":memory:" and os.name == "posix"
            else None
        )
        self._lock_file: Any = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for pending in [*self._pending, *self._hits]:  # never answered: the connection drops
            if not pending.done.done():
                pending.done.set_exception(RuntimeError("server stopping"))

    def _next_id(self) -> str:
        self._serial += 1
        return f"{self._prefix}-{self._serial}"

    async def record(self, event: Event, event_id: str | None = None) -> None:
        """Store `event` (id: a fresh one per hit unless given); returns once committed."""
        if self._wake is None:
            raise RuntimeError("EventWriter.start() was not called")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(Incoming(event, event_id or self._next_id()), future))
        self._wake.set()
        await future

    async def track(self, type_: EventType, message_id: str, url: str | None = None) -> None:
        """Store an open (or a click on `url`) of the message `message_id`, now; returns
        once committed."""
        if self._wake is None:
            raise RuntimeError("EventWriter.start() was not called")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        data = None if url is None else {"url": url}
        self._hits.append(_Hit(self._next_id(), type_, message_id, data, clock.now(), future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        assert self._wake is not None and self._writing is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._writing:
                await self._write_pending()

    async def _write_pending(self) -> None:
        while self._pending or self._hits:
            # opens and clicks alone: one short statement, written right here; other events
            # (forms, unsubscribes: the full event writer) in a thread, the loop answering
            # the other requests meanwhile
            in_loop = self._sqlite and not self._pending
            if in_loop and not self._try_turn():
                # another worker writes: wait for its turn in a thread (the loop goes
                # on taking requests, which join this batch), then write here
                await anyio.to_thread.run_sync(self._wait_turn)
            hits = self._hits[: self.batch_max]
            del self._hits[: self.batch_max]
            batch = self._pending[: self.batch_max]
            del self._pending[: self.batch_max]
            waiting = [*hits, *batch]
            try:
                if in_loop:
                    try:
                        written = self._write_now(hits, [p.item for p in batch])
                    finally:
                        self._end_turn()
                    if not written:  # another program writes: wait for it in a thread
                        await anyio.to_thread.run_sync(
                            self._write_in_turn, hits, [p.item for p in batch]
                        )
                else:
                    await anyio.to_thread.run_sync(
                        self._write_in_turn, hits, [p.item for p in batch]
                    )
            except Exception as exc:  # each waiting request answers 503 on its own
                for pending in waiting:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
                continue
            self.batches += 1
            for pending in waiting:
                if not pending.done.done():
                    pending.done.set_result(None)
            await asyncio.sleep(0)  # let the requests that came meanwhile join the next

    def _write(self, hits: list[_Hit], items: list[Incoming]) -> Recording:
        """One transaction of the batch; again, up to RETRIES times, when PostgreSQL
        chose it as the victim of a deadlock (or a serialization failure) with another
        writer (`events ingest`, another program): it was rolled back whole, and every
        event id is fixed, so the retry records each event once."""
        for attempt in range(RETRIES + 1):
            try:
                return self._write_once(hits, items)
            except sa.exc.OperationalError as exc:
                if attempt == RETRIES or _sqlstate(exc) not in RETRIED_STATES:
                    raise
        raise AssertionError("unreachable")

    def _write_now(self, hits: list[_Hit], items: list[Incoming]) -> bool:
        """SQLite, in the event loop: write the batch if the write lock is free (True),
        else leave it (False) rather than sleep in SQLite's busy handler, the loop held."""
        try:
            self._write_once(hits, items, wait=False)
        except sa.exc.OperationalError as exc:
            if sqlite_busy(exc):
                return False
            raise
        return True

    def _write_once(
        self, hits: list[_Hit], items: list[Incoming], *, wait: bool = True
    ) -> Recording:
        now = clock.now().astimezone(UTC)
        with self.store.transaction(immediate=True, wait=wait) as conn:
            if items and not self._sqlite:
                # the workers of `serve --workers N` take turns for any other event than
                # opens and clicks (responses are updated in the order events come: two
                # batches could lock two of them in opposite orders), as on SQLite
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
            if hits:
                rows = [(h.id, str(h.type), h.message_id, h.at, h.data) for h in hits]
                unknown = store_events.record_hits(conn, rows, now)
                items = [*(h.event() for h in hits if h.id in unknown), *items]
            if not items:
                return Recording(recorded=len(hits))
            return record_events(conn, items, now=now, region=self.region)

    def _lock(self) -> Any:
        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a+b")  # noqa: SIM115 - kept open
        return self._lock_file

    def _try_turn(self) -> bool:
        """On SQLite, the workers of `serve --workers N` take turns on a lock file before
        asking for the database's write lock: the kernel wakes the next one as soon as the
        lock is free, where SQLite's busy handler would poll with sleeps of up to 100 ms.
        Takes the turn if it is free (True)."""
        if self._lock_path is None:
            return True
        import fcntl

        try:
            fcntl.flock(self._lock(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_turn(self) -> None:
        if self._lock_path is not None:
            import fcntl

            fcntl.flock(self._lock(), fcntl.LOCK_EX)

    def _end_turn(self) -> None:
        if self._lock_path is not None:
            import fcntl

            fcntl.flock(self._lock(), fcntl.LOCK_UN)

    def _write_in_turn(self, hits: list[_Hit], items: list[Incoming]) -> Recording:
        self._wait_turn()
        try:
            return self._write(hits, items)
        finally:
            self._end_turn()

    async def ingest(self, items: list[Incoming]) -> Recording:
        """Store the events of one API call in a transaction of their own; what was done."""
        if self._writing is None:
            raise RuntimeError("EventWriter.start() was not called")
        async with self._writing:
            return await anyio.to_thread.run_sync(self._write_in_turn, [], items)
