"""`campaignctl responses list|show|accept|reject|export`: review questionnaire answers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from campaignctl.cli.app import confirm, get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption, YesOption
from campaignctl.enums import ResponseStatus

if TYPE_CHECKING:
    from campaignctl.events.responses import ResponseView

responses_app = typer.Typer(
    help="Review questionnaire answers: each proposes changes (old → new) to its record."
)

CampaignArgument = Annotated[
    str | None, typer.Argument(help="Only this campaign's responses.", metavar="CAMPAIGN")
]
IdsArgument = Annotated[list[int] | None, typer.Argument(help="Response ids.", metavar="ID...")]


def _value(value: Any) -> str:
    from campaignctl.events.responses import cell_text

    text = cell_text(value)
    return text if text else "(empty)"


def _print_views(app: Any, views: list[ResponseView], json_output: bool) -> None:
    if json_output:
        app.print_json({"format_version": 1, "responses": [v.as_json() for v in views]})
        return
    table = app.table(None, "id", "campaign", "record", "status", "submitted", "changes")
    for v in views:
        table.add_row(
            str(v.id),
            v.campaign,
            v.record or "(forgotten)",
            v.status,
            v.submitted_at.strftime("%Y-%m-%d %H:%M") if v.submitted_at else "",
            ", ".join(v.changes) or "none",
        )
    app.out.print(table)


@responses_app.command("list")
def list_(
    ctx: typer.Context,
    campaign: CampaignArgument = None,
    status: Annotated[
        ResponseStatus | None,
        typer.Option("--status", help="Only responses in this state (default: all)."),
    ] = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """List the responses, with the fields each proposes to change.

    Example: campaignctl responses list mise-a-jour-2027 --status to_process
    """
    from campaignctl.events.responses import list_responses

    app = get_app(ctx).use(workspace)
    store = app.store(readonly=True)
    if campaign:
        app.require_applied(store, campaign)
    views = list_responses(store, campaign, status)
    _print_views(app, views, json_output)
    if not json_output:
        waiting = sum(v.status == ResponseStatus.TO_PROCESS for v in views)
        app.err.print(f"{len(views)} response(s), {waiting} to process")


@responses_app.command("show")
def show(
    ctx: typer.Context,
    response_id: Annotated[int, typer.Argument(help="The response id.", metavar="ID")],
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show one response: each changed field, its old and its new value.

    Example: campaignctl responses show 12
    """
    from campaignctl.events.responses import get_response

    app = get_app(ctx).use(workspace)
    view = get_response(app.store(readonly=True), response_id)
    if json_output:
        app.print_json({"format_version": 1, **view.as_json()})
        return
    app.out.print(
        f"response {view.id}: campaign {view.campaign}, record {view.record}, {view.status}"
    )
    table = app.table(None, "field", "old", "new")
    for name, change in view.changes.items():
        table.add_row(name, _value(change.get("old")), _value(change.get("new")))
    if view.changes:
        app.out.print(table)
    else:
        app.out.print("no change proposed (the answers confirm the record)")


def _contact_fields(app: Any) -> dict[str, Any]:
    from campaignctl.events.responses import ContactFields
    from campaignctl.spec.models import ColumnType

    workspace = app.valid_workspace()
    return {
        name: ContactFields(
            audience.first_column(ColumnType.EMAIL), audience.first_column(ColumnType.PHONE)
        )
        for name, audience in workspace.audiences.items()
    }


def _decide(
    ctx: typer.Context,
    ids: list[int] | None,
    all_: bool,
    campaign: str | None,
    yes: bool,
    json_output: bool,
    workspace: Path | None,
    decision: ResponseStatus,
) -> None:
    from campaignctl.errors import UsageError
    from campaignctl.events.responses import decide, list_responses
    from campaignctl.store.audit import actor

    app = get_app(ctx).use(workspace)
    store = app.store()
    verb = "accept" if decision == ResponseStatus.ACCEPTED else "reject"
    if all_ == bool(ids):
        raise UsageError(
            f"give the ids of the responses to {verb}, or --all",
            hint=f"campaignctl responses {verb} 12 13, or campaignctl responses {verb} --all --yes",
        )
    if all_:
        if campaign:
            app.require_applied(store, campaign)
        ids = [v.id for v in list_responses(store, campaign, ResponseStatus.TO_PROCESS)]
        if not ids:
            app.err.print("no response to process")
            return
        confirm(yes, f"{verb} {len(ids)} response(s) to process")
    assert ids is not None
    views = decide(store, ids, decision, by=actor(), contact_fields=_contact_fields(app))
    _print_views(app, views, json_output)
    changed = sum(len(v.changes) for v in views)
    done = "accepted" if decision == ResponseStatus.ACCEPTED else "rejected"
    app.err.print(
        f"{len(views)} response(s) {done}"
        + (f"; {changed} field(s) written to their records" if done == "accepted" else "")
    )


AllOption = Annotated[bool, typer.Option("--all", help="Every response to process.")]
CampaignOption = Annotated[
    str | None, typer.Option("--campaign", help="With --all: only this campaign's.")
]


@responses_app.command("accept")
def accept(
    ctx: typer.Context,
    ids: IdsArgument = None,
    all_: AllOption = False,
    campaign: CampaignOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Accept responses: their changes are written to the records, and to the audit log.

    Example: campaignctl responses accept --all --campaign mise-a-jour-2027 --yes
    """
    _decide(ctx, ids, all_, campaign, yes, json_output, workspace, ResponseStatus.ACCEPTED)


@responses_app.command("reject")
def reject(
    ctx: typer.Context,
    ids: IdsArgument = None,
    all_: AllOption = False,
    campaign: CampaignOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Reject responses: the records stay as they are (audited).

    Example: campaignctl responses reject 12
    """
    _decide(ctx, ids, all_, campaign, yes, json_output, workspace, ResponseStatus.REJECTED)


@responses_app.command("export")
def export(
    ctx: typer.Context,
    campaign: CampaignArgument = None,
    format_: Annotated[
        str, typer.Option("--format", help="Only csv: one row per accepted change.")
    ] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Write to this file.")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write the accepted changes as CSV for the source system (one row per field:
    response, campaign, audience, record, field, old, new, accepted_at).

    Example: campaignctl responses export mise-a-jour-2027 --format csv -o changes.csv
    """
    from campaignctl.errors import UsageError, writing
    from campaignctl.events.responses import export_rows
    from campaignctl.safecsv import FormulaSafeWriter

    if format_ != "csv":
        raise UsageError(f"--format {format_!r} is not supported", hint="use --format csv")
    app = get_app(ctx).use(workspace)
    store = app.store(readonly=True)
    if campaign:
        app.require_applied(store, campaign)
    rows = export_rows(store, campaign)
    if out is None:
        writer = FormulaSafeWriter(sys.stdout, lineterminator="\n")
        for row in rows:
            writer.writerow(row)
    else:
        with writing(out), out.open("w", encoding="utf-8", newline="") as handle:
            writer = FormulaSafeWriter(handle)
            for row in rows:
                writer.writerow(row)
    app.err.print(f"{len(rows) - 1} accepted change(s) exported")


def register(app: typer.Typer) -> None:
    app.add_typer(responses_app, name="responses", rich_help_panel="Reports")
