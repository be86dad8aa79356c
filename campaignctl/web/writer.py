"""Every hit the web side answers is stored first, through the one event writer.

`EventWriter.record` queues an event and returns once it is committed: the caller
answers only then (a crash loses no answered hit). Requests that arrive while a
transaction is being written wait for the next one, which takes them all: group
commit, one transaction for many concurrent hits (`campaignctl.events.record.
record_events` on the batch), so that the store's commit rate does not bound the
request rate. This module is the web side's only caller of the event writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from campaignctl.events.model import Event, Incoming
from campaignctl.events.record import Recording, record_events
from campaignctl.store.store import Store


@dataclass
class _Pending:
    item: Incoming
    done: asyncio.Future[None]


class EventWriter:
    """Group-committing event writer of one worker process."""

    def __init__(self, store: Store, *, region: str = "FR", batch_max: int = 1000) -> None:
        self.store = store
        self.region = region
        self.batch_max = batch_max
        self._pending: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written (for the benchmark's note)
        # event ids: unique per process (a random prefix) and per hit (a counter), without
        # asking the kernel for random bytes on every hit
        self._prefix = f"web-{uuid.uuid4().hex}"
        self._serial = 0
        database = store.engine.url.database
        self._lock_path = (
            f"{database}-serve.lock"
            if store.dialect == "sqlite"
            and database
            and database != ":memory:"
            and os.name == "posix"
            else None
        )
        self._lock_file: Any = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for pending in self._pending:  # never answered: the client sees the connection drop
            if not pending.done.done():
                pending.done.set_exception(RuntimeError("server stopping"))

    async def record(self, event: Event, event_id: str | None = None) -> None:
        """Store `event` (id: a fresh one per hit unless given); returns once committed."""
        if self._wake is None:
            raise RuntimeError("EventWriter.start() was not called")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if event_id is None:
            self._serial += 1
            event_id = f"{self._prefix}-{self._serial}"
        self._pending.append(_Pending(Incoming(event, event_id), future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.batch_max]
                del self._pending[: self.batch_max]
                try:
                    await anyio.to_thread.run_sync(self._write, [p.item for p in batch])
                except Exception as exc:  # each waiting request answers 503 on its own
                    for pending in batch:
                        if not pending.done.done():
                            pending.done.set_exception(exc)
                    continue
                self.batches += 1
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_result(None)

    def _write(self, items: list[Incoming]) -> Recording:
        with self._turn(), self.store.transaction(immediate=True) as conn:
            return record_events(conn, items, region=self.region)

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """On SQLite, the workers of `serve --workers N` take turns on a lock file before
        asking for the database's write lock: the kernel wakes the next one as soon as the
        lock is free, where SQLite's busy handler would poll with sleeps of up to 100 ms."""
        if self._lock_path is None:
            yield
            return
        import fcntl

        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a+b")  # noqa: SIM115 - kept open
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    async def ingest(self, items: list[Incoming]) -> Recording:
        """Store the events of one API call in a transaction of their own; what was done."""
        return await anyio.to_thread.run_sync(self._write, items)
