"""`campaignctl campaign archive`: retire an applied campaign."""

from __future__ import annotations

from typing import Annotated

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
    store = app.store()
    result = archive_campaign(store, name, force=force, defined=app.workspace().campaigns)
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


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign", rich_help_panel="Campaigns")
