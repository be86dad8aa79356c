"""`campaignctl segment show`: count and sample a segment in the store."""

from __future__ import annotations

from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

segment_app = typer.Typer(help="Look at segments, evaluated in the store.")


@segment_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Segment name.")],
    count: Annotated[
        bool, typer.Option("--count", help="Count the records (always done; kept for scripts).")
    ] = False,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Show N records.")] = 0,
    sql: Annotated[bool, typer.Option("--sql", help="Also print the SQL query.")] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Evaluate a segment in the store (today in the workspace time zone) and time it.

    Always counts; --sample N also lists N records under a header line.

    Example: campaignctl segment show renewing-soon --count --sample 5
    """
    from campaignctl.audience.segment_cache import cached_count

    app = get_app(ctx).use(workspace)
    count_only = not sample and not sql
    view = cached_count(app.workspace_root(), name) if count_only else None
    if view is None:
        from campaignctl.audience.segment_cache import remember_count
        from campaignctl.audience.segments import show_segment, workspace_today

        ws = app.valid_workspace()
        store = app.store()
        view = show_segment(store, ws, name, workspace_today(ws), count=True, sample=sample)
        if count_only:
            remember_count(store, ws, view)
    if json_output:
        app.print_json(view.as_json() | ({"sql": view.sql} if sql else {}))
        return
    if view.count is not None:
        app.out.print(view.count_line())
    if sample:
        from campaignctl.cli.render import print_records

        print_records(app, view.sample)
    if sql:
        app.out.print(view.sql)
    app.err.print(view.timing_line())


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment", rich_help_panel="Audience")
