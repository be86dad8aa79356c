"""The scheduler as a process: one pass under cron (`tick`), or a daemon (`run_daemon`).

Both hold the `scheduler` lease while they pass, so a tick from cron exits 75 while the
daemon runs, and two daemons never run side by side. The daemon holds the lease for its
whole life and renews it between passes (the heartbeat `scheduler status` shows);
SIGTERM or Ctrl-C stops it after the wave in flight. What they have to say goes to the
`log` (one per action of a pass) and `say` (started, pass, stopping, stopped) callbacks:
the command line decides how it looks.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from campaignctl import clock
from campaignctl.errors import CampaignctlError
from campaignctl.schedule.scheduler import LEASE_NAME, Action, PassResult, scheduler_pass
from campaignctl.store.lease import acquire
from campaignctl.store.store import Store
from campaignctl.waves.known import SchedulerOptions

if TYPE_CHECKING:
    from campaignctl.spec.workspace import Workspace

Log = Callable[[Action], None]
Say = Callable[..., None]  # say(kind, text, **fields)


def tick(
    store: Store, workspace: Workspace, *, wait: timedelta | None, log: Log | None = None
) -> PassResult:
    """`scheduler tick`: one pass under the scheduler lease, taken first (waiting up to
    `wait` for its holder; TemporaryFailure, exit 75, otherwise) and released after."""
    options = SchedulerOptions.from_workspace(workspace)
    with acquire(
        store, LEASE_NAME, "scheduler tick", options.lease_ttl, wait=wait, timezone=_zone(workspace)
    ) as lease:
        return scheduler_pass(store, workspace, options, now=clock.now(), lease=lease, log=log)


def run_daemon(
    store: Store,
    workspace: Workspace,
    *,
    interval: int,
    wait: timedelta | None,
    log: Log,
    say: Say,
) -> None:
    """`scheduler run`: a pass every `interval` seconds until SIGTERM or SIGINT, holding the
    scheduler lease and renewing it every third of its ttl. Raises what stopped it when that
    was an error (the lease was lost, the store went away)."""
    from apscheduler.schedulers.blocking import BlockingScheduler  # only the daemon needs it

    options = SchedulerOptions.from_workspace(workspace)
    lease = acquire(
        store, LEASE_NAME, "scheduler run", options.lease_ttl, wait=wait, timezone=_zone(workspace)
    )
    stop = threading.Event()
    daemon = BlockingScheduler(timezone="UTC")
    failure: list[CampaignctlError] = []

    def one_pass() -> None:
        try:
            result = scheduler_pass(
                store, workspace, options, now=clock.now(), lease=lease, log=log, stop=stop
            )
        except CampaignctlError as exc:  # the lease was lost, the store went away…
            failure.append(exc)
            stop.set()
            daemon.shutdown(wait=False)
            return
        if result.actions:
            say("pass", result.summary())

    def heartbeat() -> None:
        try:
            lease.renew()
        except CampaignctlError as exc:
            failure.append(exc)
            stop.set()
            daemon.shutdown(wait=False)

    def terminate(signum: int, _frame: object) -> None:
        say("stopping", f"received signal {signum}: finishing the wave in flight")
        stop.set()
        daemon.shutdown(wait=True)

    beat = max(1, int(options.lease_ttl.total_seconds() // 3))
    daemon.add_job(one_pass, "interval", seconds=interval, next_run_time=_utcnow(),
                   max_instances=1, coalesce=True, id="pass")  # fmt: skip
    daemon.add_job(heartbeat, "interval", seconds=beat, max_instances=1, coalesce=True)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    say("started", f"scheduler started: a pass every {interval}s, "
        f"lease {LEASE_NAME!r} held by {lease.holder}", holder=lease.holder)  # fmt: skip
    try:
        daemon.start()
    finally:
        lease.release()
    if failure:
        raise failure[0]
    say("stopped", "scheduler stopped")


def _utcnow() -> datetime:
    return datetime.now(UTC)  # APScheduler's own wall clock, not the campaign clock


def _zone(workspace: Workspace) -> str:
    """The workspace's time zone, for the times a person reads."""
    return workspace.config.timezone if workspace.config else "UTC"
