"""`campaignctl report`: the campaign list, or one campaign's figures, in four formats."""

from __future__ import annotations

import enum
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import WorkspaceOption
from campaignctl.enums import CampaignType, ListStatus
from campaignctl.errors import UsageError, writing

if TYPE_CHECKING:
    from campaignctl.cli.app import App
    from campaignctl.report.model import CampaignList, CampaignReport


class ReportFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


def report(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Argument(help="A campaign; without it, the list of campaigns.")
    ] = None,
    format_: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="How to print the report.")
    ] = ReportFormat.TABLE,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write there: a folder for csv, a file otherwise."),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="csv on stdout: which table (waves, matrix, answers, reasons, not_contacted).",
        ),
    ] = None,
    email: Annotated[
        str | None,
        typer.Option(
            "--email", metavar="TO[,TO]", help="Send the report (HTML and text) by email."
        ),
    ] = None,
    status: Annotated[
        ListStatus | None,
        typer.Option(help="List: campaigns whose last wave has this status."),
    ] = None,
    type_: Annotated[
        CampaignType | None, typer.Option("--type", help="List: campaigns of this type.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="List: campaigns with a wave sent or due on or after YYYY-MM-DD."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Campaign figures: the list of campaigns, or one campaign per wave and segment × channel.

    Rates show their denominators: opens on delivered messages (sent when no
    receipts), answers on records contacted. --email sends the HTML page with a
    text version through the workspace's default sender (the file transport
    writes it to .campaignctl/outbox/reports/).

    Example: campaignctl report mise-a-jour-2027 --format html --out rapport.html
    """
    from campaignctl import clock
    from campaignctl.report.figures import ListFilter, campaign_list, campaign_report

    app = get_app(ctx).use(workspace)
    ws = app.readable_workspace()  # stored figures: a broken definition is only a warning
    tz = ws.config.timezone
    store = app.store(readonly=True)
    try:
        if campaign:
            app.require_applied(store, campaign)
            result = campaign_report(store, campaign, timezone=tz, now=clock.now())
        else:
            filters = ListFilter(
                status=status and status.value, type=type_ and type_.value, since=_date(since)
            )
            result = campaign_list(store, timezone=tz, filters=filters, now=clock.now())
    finally:
        store.close()
    if email:
        _email(app, result, email)
        return
    PRINTERS[format_](app, result, out, table)


def _date(text: str | None):
    from datetime import date

    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date", hint="write it as YYYY-MM-DD") from None


def _write(app: App, out: Path | None, text: str, what: str) -> None:
    if out is None:
        app.out.file.write(text)
        return
    with writing(out):
        out.write_text(text, encoding="utf-8")
    app.err.print(f"wrote the {what} to {out}")


def _print_table(app: App, result: CampaignList | CampaignReport, out, name) -> None:
    from campaignctl.report.model import CampaignReport
    from campaignctl.report.render import (
        empty_state,
        fit_table,
        for_terminal,
        report_tables,
        summary_line,
    )

    if isinstance(result, CampaignReport):
        app.out.print(textwrap.fill(summary_line(result), app.out.width, break_long_words=False))
    empty = empty_state(result)
    if empty:
        app.err.print(empty)
        return
    for turned in map(for_terminal, report_tables(result)):
        # as wide as the terminal at most (report/render.fit_table): names and figures are
        # never cut, headers wrap between words, too many columns are stacked
        for fitted in fit_table(turned, app.out.width):
            t = fitted.table
            table = app.table(t.title, *t.headers)
            for column, width in zip(table.columns, fitted.widths, strict=True):
                column.width = width
                column.overflow = "fold"
            for row in t.rows:
                table.add_row(*("" if c is None else str(c) for c in row))
            app.out.print(table)


def _print_json(app: App, result, out, name) -> None:
    import json

    from campaignctl.report.model import to_json

    if out is None:
        app.print_json(to_json(result))
    else:
        text = json.dumps(to_json(result), ensure_ascii=False, indent=2) + "\n"
        _write(app, out, text, "JSON report")


def _print_csv(app: App, result, out, name) -> None:
    from campaignctl.report.render import report_tables, table_csv, write_csv

    if out is not None:
        for path in write_csv(result, out):
            app.err.print(f"wrote {path}")
        return
    tables = {t.name: t for t in report_tables(result)}
    chosen = tables.get(name) if name else next(iter(tables.values()))
    if chosen is None:
        raise UsageError(
            f"--table {name!r}: this report has no such table",
            hint=f"tables: {', '.join(tables)}; or --out DIR for one file each",
        )
    app.out.file.write(table_csv(chosen))


def _print_html(app: App, result, out, name) -> None:
    from campaignctl.report.render import html_page

    page = html_page(result, app.readable_workspace().config.organization.name)
    _write(app, out, page, "HTML report")


PRINTERS = {
    ReportFormat.TABLE: _print_table,
    ReportFormat.JSON: _print_json,
    ReportFormat.CSV: _print_csv,
    ReportFormat.HTML: _print_html,
}


def _email(app: App, result, to: str) -> None:
    from campaignctl import clock
    from campaignctl.report.mail import parse_recipients, report_email, send_report_email

    ws = app.readable_workspace()
    sender = ws.config.senders["default"]
    message = report_email(
        result,
        organization=ws.config.organization.name,
        from_=sender.from_,
        to=parse_recipients(to),
        now=clock.now(),
    )
    reply = send_report_email(
        message,
        sender=sender,
        sender_name="default",
        outbox_dir=ws.state_dir / "outbox" / "reports",
    )
    app.err.print(f"sent the report to {', '.join(message.recipients)} ({reply})")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Reports")(report)
