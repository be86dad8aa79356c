"""`campaignctl events ingest`: feed events (JSON lines) into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

events_app = typer.Typer(help="Feed events (delivery receipts, bounces, answers, STOP replies).")


@events_app.command("ingest")
def ingest(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A JSON-lines file, or - for standard input.", metavar="FILE|-")
    ],
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Record events from JSON lines: idempotent, bad lines reported and skipped.

    Each line is {"type": ..., "message_id"|"campaign"+"record"|"address": ..., "at": ...,
    "data": {...}}. Re-ingesting a file adds nothing. An event named by campaign + record
    counts for that record's latest message of the campaign sent before it. Lines that are
    not UTF-8 JSON, exceed a size limit, or carry a time outside the window (more than a
    day after now or before the campaign's first send) are skipped with their number. Hard
    bounces and complaints suppress the address; unsubscribes and STOP replies suppress it
    for the campaign's category. Exits 65 only when no line at all could be read.

    Example: campaignctl events ingest bounces.jsonl --json
    """
    import sys

    from campaignctl.errors import InputError
    from campaignctl.events.record import ingest_events

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    region = ws.config.phone_region if ws.config else "FR"
    store = app.store()
    if source == "-":
        summary = ingest_events(store, sys.stdin.buffer, region=region)
    else:
        try:
            with Path(source).open("rb") as stream:
                summary = ingest_events(store, stream, region=region)
        except OSError as exc:
            raise InputError(f"cannot read {source}: {exc.strerror}") from None
    for problem in summary.problems:
        app.err.print(f"{source}:{problem.line}: skipped: {problem.message}")
    for note in summary.not_counted:
        app.err.print(f"{source}:{note.line}: recorded, {note.message}")
    for suppression in summary.suppressions:
        app.err.print(f"suppressed {suppression}")
    for unlisted in summary.unlisted():
        app.err.print(f"{source}: {unlisted}")
    summary.check()
    if json_output:
        app.print_json(summary.as_json())
    app.err.print(summary.text())


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events", rich_help_panel="Schedules")
