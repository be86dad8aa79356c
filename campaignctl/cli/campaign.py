"""`campaignctl campaign clone|new|archive`: start a campaign from a copy or a bundled
template; retire an applied campaign."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

campaign_app = typer.Typer(
    help="Start campaigns from a copy or a bundled template; manage applied campaigns."
)


@campaign_app.command("clone")
def clone(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The campaign to copy.")],
    new: Annotated[str, typer.Argument(help="The new campaign's name (campaigns/NEW.yaml).")],
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Write campaigns/NEW.yaml from an existing campaign, as a draft.

    Comments and key order are kept; the name changes, `draft: true` is set, and
    schedule dates already past move forward by whole periods (years for a one-off
    campaign). The new file is validated at once.

    Example: campaignctl campaign clone mise-a-jour-2027 mise-a-jour-2028
    """
    from campaignctl.scaffold.authoring import clone_campaign

    app = get_app(ctx).use(workspace)
    result = clone_campaign(app.valid_workspace(), source, new)
    _print_new(app, result, json_output)


@campaign_app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The new campaign's name.")] = None,
    template: Annotated[
        str | None,
        typer.Option("--from", metavar="TEMPLATE", help="The bundled template to start from."),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="A segment to target (repeat; default: the first two)."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the bundled templates and exit.")
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Start a campaign from a bundled template (`--list` shows them), as a draft.

    Writes campaigns/NAME.yaml and the message templates it needs (templates/NAME.*.j2),
    filled in from the workspace (segments, sender, categories, questionnaire, CRM
    system), then validates them.

    Example: campaignctl campaign new appel-2028 --from crm-appeal --segment members
    """
    from campaignctl.errors import UsageError
    from campaignctl.scaffold.authoring import list_templates, new_campaign

    app = get_app(ctx).use(workspace)
    if list_:
        templates = list_templates()
        if json_output:
            app.print_json({"format_version": 1, "templates": [t.as_json() for t in templates]})
            return
        table = app.table(None, "template", "what it starts")
        for t in templates:
            table.add_row(t.name, t.summary)
        app.out.print(table)
        return
    if name is None or template is None:
        raise UsageError(
            "campaign new needs a NAME and --from TEMPLATE",
            hint="e.g. `campaignctl campaign new appel-2028 --from crm-appeal`; "
            "`campaignctl campaign new --list` shows the templates",
        )
    result = new_campaign(app.valid_workspace(), name, template, segments=segment)
    _print_new(app, result, json_output)


def _print_new(app, result, json_output: bool) -> None:  # type: ignore[no-untyped-def]
    if json_output:
        app.print_json(result.as_json())
        return
    for warning in result.warnings:
        app.err.print(f"warning: {warning}")
    app.out.print(f"wrote {result.path} (draft, from {result.source})")
    for path in result.companions:
        app.out.print(f"wrote {path}")
    for key, value in result.moved_dates.items():
        app.out.print(f"  {key} was past: moved to {value}")
    app.err.print(
        f"next: review it and `campaignctl plan {result.name}`; set `draft: false` "
        "when it is ready to go"
    )


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
