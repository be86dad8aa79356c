"""Leases: work that must never overlap (the scheduler, sending one campaign) (DESIGN.md §2).

A lease is a row in the store: name, holder (host:pid), operation, since,
heartbeat and expiry. Taking it is one statement (an upsert that only
overwrites a row that has expired or is already ours), so two processes on two
machines, on SQLite or PostgreSQL, can never both win. The holder renews it
while it works; a killed holder stops renewing and its lease expires, so the
next run takes over after at most one time-to-live — at once when the holder was
a process of this machine that no longer exists (a compare-and-swap on the dead
holder, so two successors cannot both take it). Released leases stay as rows
(expired at the release time) so that `scheduler status` can say when the last
pass ended.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl import clock
from campaignctl.errors import StateError, TemporaryFailure
from campaignctl.store.store import Store
from campaignctl.store.tables import LEASE

POLL_SECONDS = 0.5  # how often --lock-timeout retries


def this_holder() -> str:
    """host:pid, how leases and outbox claims name their holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(holder: str | None) -> bool:
    """True when `holder` is a process of this host that no longer exists.

    A process killed with -9 leaves its lease and claims behind; on the same machine
    we know at once that it is gone instead of waiting for the expiry. A holder on
    another host, or a pid now reused by another process, counts as alive.
    """
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    operation: str
    since: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def held(self, now: datetime) -> bool:
        return _aware(self.expires_at) > now

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "holder": self.holder,
            "operation": self.operation,
            "since": _aware(self.since).isoformat(),
            "heartbeat_at": _aware(self.heartbeat_at).isoformat(),
            "expires_at": _aware(self.expires_at).isoformat(),
            "held": self.held(now),
        }


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class HeldLease:
    """A lease this process holds: renew it while working, release it when done."""

    def __init__(self, store: Store, name: str, holder: str, operation: str, ttl: timedelta):
        self.store, self.name, self.holder, self.operation, self.ttl = (
            store, name, holder, operation, ttl,
        )  # fmt: skip

    def renew(self) -> None:
        """Push the expiry one time-to-live further; StateError if the lease was lost
        (released by hand, or taken over after it expired)."""
        now = clock.now()
        with self.store.transaction(immediate=True) as conn:
            updated = conn.execute(
                sa.update(LEASE)
                .where(LEASE.c.name == self.name, LEASE.c.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
            ).rowcount
        if not updated:
            raise StateError(
                f"lease {self.name!r} was lost (released by hand or taken over after it expired)",
                hint="another process may now be doing this work; check `campaignctl lease list`",
            )

    def release(self) -> None:
        """Let the next process take it at once (the row stays, expired now)."""
        now = clock.now()
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(LEASE)
                .where(LEASE.c.name == self.name, LEASE.c.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now)
            )

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _upsert(conn: Connection, values: dict[str, Any], now: datetime) -> bool:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(LEASE).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={k: statement.excluded[k] for k in values if k != "name"},
        where=sa.or_(LEASE.c.expires_at <= now, LEASE.c.holder == values["holder"]),
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for an upsert that did nothing
    return conn.execute(statement.returning(LEASE.c.name)).first() is not None


def try_acquire(
    store: Store, name: str, operation: str, ttl: timedelta, *, holder: str | None = None
) -> HeldLease | LeaseInfo:
    """Take the lease in one statement: the held lease, or who holds it now."""
    holder = holder or this_holder()
    now = clock.now()
    values = {
        "name": name,
        "holder": holder,
        "operation": operation,
        "since": now,
        "heartbeat_at": now,
        "expires_at": now + ttl,
    }
    with store.transaction(immediate=True) as conn:
        if _upsert(conn, values, now):
            return HeldLease(store, name, holder, operation, ttl)
        row = conn.execute(sa.select(LEASE).where(LEASE.c.name == name)).one()
        if holder_is_dead(row.holder):
            taken = conn.execute(
                sa.update(LEASE)
                .where(LEASE.c.name == name, LEASE.c.holder == row.holder)
                .values({k: v for k, v in values.items() if k != "name"})
            ).rowcount
            if taken:
                return HeldLease(store, name, holder, operation, ttl)
    return LeaseInfo(**row._mapping)


def acquire(
    store: Store,
    name: str,
    operation: str,
    ttl: timedelta,
    *,
    wait: timedelta | None = None,
    holder: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HeldLease:
    """Take the lease, waiting up to `wait` (real time) for its holder to let go;
    TemporaryFailure (exit 75) naming the holder otherwise."""
    deadline = time.monotonic() + (wait.total_seconds() if wait else 0)
    while True:
        result = try_acquire(store, name, operation, ttl, holder=holder)
        if isinstance(result, HeldLease):
            return result
        if time.monotonic() >= deadline:
            raise TemporaryFailure(
                f"another {_who(name)} holds the lease {name!r} since "
                f"{_aware(result.since):%Y-%m-%d %H:%M:%S %Z} ({result.holder}, "
                f"{result.operation}; expires {_aware(result.expires_at):%H:%M:%S %Z} "
                "unless renewed)",
                hint="retry later, wait with --lock-timeout DURATION, or if that process is "
                f"gone: campaignctl lease release {name} --yes",
            )
        sleep(POLL_SECONDS)


def _who(name: str) -> str:
    if name == "scheduler":
        return "scheduler"
    return "send" if name.startswith("send:") else "process"


def list_leases(store: Store) -> list[LeaseInfo]:
    with store.read() as conn:
        return [LeaseInfo(**r._mapping) for r in conn.execute(sa.select(LEASE).order_by("name"))]


def get_lease(store: Store, name: str) -> LeaseInfo | None:
    with store.read() as conn:
        row = conn.execute(sa.select(LEASE).where(LEASE.c.name == name)).first()
    return LeaseInfo(**row._mapping) if row else None


def release_lease(store: Store, name: str) -> LeaseInfo:
    """Delete a lease whoever holds it (`lease release NAME --yes`, for a holder that is gone)."""
    with store.transaction() as conn:
        row = conn.execute(sa.select(LEASE).where(LEASE.c.name == name)).first()
        if row is None:
            from campaignctl.errors import UsageError

            raise UsageError(
                f"there is no lease {name!r}", hint="`campaignctl lease list` shows them"
            )
        conn.execute(sa.delete(LEASE).where(LEASE.c.name == name))
    return LeaseInfo(**row._mapping)
