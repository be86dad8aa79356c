"""Leases across real processes, on SQLite and PostgreSQL: one holder, expiry, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from campaignctl import clock
from campaignctl.errors import StateError, TemporaryFailure
from campaignctl.store.lease import acquire, list_leases, release_lease, try_acquire

HOLD = """
import os, sys
from datetime import timedelta
from campaignctl.errors import TemporaryFailure
from campaignctl.store import Store
from campaignctl.store.lease import acquire
store = Store(sys.argv[1])
# "remote": a holder named after another machine, whose death this one cannot see
holder = f"other-host:{os.getpid()}" if sys.argv[3] == "remote" else None
try:
    lease = acquire(store, "scheduler", "tick", timedelta(seconds=60),
                    wait=timedelta(seconds=float(sys.argv[2])), holder=holder)
except TemporaryFailure as exc:
    print(exc.message, flush=True)
    sys.exit(75)
print("acquired", os.getpid(), flush=True)
if sys.argv[3] in ("hold", "remote"):
    sys.stdin.readline()
lease.release()
"""


def url_of(store) -> str:
    url = store.engine.url.render_as_string(hide_password=False)
    schema = getattr(store.engine, "info_schema", None)
    return f"{url}?options=-csearch_path%3D{schema}" if schema else url


def start(store, wait: float = 0, mode: str = "hold", now: str = "2027-03-01T09:00:00+01:00"):
    store.ensure_schema()  # migrations run once here, not raced by the processes
    env = {**os.environ, "CAMPAIGNCTL_NOW": now}
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, url_of(store), str(wait), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_a_held_lease_refuses_a_second_process_and_names_its_holder(store) -> None:
    holder = start(store)
    assert holder.stdout.readline().startswith("acquired")
    second = start(store, mode="once")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 75, err
    host = os.uname().nodename
    assert out == (
        "another scheduler holds the lease 'scheduler' since 2027-03-01 08:00:00 UTC "
        f"({host}:{holder.pid}, tick; expires 08:01:00 UTC unless renewed)\n"
    )
    holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    third = start(store, mode="once")
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0 and out.startswith("acquired")


def test_lock_timeout_waits_for_the_holder_to_let_go(store) -> None:
    holder = start(store)
    assert holder.stdout.readline().startswith("acquired")
    waiter = start(store, wait=60, mode="once")
    holder.communicate("\n", timeout=60)  # released while the waiter polls
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert out.startswith("acquired")


def test_a_killed_remote_holders_lease_expires_and_the_next_process_takes_over(store) -> None:
    holder = start(store, mode="remote")
    assert holder.stdout.readline().startswith("acquired")
    holder.kill()  # kill -9: no release, no renewal; as seen from another machine
    holder.wait()
    early = start(store, mode="once", now="2027-03-01T09:00:59+01:00")
    early.communicate(timeout=60)
    assert early.returncode == 75
    late = start(store, mode="once", now="2027-03-01T09:01:00+01:00")
    out, err = late.communicate(timeout=60)
    assert late.returncode == 0, err
    assert out.startswith("acquired")


def test_a_killed_local_holder_is_replaced_at_once(store) -> None:
    holder = start(store)
    assert holder.stdout.readline().startswith("acquired")
    alive = start(store, mode="once", now="2027-03-01T09:00:01+01:00")
    alive.communicate(timeout=60)
    assert alive.returncode == 75  # its holder is alive: held
    holder.kill()  # kill -9 on this machine: its pid no longer exists
    holder.wait()
    successor = start(store, mode="once", now="2027-03-01T09:00:02+01:00")
    out, err = successor.communicate(timeout=60)
    assert successor.returncode == 0, err
    assert out.startswith("acquired")


def test_renewing_pushes_expiry_and_a_lost_lease_is_said(store, monkeypatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T08:00:00+00:00")
    lease = acquire(store, "send:promo", "send", timedelta(seconds=60), holder="a:1")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T08:00:50+00:00")
    lease.renew()
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T08:01:30+00:00")
    other = try_acquire(store, "send:promo", "send", timedelta(seconds=60), holder="b:2")
    assert not hasattr(other, "renew") and other.holder == "a:1"  # renewed: still held
    assert [x.as_json(clock.now())["held"] for x in list_leases(store)] == [True]
    release_lease(store, "send:promo")  # `lease release send:promo --yes`
    with pytest.raises(StateError, match="lease 'send:promo' was lost"):
        lease.renew()
    acquire(store, "send:promo", "send", timedelta(seconds=60), holder="b:2")
    with pytest.raises(TemporaryFailure, match=r"since 2027-03-01 08:01:30 UTC \(b:2, send;"):
        acquire(store, "send:promo", "send", timedelta(seconds=60), holder="c:3")
