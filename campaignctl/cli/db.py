"""`campaignctl db upgrade|status`: the store's schema version."""

from __future__ import annotations

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

db_app = typer.Typer(help="The store's schema (migrations run by themselves on first use).")


def _print(app, status, json_output: bool) -> None:  # type: ignore[no-untyped-def]
    if json_output:
        app.print_json(
            {
                "format_version": 1,
                "url": status.url,
                "current": status.current,
                "head": status.head,
                "up_to_date": status.up_to_date,
            }
        )
        return
    state = "up to date" if status.up_to_date else "needs `campaignctl db upgrade`"
    app.out.print(
        f"{status.url}: revision {status.current or 'none'} (head {status.head}), {state}"
    )


@db_app.command("status")
def status(
    ctx: typer.Context, json_output: JsonOption = False, workspace: WorkspaceOption = None
) -> None:
    """Show the store URL (password hidden) and its schema revision.

    Example: campaignctl db status
    """
    app = get_app(ctx).use(workspace)
    _print(app, app.store().schema_status(), json_output)


@db_app.command("upgrade")
def upgrade(
    ctx: typer.Context, json_output: JsonOption = False, workspace: WorkspaceOption = None
) -> None:
    """Bring the store's schema to this version's head (every command also does it on use).

    Example: campaignctl db upgrade   (a PostgreSQL store: set
    CAMPAIGNCTL_STORE=postgresql+psycopg://campaigns@db/campaigns first)
    """
    app = get_app(ctx).use(workspace)
    _print(app, app.store().upgrade(), json_output)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel="Store")
