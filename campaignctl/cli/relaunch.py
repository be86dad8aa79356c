"""`campaignctl relaunch`: a new wave to the records that have not acted."""

from __future__ import annotations

from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption


def relaunch(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign (as applied to the store).")],
    to: Annotated[
        str,
        typer.Option(
            "--to", help="non_responders (no answer / no click), non_openers, failed, or all."
        ),
    ] = "non_responders",
    channels: Annotated[
        str | None,
        typer.Option(
            "--channels",
            help="Comma-separated, in priority order (default: the "
            "campaign's); a record gets the first it has an address for.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the wave's plan, create and send nothing.")
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Relaunch a campaign: a new wave to the records of its lock that match --to.

    Shows the plan of the wave (records per channel × segment, and how many are left out
    by suppressions or max_messages_per_contact), then sends it. Options frozen at the
    first send apply, except that send_email: false does not hold for relaunches.

    Example: campaignctl relaunch update-2027 --to non_openers --channels sms --dry-run
    """
    from campaignctl import clock
    from campaignctl.errors import UsageError
    from campaignctl.schedule.relaunch import prepare_relaunch
    from campaignctl.schedule.runner import run_due_wave
    from campaignctl.spec.models import RelaunchTarget

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    store = app.store()
    try:
        target = RelaunchTarget(to)
    except ValueError:
        choices = ", ".join(t.value for t in RelaunchTarget)
        raise UsageError(f"--to {to!r}: choose one of {choices}") from None
    chosen = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    app.require_applied(store, campaign)
    now = clock.now()
    plan, wave = prepare_relaunch(
        store, campaign, target, channels=chosen, dry_run=dry_run, now=now
    )
    document = {"format_version": 1, **plan.as_json(), "dry_run": dry_run,
                "wave": wave[1] if wave else None}  # fmt: skip
    if json_output:
        app.print_json(document)
    else:
        _print_plan(app, plan)
    if wave is None:
        app.err.print("dry run: no wave created" if dry_run else "nobody to relaunch")
        return
    app.err.print(f"wave {wave[1]} created: sending")
    result = run_due_wave(store, ws, wave[0], now=now)  # a failure marks the wave failed
    app.err.print(f"wave {wave[1]}: {result.text(plan.campaign, ws.config.timezone)}")
    if result.exit_code:  # as `send`: 1 failed or uncertain, 75 held or retrying
        raise typer.Exit(int(result.exit_code))


def _print_plan(app, plan) -> None:
    previous = f"after wave {plan.previous_wave}" if plan.previous_wave else "no wave sent yet"
    table = app.table(
        f"Relaunch of {plan.campaign} to {plan.target} ({previous})", "channel", "segment",
        "records",
    )  # fmt: skip
    for channel, segment, count in plan.cells:
        table.add_row(channel, segment or "", str(count))
    app.out.print(table)
    app.out.print(
        f"{plan.selected} of {plan.reached} record(s) to relaunch; "
        f"{plan.reached - plan.matching} not matching {plan.target}, {plan.suppressed} "
        f"suppressed, {plan.capped} at max_messages_per_contact."
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Schedules")(relaunch)
