"""`preview`: the exact message one recipient would get."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import App, get_app
from campaignctl.cli.options import WorkspaceOption
from campaignctl.errors import UsageError, writing


class PreviewFormat(enum.StrEnum):
    TEXT = "text"
    HTML = "html"
    EML = "eml"


class PreviewChannel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


def preview(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="Name of the campaign.")],
    contact: Annotated[
        str | None,
        typer.Option("--contact", "-c", help="Key of the record to preview (default: the first)."),
    ] = None,
    channel: Annotated[
        PreviewChannel | None,
        typer.Option("--channel", help="email or sms (default: the campaign's first channel)."),
    ] = None,
    output_format: Annotated[
        PreviewFormat,
        typer.Option("--format", "-f", help="text (terminal), html, or eml (an RFC 5322 file)."),
    ] = PreviewFormat.TEXT,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Write to this file.")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML (or .eml) in the default application.")
    ] = False,
    category: Annotated[
        str | None,
        typer.Option("--category", help="Preview as a record of this category sees it."),
    ] = None,
    wave: Annotated[
        int, typer.Option("--wave", min=1, help="Wave number: 1 initial, 2+ relaunches.")
    ] = 1,
    workspace: WorkspaceOption = None,
) -> None:
    """Render the exact email or SMS one recipient would get, before or after import.

    Reads the audience CSV when nothing is imported yet. Template errors name the
    template, line and variable, and exit 65.

    Example: campaignctl preview update-2027 --contact H001 --format html --open
    """
    from campaignctl.render.preview import build_preview, email_as_text, sms_as_text
    from campaignctl.spec.models import Channel

    app = get_app(ctx).use(workspace)
    chosen = Channel(channel.value) if channel else None
    result = build_preview(
        app.valid_workspace(),
        campaign,
        channel=chosen,
        contact=contact,
        category=category,
        wave=wave,
    )
    for note in result.notes:
        app.err.print(f"note: {note}")
    item = result.items[0]
    if item.sms is not None:
        for warning in item.sms.warnings:
            app.err.print(f"warning: {warning}")
        if output_format != PreviewFormat.TEXT:
            raise UsageError(f"--format {output_format} is for email", hint="SMS preview as text")
    if output_format == PreviewFormat.TEXT:
        text = "\n".join(
            email_as_text(i.email) if i.email else sms_as_text(i.sms)  # type: ignore[arg-type]
            for i in result.items
        )
        _emit(app, text.encode("utf-8"), out, open_browser=False)
        return
    assert item.email is not None
    if output_format == PreviewFormat.HTML:
        data = result.renderer.html_for_browser(item.email.html).encode("utf-8")
        suffix = ".html"
    else:
        data, suffix = item.email.data, ".eml"
    if open_browser and out is None:
        out = app.workspace_root() / ".campaignctl" / "preview" / f"{campaign}{suffix}"
    _emit(app, data, out, open_browser)


def _emit(app: object, data: bytes, out: Path | None, open_browser: bool) -> None:
    assert isinstance(app, App)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing(out):
        out.write_bytes(data)
    app.err.print(f"wrote {out}")
    if open_browser:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Campaigns")(preview)
