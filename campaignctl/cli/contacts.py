"""`campaignctl contacts export|forget` and `suppress add|list|remove`: privacy and opt-outs."""

from __future__ import annotations

from typing import Annotated

import typer

from campaignctl.cli.app import confirm, get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption, YesOption
from campaignctl.enums import Channel

contacts_app = typer.Typer(help="Privacy: everything stored about a record, and forgetting it.")
suppress_app = typer.Typer(help="Addresses never to contact (per channel and category).")

AudienceOption = Annotated[str | None, typer.Option("--audience", help="Audience name.")]
ChannelOption = Annotated[
    Channel | None, typer.Option("--channel", help="email or sms (default: from the address).")
]
CategoryOption = Annotated[
    str | None, typer.Option("--category", help="Only this category (default: all).")
]


@contacts_app.command("export")
def export(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The record's key.")],
    audience: AudienceOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print everything stored about a record as JSON (data subject access request).

    Example: campaignctl contacts export H001 > H001.json
    """
    from campaignctl.audience.privacy import export_contact

    app = get_app(ctx).use(workspace)
    app.print_json(export_contact(app.store(), key, audience))


@contacts_app.command("forget")
def forget(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The record's key.")],
    audience: AudienceOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Erase a record's personal data; its addresses stay suppressed (as hashes only).

    Example: campaignctl contacts forget H001 --yes
    """
    from campaignctl.audience.privacy import forget_contact

    app = get_app(ctx).use(workspace)
    store = app.store()
    confirm(yes, f"erase the personal data of record {key!r}")
    result = forget_contact(store, key, audience)
    if json_output:
        app.print_json(result)
    app.err.print(f"forgot {result['forgotten']} record(s) with key {key!r}")


def _channel(channel: Channel | None, address: str) -> Channel:
    from campaignctl.audience.privacy import guess_channel

    return channel or guess_channel(address)


@suppress_app.command("add")
def add(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Email address or phone number.")],
    channel: ChannelOption = None,
    category: CategoryOption = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Never contact this address again (on its channel; for one category or all).

    Example: campaignctl suppress add jean@example.org --category marketing
    """
    from campaignctl.audience.privacy import add_suppression

    app = get_app(ctx).use(workspace)
    region = app.valid_workspace().config.phone_region  # type: ignore[union-attr]
    change = add_suppression(
        app.store(), address, channel=_channel(channel, address), category=category, region=region
    )
    if json_output:
        app.print_json(change.as_json())
    state = "suppressed" if change.changed else "already suppressed"
    app.err.print(f"{change.address}: {state} ({change.channel}, {change.category or 'all'})")


@suppress_app.command("remove")
def remove(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Email address or phone number.")],
    channel: ChannelOption = None,
    category: CategoryOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Allow an address again (removes one suppression).

    Example: campaignctl suppress remove jean@example.org --yes
    """
    from campaignctl.audience.privacy import remove_suppression

    app = get_app(ctx).use(workspace)
    region = app.valid_workspace().config.phone_region  # type: ignore[union-attr]
    store = app.store()
    confirm(yes, f"allow {address} again")
    change = remove_suppression(
        store, address, channel=_channel(channel, address), category=category, region=region
    )
    if json_output:
        app.print_json(change.as_json())
    state = "no longer suppressed" if change.changed else "was not suppressed"
    app.err.print(f"{change.address}: {state} ({change.channel}, {change.category or 'all'})")


@suppress_app.command("list")
def list_(
    ctx: typer.Context,
    channel: Annotated[Channel | None, typer.Option("--channel", help="email or sms.")] = None,
    category: CategoryOption = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """List suppressed addresses (forgotten ones show as their hash).

    Example: campaignctl suppress list --channel email --json
    """
    from campaignctl.audience.privacy import list_suppressions

    app = get_app(ctx).use(workspace)
    rows = list_suppressions(app.store(), channel=channel, category=category)
    if json_output:
        app.print_json({"format_version": 1, "suppressions": rows})
        return
    for row in rows:
        shown = row["address"] or f"sha256:{row['address_hash'][:16]}…"
        app.out.print(f"{row['channel']}\t{shown}\t{row['category'] or '*'}\t{row['reason']}")
    app.err.print(f"{len(rows)} suppression(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_app, name="contacts", rich_help_panel="Privacy")
    app.add_typer(suppress_app, name="suppress", rich_help_panel="Privacy")
