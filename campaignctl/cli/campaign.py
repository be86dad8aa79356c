"""`campaignctl campaign archive`: retire an applied campaign."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

campaign_app = typer.Typer(help="Manage applied campaigns in the store.")


@campaign_app.command("archive")
def archive(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name (as applied).")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Archive even though a wave is sending (it is not stopped)."),
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Retire an applied campaign: no longer planned, scheduled or an active campaign.

    Its history (locks, messages, events) stays for `report`. Refused while a wave
    is sending, unless --force.

    Example: campaignctl campaign archive rappel-2026
    """
    from campaignctl.plan.apply import archive_campaign

    app = get_app(ctx).use(workspace)
    result = archive_campaign(app.store(), name, force=force)
    if json_output:
        app.print_json(result.as_json())
    elif result.archived_at is None:
        app.out.print(f"{name}: already archived")
    else:
        forced = (
            f" ({result.waves_in_progress} wave(s) still sending)"
            if result.waves_in_progress
            else ""
        )
        app.out.print(f"{name}: archived (was {result.previous_state}){forced}")


def _switch(ctx: typer.Context, name: str, active: bool, json_output: bool, workspace: Any) -> None:
    from campaignctl import clock
    from campaignctl.automation.engine import set_active

    app = get_app(ctx).use(workspace)
    state = set_active(app.store(), name, active, clock.now())
    if json_output:
        app.print_json({"format_version": 1, **state.as_json()})
    elif active:
        app.out.print(f"{name}: active (the next scheduler pass enrols and advances records)")
    else:
        app.out.print(f"{name}: inactive (enrolled records stay at their step until activated)")


@campaign_app.command("activate")
def activate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name (as applied).")],
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Switch an automation on: a `draft: true` campaign, or one deactivated.

    The next scheduler pass enrols what its trigger selects and moves enrolled records on
    from where they stopped.

    Example: campaignctl campaign activate bienvenue-adherents
    """
    _switch(ctx, name, True, json_output, workspace)


@campaign_app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name (as applied).")],
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Switch an automation off: nobody is enrolled, no step runs; records stay put.

    Example: campaignctl campaign deactivate bienvenue-adherents
    """
    _switch(ctx, name, False, json_output, workspace)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign", rich_help_panel="Campaigns")
