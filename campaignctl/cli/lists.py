"""`campaignctl list add|remove|show`: the members of a `kind: List`."""

from __future__ import annotations

from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption

list_app = typer.Typer(help="Members of the lists declared by `kind: List` documents.")

KeysArgument = Annotated[
    list[str] | None, typer.Argument(help="Record keys of the list's audience.", show_default=False)
]


def _change(ctx: typer.Context, name: str, keys: list[str] | None, add: bool, json_output: bool,
            workspace: object) -> None:  # fmt: skip
    from campaignctl.automation.lists import change_members
    from campaignctl.errors import UsageError

    app = get_app(ctx).use(workspace)  # type: ignore[arg-type]
    if not keys:
        raise UsageError(
            f"give the keys of the records to {'add to' if add else 'remove from'} {name!r}",
            hint=f"campaignctl list {'add' if add else 'remove'} {name} KEY [KEY…]",
        )
    change = change_members(app.store(), app.valid_workspace(), name, keys, add=add)
    if json_output:
        app.print_json(change.as_json())
    else:
        app.out.print(change.text())


@list_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="List name.")],
    keys: KeysArgument = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Add records (by key) to a list; a `list_added` automation enrols them on its next pass.

    Keys that name no record of the list's audience are counted and named.

    Example: campaignctl list add newsletter H-001 H-002
    """
    _change(ctx, name, keys, True, json_output, workspace)


@list_app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="List name.")],
    keys: KeysArgument = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Take records (by key) out of a list.

    Example: campaignctl list remove newsletter H-002
    """
    _change(ctx, name, keys, False, json_output, workspace)


@list_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="List name.")],
    keys: KeysArgument = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show a list: its audience, description, member count and members (only KEYs if given).

    Example: campaignctl list show newsletter
    """
    from campaignctl.automation.lists import show_list

    app = get_app(ctx).use(workspace)
    view = show_list(app.store(), app.valid_workspace(), name, keys or ())
    if json_output:
        app.print_json(view.as_json())
        return
    about = f" — {view.description}" if view.description else ""
    app.out.print(f"{view.list} (audience {view.audience}){about}")
    app.out.print(f"{view.count} member(s), {view.removed} removed")
    for member in view.members:
        app.out.print(f"  {member['key']}  added {member['added_at']}  by {member['source']}")


def register(app: typer.Typer) -> None:
    app.add_typer(list_app, name="list", rich_help_panel="Audience")
