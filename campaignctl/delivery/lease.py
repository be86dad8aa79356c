"""Leases: work that must never overlap (sending one campaign) holds a row in the store.

A lease names its holder (host:pid), what it does and since when; the holder
renews it (heartbeat) while it works. Another process finds it held, says who
holds it, and either stops (exit 75) or waits up to a timeout. A lease whose
heartbeats stopped expires; on the same host a holder that no longer exists
releases it at once (a `kill -9` never blocks the next run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.delivery.outbox import aware, holder_is_dead
from campaignctl.errors import TemporaryFailure
from campaignctl.store.store import Store
from campaignctl.store.tables import LEASE

DEFAULT_TTL = timedelta(seconds=60)


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    operation: str
    since: datetime
    heartbeat_at: datetime
    expires_at: datetime


class LeaseHeld(TemporaryFailure):
    """Someone else holds the lease (exit 75)."""

    def __init__(self, info: LeaseInfo) -> None:
        self.info = info
        super().__init__(
            f"{info.name} is held by {info.holder} ({info.operation}) since "
            f"{info.since.isoformat(timespec='seconds')}, last heartbeat "
            f"{info.heartbeat_at.isoformat(timespec='seconds')}",
            hint="wait for it to finish, or pass --lock-timeout DURATION to wait for it",
        )


def _row(row: sa.Row) -> LeaseInfo:
    return LeaseInfo(
        row.name,
        row.holder,
        row.operation,
        aware(row.since),  # type: ignore[arg-type]
        aware(row.heartbeat_at),  # type: ignore[arg-type]
        aware(row.expires_at),  # type: ignore[arg-type]
    )


def try_acquire(
    store: Store, name: str, holder: str, operation: str, ttl: timedelta = DEFAULT_TTL
) -> LeaseInfo | None:
    """Take the lease; returns None on success, else who holds it."""
    now = clock.now()
    with store.transaction(immediate=True) as conn:
        query = sa.select(LEASE).where(LEASE.c.name == name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is not None:
            info = _row(row)
            if info.holder != holder and info.expires_at > now and not holder_is_dead(info.holder):
                return info
            conn.execute(LEASE.delete().where(LEASE.c.name == name))
        conn.execute(
            LEASE.insert().values(
                name=name,
                holder=holder,
                operation=operation,
                since=now,
                heartbeat_at=now,
                expires_at=now + ttl,
            )
        )
    return None


def acquire(
    store: Store,
    name: str,
    holder: str,
    operation: str,
    *,
    wait: timedelta | None = None,
    ttl: timedelta = DEFAULT_TTL,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Take the lease, waiting up to `wait` for its holder; raises LeaseHeld (exit 75)."""
    deadline = time.monotonic() + (wait.total_seconds() if wait else 0.0)
    while True:
        held = try_acquire(store, name, holder, operation, ttl)
        if held is None:
            return
        if time.monotonic() >= deadline:
            raise LeaseHeld(held)
        sleep(min(0.5, max(0.05, deadline - time.monotonic())))


def heartbeat(store: Store, name: str, holder: str, ttl: timedelta = DEFAULT_TTL) -> bool:
    """Renew the lease; False if it is no longer ours."""
    now = clock.now()
    with store.transaction(immediate=True) as conn:
        return bool(
            conn.execute(
                LEASE.update()
                .where(LEASE.c.name == name, LEASE.c.holder == holder)
                .values(heartbeat_at=now, expires_at=now + ttl)
            ).rowcount
        )


def release(store: Store, name: str, holder: str) -> None:
    with store.transaction(immediate=True) as conn:
        conn.execute(LEASE.delete().where(LEASE.c.name == name, LEASE.c.holder == holder))
