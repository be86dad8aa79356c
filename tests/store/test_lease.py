"""Leases across real processes, on SQLite and PostgreSQL: one holder, expiry, waiting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaignctl import clock
from campaignctl.errors import StateError, TemporaryFailure
from campaignctl.store.lease import (
    HeldLease,
    Holder,
    LeaseInfo,
    Whereabouts,
    acquire,
    list_leases,
    release_lease,
    this_holder,
    try_acquire,
)

# Only where /proc gives the boot id and the PID namespace can a holder be proven to run
# beside us, and so be replaced at once when its process is gone.
beside_us = pytest.mark.skipif(
    not Path("/proc/self/ns/pid").exists() or not Path("/proc/sys/kernel/random/boot_id").exists(),
    reason="no /proc boot id or PID namespace here: every holder waits for its lease to expire",
)

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


@beside_us
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


# --------------------------------------------------------------------------- holder identity


OTHER_BOOT = "00000000-0000-4000-8000-000000000000"


def _dead_pid() -> int:
    """A pid no process of this namespace has: a child that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _at(monkeypatch, seconds: int) -> None:
    monkeypatch.setenv(
        "CAMPAIGNCTL_NOW", f"2027-03-01T08:{seconds // 60:02d}:{seconds % 60:02d}+00:00"
    )


def _forged(where: str, pid: int) -> str:
    """A holder as `this_holder` writes it, moved elsewhere (its pid does not exist here)."""
    here = Holder.this_process()
    host = os.uname().nodename
    return {
        "here": str(Holder(host, pid, here.boot_id, here.pid_namespace)),
        "other_namespace": str(Holder(host, pid, here.boot_id, (here.pid_namespace or 0) + 1)),
        "other_boot": str(Holder(host, pid, OTHER_BOOT, here.pid_namespace)),
        "older_campaignctl": f"{host}:{pid}",  # written before holders said where they ran
    }[where]


@beside_us
def test_this_holder_names_its_host_pid_boot_and_pid_namespace() -> None:
    holder = Holder.parse(this_holder())
    assert holder.host == os.uname().nodename and holder.pid == os.getpid()
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
        assert holder.boot_id == boot.read().strip()
    assert holder.pid_namespace == os.stat("/proc/self/ns/pid").st_ino
    assert holder.whereabouts() == Whereabouts.HERE
    assert str(holder) == this_holder()


@pytest.mark.parametrize("where", ["other_namespace", "other_boot", "older_campaignctl"])
def test_a_holder_not_provably_beside_us_keeps_its_lease_until_it_expires(
    store, monkeypatch, where: str
) -> None:
    """Same host name, a pid that does not exist here: in another container (PID
    namespace), after a reboot, or written by an older campaignctl, that pid may be a
    live process elsewhere, so its lease is waited for, never taken early."""
    store.ensure_schema()
    _at(monkeypatch, 0)
    forged = _forged(where, _dead_pid())
    assert isinstance(
        try_acquire(store, "send:promo", "send", timedelta(seconds=60), holder=forged), HeldLease
    )
    _at(monkeypatch, 30)
    held = try_acquire(store, "send:promo", "send", timedelta(seconds=60))
    assert isinstance(held, LeaseInfo) and held.holder == forged
    with pytest.raises(
        TemporaryFailure, match=rf"\({re.escape(Holder.parse(forged).label)}, send;"
    ):
        acquire(store, "send:promo", "send", timedelta(seconds=60))
    _at(monkeypatch, 60)  # expired: the next process takes over
    assert isinstance(try_acquire(store, "send:promo", "send", timedelta(seconds=60)), HeldLease)


@beside_us
def test_a_dead_holder_of_this_pid_namespace_is_replaced_at_once(store, monkeypatch) -> None:
    store.ensure_schema()
    _at(monkeypatch, 0)
    forged = _forged("here", _dead_pid())
    assert isinstance(
        try_acquire(store, "send:promo", "send", timedelta(seconds=60), holder=forged), HeldLease
    )
    _at(monkeypatch, 1)
    assert isinstance(try_acquire(store, "send:promo", "send", timedelta(seconds=60)), HeldLease)


@beside_us
def test_lease_list_shows_each_holders_identity_and_where_it_runs(
    store, scaffold, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from campaignctl.cli.main import app

    store.ensure_schema()
    monkeypatch.setenv("CAMPAIGNCTL_STORE", url_of(store))
    _at(monkeypatch, 0)
    pid = _dead_pid()
    for where in ("here", "other_namespace", "older_campaignctl"):
        holder = _forged(where, pid)
        try_acquire(store, f"send:{where}", "send", timedelta(seconds=60), holder=holder)
    here, host = Holder.this_process(), os.uname().nodename
    other_ns = (here.pid_namespace or 0) + 1

    listed = CliRunner().invoke(app, ["--workspace", str(scaffold), "lease", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    leases = {x["name"]: x for x in json.loads(listed.stdout)["leases"]}
    fields = ("holder", "host", "pid", "boot_id", "pid_namespace", "where")
    assert {name: tuple(x[f] for f in fields) for name, x in leases.items()} == {
        "send:here": (
            f"{host}:{pid} boot={here.boot_id} pidns={here.pid_namespace}",
            host, pid, here.boot_id, here.pid_namespace, "here",
        ),
        "send:other_namespace": (
            f"{host}:{pid} boot={here.boot_id} pidns={other_ns}",
            host, pid, here.boot_id, other_ns, "other_namespace",
        ),
        "send:older_campaignctl": (f"{host}:{pid}", host, pid, None, None, "unknown"),
    }  # fmt: skip
    monkeypatch.setenv("COLUMNS", "160")  # one line per lease
    table = CliRunner().invoke(app, ["--workspace", str(scaffold), "lease", "list"])
    assert table.exit_code == 0, table.output
    rows = [
        [cell.strip() for cell in line.split("|")[1:5]]
        for line in table.stdout.splitlines()
        if line.startswith("| send:")
    ]
    # the dead holder beside us no longer holds its lease: stale, with the command that frees it
    assert rows == [
        ["send:here", "stale: holder gone", f"{host}:{pid}", "here"],
        ["send:older_campaignctl", "held", f"{host}:{pid}", "unknown (older holder)"],
        ["send:other_namespace", "held", f"{host}:{pid}", f"PID namespace {other_ns}"],
    ]
    assert table.stderr == (
        "send:here: nothing holds it any more (the next run takes it over); "
        "`campaignctl lease release send:here --yes` removes it now\n"
    )
    assert {name: (x["state"], x["held"]) for name, x in leases.items()} == {
        "send:here": ("stale", False),
        "send:other_namespace": ("held", True),
        "send:older_campaignctl": ("held", True),
    }

    _at(monkeypatch, 61)  # every heartbeat stopped a minute ago: all expired
    later = CliRunner().invoke(app, ["--workspace", str(scaffold), "lease", "list"])
    assert [line.split("|")[2].strip() for line in later.stdout.splitlines()
            if line.startswith("| send:")] == ["expired"] * 3  # fmt: skip
    assert later.stderr.count("`campaignctl lease release ") == 3


NAMESPACED = """
import os, sys
from datetime import UTC, datetime, timedelta
from campaignctl.store import Store
from campaignctl.store.lease import acquire, this_holder
# pid 1 of a new PID namespace: make the holder's pid one that does not exist outside
with open("/proc/sys/kernel/ns_last_pid", "w") as last:
    last.write(str(int(sys.argv[2]) - 1))
child = os.fork()
if child == 0:
    lease = acquire(Store(sys.argv[1]), "send:promo", "send promo", timedelta(seconds=60))
    print(os.getpid(), this_holder(), flush=True)
    sys.stdin.readline()
    lease.release()
    os._exit(0)
os.waitpid(child, 0)
"""


def _unshare_pid_namespace() -> list[str]:
    """The command that runs a program in a new PID namespace, or a skip saying why not."""
    command = ["unshare", "--pid", "--fork", "--mount-proc"]
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a real second PID namespace needs Linux and root (unshare --pid)")
    try:
        probe = subprocess.run([*command, "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("`unshare` (util-linux) is not installed")
    if probe.returncode != 0:
        pytest.skip(f"this machine refuses a new PID namespace: {probe.stderr.strip()}")
    return command


def test_a_live_holder_in_another_pid_namespace_keeps_its_lease(store, monkeypatch) -> None:
    """Two containers with one host name: the holder's pid, seen from here, is dead (no
    such process in our namespace), but the holder is alive in its own: the lease holds."""
    command = _unshare_pid_namespace()
    store.ensure_schema()
    pid = _dead_pid()
    env = {**os.environ, "CAMPAIGNCTL_NOW": "2027-03-01T08:00:00+00:00"}
    holder = subprocess.Popen(
        [*command, sys.executable, "-c", NAMESPACED, url_of(store), str(pid)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = holder.stdout.readline()
        assert line, holder.communicate(timeout=60)
        inside_pid, identity = line.rstrip("\n").split(" ", 1)
        assert int(inside_pid) == pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # no such process here: a pid-only check would call it dead
        _at(monkeypatch, 5)
        held = try_acquire(store, "send:promo", "send promo", timedelta(seconds=60))
        assert isinstance(held, LeaseInfo) and held.holder == identity
        assert Holder.parse(identity).whereabouts() == Whereabouts.OTHER_NAMESPACE
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert isinstance(try_acquire(store, "send:promo", "send", timedelta(seconds=60)), HeldLease)


@beside_us
@pytest.mark.parametrize(
    ("where", "settled"), [("here", 3), ("other_namespace", 0), ("older_campaignctl", 0)]
)
def test_claims_of_a_sender_are_settled_at_once_only_when_it_died_beside_us(
    store, where: str, settled: int
) -> None:
    """Another container's send, alive, keeps its claimed rows until their lease expires;
    only the claims of a sender provably of this PID namespace and gone are settled at once
    (here: claimed, never handed over, so back in the queue)."""
    import sqlalchemy as sa

    from campaignctl.delivery.outbox import mark_abandoned
    from campaignctl.store.tables import CAMPAIGN, OUTBOX, WAVE

    store.ensure_schema()
    now = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    sender = _forged(where, _dead_pid())
    with store.transaction() as conn:
        campaign = conn.execute(
            CAMPAIGN.insert().values(name="promo", type="message", content_hash="x", applied_at=now)
        ).inserted_primary_key[0]
        wave = conn.execute(
            WAVE.insert().values(
                campaign_id=campaign, number=1, kind="initial", occurrence_key="promo/0/0",
                status="sending", created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(
            OUTBOX.insert(),
            [
                dict(
                    campaign_id=campaign, wave_id=wave, channel="email",
                    address=f"r{i}@example.org", state="sending", claimed_by=sender,
                    lease_expires_at=now + timedelta(minutes=2), created_at=now, updated_at=now,
                )
                for i in range(3)
            ],
        )  # fmt: skip
    abandoned = mark_abandoned(store, wave, this_holder(), now + timedelta(seconds=5))
    assert (abandoned.requeued, abandoned.uncertain) == (settled, 0)
    with store.read() as conn:
        states = conn.execute(sa.select(OUTBOX.c.state).where(OUTBOX.c.wave_id == wave)).scalars()
        assert sorted(map(str, states)) == ["queued"] * settled + ["sending"] * (3 - settled)
