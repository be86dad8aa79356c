"""`campaignctl lease list|release`: the leases that keep work from overlapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from campaignctl.cli.app import confirm, get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption, YesOption

if TYPE_CHECKING:
    from campaignctl.store.lease import Holder

lease_app = typer.Typer(help="Leases held in the store by the scheduler and by sends.")


@lease_app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False, workspace: WorkspaceOption = None):
    """List leases: who holds what since when, and when each expires unless renewed.

    A holder is `host:pid boot=BOOT_ID pidns=INODE` (--json shows each part). "where"
    says whether it runs here (this host's kernel and PID namespace: a dead holder is
    replaced at once), in another PID namespace (another container) or on another host:
    those leases are waited for until they expire.

    Example: campaignctl lease list --json
    """
    from campaignctl import clock
    from campaignctl.clock import local_text
    from campaignctl.store.lease import Holder, LeaseState, list_leases

    app = get_app(ctx).use(workspace)
    leases = list_leases(app.store())
    now = clock.now()
    if json_output:
        app.print_json({"format_version": 1, "leases": [x.as_json(now) for x in leases]})
        return
    if not leases:
        app.err.print("No leases.")
        return
    tz = app.readable_workspace().config.timezone
    table = app.table(
        None, "name", "state", "holder", "where", "operation", "since", "heartbeat", "expires"
    )
    left: list[str] = []
    for lease in leases:
        holder, state = Holder.parse(lease.holder), lease.state(now)
        table.add_row(
            lease.name,
            _STATES[state.value],
            holder.label,
            _where(holder),
            lease.operation,
            local_text(lease.since, tz, short=True),
            local_text(lease.heartbeat_at, tz, short=True),
            local_text(lease.expires_at, tz, short=True),
        )
        if state != LeaseState.HELD:
            left.append(lease.name)
    app.out.print(table)
    for name in left:
        app.err.print(
            f"{name}: nothing holds it any more (the next run takes it over); "
            f"`campaignctl lease release {name} --yes` removes it now"
        )


_STATES = {"held": "held", "stale": "stale: holder gone", "expired": "expired"}


def _where(holder: Holder) -> str:
    """Where the holder runs, with the part of its identity that differs from ours."""
    from campaignctl.store.lease import Whereabouts

    where = holder.whereabouts()
    if where == Whereabouts.HERE:
        return "here"
    if where == Whereabouts.OTHER_NAMESPACE:
        return f"PID namespace {holder.pid_namespace}"
    if where == Whereabouts.OTHER_HOST:
        return f"boot {(holder.boot_id or '')[:8]} (another host)"
    return "unknown (older holder)"


@lease_app.command("release")
def release(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The lease's name (see `lease list`).")],
    yes: YesOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Delete a lease whose holder is gone, so the next run need not wait for it to expire.

    Example: campaignctl lease release scheduler --yes
    """
    from campaignctl.store.lease import get_lease, release_lease

    app = get_app(ctx).use(workspace)
    store = app.store()
    current = get_lease(store, name)
    holder = f" held by {current.holder}" if current else ""
    confirm(yes, f"release the lease {name!r}{holder}")
    released = release_lease(store, name)
    app.err.print(f"released lease {name!r} ({released.holder}, {released.operation})")


def register(app: typer.Typer) -> None:
    app.add_typer(lease_app, name="lease", rich_help_panel="Schedules")
