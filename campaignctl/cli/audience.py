"""`campaignctl audience import|show|list`: load contact sources and look at records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

audience_app = typer.Typer(help="Load audiences into the store and look at their records.")


@audience_app.command("import")
def import_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Audience (default: all).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and report, change nothing.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write every row problem to this CSV.")
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete records gone from the source (not just mark).")
    ] = False,
    allow_removals: Annotated[
        bool,
        typer.Option(
            "--allow-removals",
            help="Let the import remove more than half of the active records (refused otherwise).",
        ),
    ] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Load (upsert by key) an audience's CSV into the store, normalising emails and phones.

    Re-importing an unchanged file changes nothing and says so. Bad values are dropped
    (the record is kept); rows without a key, or repeating an earlier key, are rejected.
    The first problems are shown; --rejects FILE lists them all.
    An import that would remove more than half of the active records (a truncated export)
    is refused unless --allow-removals is given.

    Example: campaignctl audience import providers --rejects rejects.csv
    """
    from campaignctl.audience.importer import ImportOptions, import_audiences
    from campaignctl.cli.render import import_progress, print_import_result

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    with import_progress(app) as progress:
        options = ImportOptions(
            dry_run=dry_run,
            prune=prune,
            allow_removals=allow_removals,
            rejects=rejects,
            progress=progress,
        )
        results = import_audiences(app.store(), ws, [name] if name else None, options)
    if json_output:
        app.print_json({"format_version": 1, "imports": [r.as_json() for r in results]})
    for result in results:
        print_import_result(app, result, listed=rejects is not None)
    if rejects is not None and any(r.problems for r in results):
        app.err.print(f"every problem is listed in {rejects}")


@audience_app.command("show")
def show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The record's key.")],
    audience: Annotated[str | None, typer.Option("--audience", help="Audience name.")] = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show the stored record(s) with that key: contact addresses, category, attributes.

    Example: campaignctl audience show H001
    """
    from campaignctl.audience.records import find_records
    from campaignctl.cli.render import print_record

    app = get_app(ctx).use(workspace)
    records = find_records(app.store(), key, audience)
    if json_output:
        app.print_json({"format_version": 1, "records": records})
        return
    for record in records:
        print_record(app, record)


@audience_app.command("list")
def list_(
    ctx: typer.Context,
    segment: Annotated[str | None, typer.Option("--segment", help="Only this segment.")] = None,
    audience: Annotated[str | None, typer.Option("--audience", help="Only this audience.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N records.")] = 50,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """List active records (of a segment or audience), by key.

    Example: campaignctl audience list --segment renewing-soon --limit 20
    """
    from campaignctl.audience.segments import list_records, workspace_today
    from campaignctl.cli.render import print_records

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    records = list_records(
        app.store(), ws, segment=segment, audience=audience, limit=limit, today=workspace_today(ws)
    )
    if json_output:
        app.print_json({"format_version": 1, "records": records})
    else:
        print_records(app, records)


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience", rich_help_panel="Audience")
