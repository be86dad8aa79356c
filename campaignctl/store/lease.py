"""Leases: work that must never overlap (the scheduler, sending one campaign) (DESIGN.md §2).

A lease is a row in the store: name, holder, operation, since, heartbeat and
expiry. Taking it is one statement (an upsert that only overwrites a row that
has expired or is already ours), so two processes on two machines, on SQLite or
PostgreSQL, can never both win. The holder renews it while it works; a killed
holder stops renewing and its lease expires, so the next run takes over after at
most one time-to-live — at once when the holder is provably a process of this
kernel and PID namespace that no longer exists (a compare-and-swap on the dead
holder, so two successors cannot both take it). A holder names itself
`host:pid boot=BOOT_ID pidns=INODE`: a pid means a process only inside one PID
namespace of one running kernel, and two containers share a host name but not a
PID namespace. Released leases stay as rows (expired at the release time) so
that `scheduler status` can say when the last pass ended.
"""

from __future__ import annotations

import enum
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl import clock
from campaignctl.clock import aware
from campaignctl.errors import StateError, TemporaryFailure, UsageError
from campaignctl.store.store import Store
from campaignctl.store.tables import LEASE
from campaignctl.store.upsert import upsert

POLL_SECONDS = 0.5  # how often --lock-timeout retries
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
PID_NAMESPACE_FILE = Path("/proc/self/ns/pid")


class Whereabouts(enum.StrEnum):
    """Where a holder runs, seen from this process: whether its pid can be checked here."""

    HERE = "here"  # this kernel boot and PID namespace: a dead pid is seen at once
    OTHER_NAMESPACE = "other_namespace"  # this kernel, another PID namespace (a container)
    OTHER_HOST = "other_host"  # another kernel boot: another machine, or this one rebooted
    UNKNOWN = "unknown"  # the holder does not say (an older campaignctl, or no /proc)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease or claims outbox rows: host:pid, and the kernel boot and PID
    namespace in which that pid names a process (None where /proc does not say)."""

    host: str
    pid: int | None
    boot_id: str | None = None
    pid_namespace: int | None = None

    @classmethod
    def this_process(cls) -> Holder:
        boot_id, namespace = _this_kernel()
        return cls(socket.gethostname(), os.getpid(), boot_id, namespace)

    @classmethod
    def parse(cls, text: str) -> Holder:
        """Read `host:pid [boot=ID pidns=INODE]`; a holder written by an older campaignctl
        (`host:pid`) or by hand has no boot id and PID namespace."""
        head, *fields = text.split() or [""]
        host, _, pid = head.rpartition(":")
        found = dict(field.partition("=")[::2] for field in fields)
        namespace = found.get("pidns", "")
        return cls(
            host if pid.isdigit() else head,
            int(pid) if pid.isdigit() else None,
            found.get("boot") or None,
            int(namespace) if namespace.isdigit() else None,
        )

    def __str__(self) -> str:
        if self.boot_id is None or self.pid_namespace is None:
            return self.label
        return f"{self.label} boot={self.boot_id} pidns={self.pid_namespace}"

    @property
    def label(self) -> str:
        """host:pid, as messages name the holder."""
        return f"{self.host}:{self.pid}" if self.pid is not None else self.host

    def whereabouts(self) -> Whereabouts:
        boot_id, namespace = _this_kernel()
        if self.boot_id is None or self.pid_namespace is None or boot_id is None:
            return Whereabouts.UNKNOWN
        if self.boot_id != boot_id:
            return Whereabouts.OTHER_HOST
        if self.pid_namespace != namespace:
            return Whereabouts.OTHER_NAMESPACE
        return Whereabouts.HERE


def _this_kernel() -> tuple[str | None, int | None]:
    """(boot id, inode of this process's PID namespace); None each where /proc lacks them."""
    try:
        boot_id = BOOT_ID_FILE.read_text(encoding="ascii").strip() or None
    except OSError:
        boot_id = None
    try:
        namespace: int | None = PID_NAMESPACE_FILE.stat().st_ino
    except OSError:
        namespace = None
    return boot_id, namespace


def this_holder() -> str:
    """How leases and outbox claims name this process: `host:pid boot=ID pidns=INODE`."""
    return str(Holder.this_process())


def holder_is_dead(holder: str | None) -> bool:
    """True when `holder` is provably a process of this kernel boot and PID namespace
    that no longer exists.

    A process killed with -9 leaves its lease and claims behind; when it ran beside us
    we know at once that it is gone instead of waiting for the expiry. Anywhere else
    (another host, another container with the same host name, a holder written by an
    older campaignctl that does not say where it ran), and a pid now reused by another
    process, it counts as alive: its lease expires instead.
    """
    if not holder:
        return False
    who = Holder.parse(holder)
    if who.pid is None or who.whereabouts() != Whereabouts.HERE:
        return False
    try:
        os.kill(who.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseState(enum.StrEnum):
    HELD = "held"
    STALE = "stale"  # its holder is gone: the next run takes it over at once
    EXPIRED = "expired"  # its heartbeats stopped: the next run takes it over


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    operation: str
    since: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def state(self, now: datetime) -> LeaseState:
        """Held, expired (the next run takes it over), or stale: not expired yet, but its
        holder is provably gone (`holder_is_dead`), so nothing keeps it alive."""
        if aware(self.expires_at) <= now:
            return LeaseState.EXPIRED
        if holder_is_dead(self.holder):
            return LeaseState.STALE
        return LeaseState.HELD

    def held(self, now: datetime) -> bool:
        return self.state(now) == LeaseState.HELD

    def as_json(self, now: datetime) -> dict[str, Any]:
        who = Holder.parse(self.holder)
        return {
            "name": self.name,
            "holder": self.holder,
            "host": who.host,
            "pid": who.pid,
            "boot_id": who.boot_id,
            "pid_namespace": who.pid_namespace,
            "where": who.whereabouts().value,
            "operation": self.operation,
            "since": aware(self.since).isoformat(),
            "heartbeat_at": aware(self.heartbeat_at).isoformat(),
            "expires_at": aware(self.expires_at).isoformat(),
            "state": self.state(now).value,
            "held": self.held(now),
        }


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
    # RETURNING, not rowcount: drivers disagree on rowcount for an upsert that did nothing
    result = upsert(
        conn, LEASE, values, key=["name"],
        where=sa.or_(LEASE.c.expires_at <= now, LEASE.c.holder == values["holder"]),
        returning=[LEASE.c.name],
    )  # fmt: skip
    return result.first() is not None


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
    timezone: str = "UTC",
) -> HeldLease:
    """Take the lease, waiting up to `wait` (real time) for its holder to let go;
    TemporaryFailure (exit 75) naming the holder otherwise, its times in `timezone` (the
    workspace's: a person reads them)."""
    deadline = time.monotonic() + (wait.total_seconds() if wait else 0)
    zone = ZoneInfo(timezone)
    while True:
        result = try_acquire(store, name, operation, ttl, holder=holder)
        if isinstance(result, HeldLease):
            return result
        if time.monotonic() >= deadline:
            holder_label = Holder.parse(result.holder).label
            raise TemporaryFailure(
                f"another {_who(name)} holds the lease {name!r} since "
                f"{aware(result.since).astimezone(zone):%Y-%m-%d %H:%M:%S %Z} ({holder_label}, "
                f"{result.operation}; expires "
                f"{aware(result.expires_at).astimezone(zone):%H:%M:%S %Z} unless renewed)",
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
            raise UsageError(
                f"there is no lease {name!r}", hint="`campaignctl lease list` shows them"
            )
        conn.execute(sa.delete(LEASE).where(LEASE.c.name == name))
    return LeaseInfo(**row._mapping)
