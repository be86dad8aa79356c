"""`campaignctl plan`, `apply`, `lock`, `unlock`: know what will happen before sending."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import get_app, interactive
from campaignctl.cli.options import JsonOption, WorkspaceOption

CampaignsArg = Annotated[list[str] | None, typer.Argument(help="Campaign names (default: all).")]


def plan(
    ctx: typer.Context,
    campaigns: CampaignsArg = None,
    select: Annotated[
        list[str] | None, typer.Option("--select", "-s", help="NAME, tag:TAG or type:TYPE.")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Same forms.")] = None,
    show: Annotated[
        str | None, typer.Option("--show", help="`not-contacted`: list those records.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Save the plan for `apply`.")] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0 when nothing would change, 2 when something would; an error keeps "
            "its own code (65 invalid definitions, 69 store unreachable…).",
        ),
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show what would be sent and what `apply` would change; read-only.

    Example: campaignctl plan mise-a-jour-2027 --show not-contacted
    """
    from campaignctl.cli.plan_layout import print_plan
    from campaignctl.errors import UsageError
    from campaignctl.plan.plan import PlanOptions, compute_plan

    if show not in (None, "not-contacted"):
        raise UsageError(f"--show {show!r}: the only choice is not-contacted")
    app = get_app(ctx).use(workspace)
    options = PlanOptions(
        tuple(campaigns or ()), tuple(select or ()), tuple(exclude or ()), show is not None
    )
    result = compute_plan(app.store(), app.valid_workspace(), options)
    if out is not None:
        result.save(out)
        app.err.print(f"Saved the plan to {out}: `campaignctl apply {out}` applies it.")
    if json_output:
        app.print_json(result.as_json())
    else:
        print_plan(app, result)
    if detailed_exitcode and result.changes:
        raise typer.Exit(2)


def show(
    ctx: typer.Context,
    planfile: Annotated[Path, typer.Argument(help="A plan saved by `plan --out`.")],
    json_output: JsonOption = False,
) -> None:
    """Print a saved plan, as `plan` printed it (or its JSON); needs no workspace or store.

    Example: campaignctl show plan.json
    """
    from campaignctl.cli.plan_layout import print_plan
    from campaignctl.plan.plan import load_plan

    app = get_app(ctx)
    saved = load_plan(planfile)
    if json_output:
        app.print_json(saved.as_json())
    else:
        print_plan(app, saved)


def apply(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None, typer.Argument(help="A saved PLANFILE, or campaign names.")
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask (required without a terminal).")
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Record the campaign definitions, options and schedules in the store.

    Example: campaignctl apply plan.json --auto-approve
    """
    from campaignctl.errors import UsageError
    from campaignctl.plan.apply import apply_definitions, check_plan

    app = get_app(ctx).use(workspace)
    ws, store = app.valid_workspace(), app.store()
    names = list(targets or [])
    if len(names) == 1 and Path(names[0]).is_file():
        names = check_plan(store, ws, Path(names[0]))
    if not auto_approve:
        if not interactive():
            raise UsageError("apply needs confirmation", hint="add --auto-approve")
        if not typer.confirm("Apply these definitions to the store?", err=True):
            raise typer.Exit(1)
    result = apply_definitions(store, ws, names or None)
    if json_output:
        app.print_json(result.as_json())
        return
    for label, items in (("created", result.created), ("updated", result.updated)):
        for name in items:
            app.out.print(f"{name}: {label}")
    for name in result.missing:
        app.err.print(
            f"{name}: applied but its file is gone; "
            f"`campaignctl campaign archive {name}` retires it"
        )
    app.out.print(
        f"Apply complete: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged."
    )


def lock(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Recompute and show the difference.")
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Freeze the recipients and content of a campaign (what `send` will send).

    Example: campaignctl lock mise-a-jour-2027 --refresh
    """
    from campaignctl.plan.lock import lock_campaign
    from campaignctl.plan.render import lock_text

    app = get_app(ctx).use(workspace)
    store = app.store()
    app.require_applied(store, campaign)
    ws = app.valid_workspace()
    view = lock_campaign(store, ws, campaign, refresh=refresh)
    if json_output:
        app.print_json(view.as_json())
    else:
        app.out.print(lock_text(view, ws.config.timezone))


def unlock(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    force: Annotated[
        bool, typer.Option("--force", help="Unlock even though a wave was sent from the lock.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Release a campaign's lock (refused once a wave was sent from it, unless --force).

    Example: campaignctl unlock mise-a-jour-2027
    """
    from campaignctl.plan.lock import unlock_campaign

    app = get_app(ctx).use(workspace)
    store = app.store()
    app.require_applied(store, campaign)
    view = unlock_campaign(store, campaign, force=force)
    app.out.print(f"{campaign}: lock {view.lock_id} released")


def register(app: typer.Typer) -> None:
    for command in (plan, show, apply, lock, unlock):
        app.command(rich_help_panel="Campaigns")(command)
