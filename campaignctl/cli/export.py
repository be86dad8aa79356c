"""`campaignctl export push|withdraw|status`: CRM transfers (DESIGN.md §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from campaignctl.cli.app import App, confirm, get_app
from campaignctl.cli.options import (
    JsonOption,
    LockTimeoutOption,
    WorkspaceOption,
    YesOption,
    parse_lock_timeout,
)

if TYPE_CHECKING:
    from campaignctl.export.transfer import TransferResult

export_app = typer.Typer(
    help="Transfer a locked campaign's badges (segment × channel cells) to CRM systems."
)

SegmentOption = Annotated[
    str | None, typer.Option("--segment", help="Only this segment's cells (default: all).")
]
ChannelOption = Annotated[
    str | None, typer.Option("--channel", help="Only this channel's cells (default: all).")
]
SystemOption = Annotated[
    str | None, typer.Option("--system", help="Only this system (default: every one).")
]
CampaignArgument = Annotated[str, typer.Argument(help="Campaign name.")]


def _options(app: App, segment: Any, channel: Any, system: Any, lock_timeout: Any, bar: Any):  # type: ignore[no-untyped-def]
    from campaignctl.export.cells import Selection
    from campaignctl.export.transfer import TransferOptions

    return TransferOptions(
        selection=Selection(segment, channel, system),
        progress=bar,
        lock_timeout=parse_lock_timeout(lock_timeout),
    )


class _Bar:
    """A rich progress bar per system on a terminal; nothing otherwise."""

    def __init__(self, app: App, json_output: bool) -> None:
        import sys

        self.on = sys.stderr.isatty() and not json_output  # FORCE_COLOR colours, no bar
        self.app = app
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bar:
        if self.on:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                console=self.app.err, transient=True,
            )  # fmt: skip
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, system: str, done: int, total: int) -> None:
        if self.bar is None:
            return
        if system not in self.tasks:
            self.tasks[system] = self.bar.add_task(system, total=total)
        self.bar.update(self.tasks[system], completed=done, total=total)


def _print_result(app: App, result: TransferResult, json_output: bool) -> None:
    if json_output:
        app.print_json(result.as_json())
    else:
        push = result.action == "push"
        done_word = "transferred" if push else "withdrawn"
        if result.nothing_to_do:
            already = sum(s.already for s in result.systems)
            changed = sum(s.changed for s in result.systems)
            what = (
                f"{already} badge(s) already transferred"
                if push
                else f"no badge transferred in the selection ({already} not transferred or "
                "already withdrawn)"
            )
            app.out.print(f"Nothing to {'transfer' if push else 'withdraw'}: {what}.")
            if changed:
                app.err.print(_changed_note(result.campaign, changed))
        for s in result.systems:
            if result.nothing_to_do:
                break
            line = f"{s.system} ({s.type}, {s.target}): {s.sent} {done_word}"
            if s.to_withdraw:
                line += f", {_stale(s)}"
            if s.failed:
                line += f", {s.failed} failed"
            if push:
                line += f", {s.already} already transferred"
            if s.retries:
                line += f", {s.retries} retried request(s)"
            files = [f for f in (s.withdraw_file, s.file) if f]
            if files:
                line += f" → {', '.join(files)}"
            app.out.print(line)
            for failure in s.failures:
                app.out.print(f"  failed: {failure['record']}: {failure['error']}")
            if s.failed > len(s.failures):
                app.out.print(f"  … and {s.failed - len(s.failures)} more (see --json)")
            if s.changed:
                app.err.print(_changed_note(result.campaign, s.changed, s.system))
    if result.failed:
        app.err.print(
            f"error: {result.failed} badge(s) were refused; fix them, then "
            f"`campaignctl export {result.action} {result.campaign}` again tries them "
            "under the same keys"
        )
        raise typer.Exit(1)


def _stale(s: Any) -> str:
    """What a push withdrew because the lock in force changed (`lock --refresh`)."""
    why = []
    if s.left_out:
        why.append(f"{s.left_out} left out of the lock")
    if s.moved:
        why.append(f"{s.moved} moved to another cell")
    text = f"{s.withdrawn} withdrawn ({', '.join(why)})"
    if s.withdrawn < s.to_withdraw:
        text += f", {s.to_withdraw - s.withdrawn} still to withdraw"
    return text


def _changed_note(campaign: str, changed: int, system: str | None = None) -> str:
    where = f" in {system}" if system else ""
    return (
        f"note: {changed} badge(s){where} were transferred with fields the definitions have "
        "changed since; they are not sent again: `campaignctl export withdraw "
        f"{campaign}` then `export push` replaces them"
    )


@export_app.command("push")
def push(
    ctx: typer.Context,
    campaign: CampaignArgument,
    segment: SegmentOption = None,
    channel: ChannelOption = None,
    system: SystemOption = None,
    lock_timeout: LockTimeoutOption = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Transfer the badges of a locked campaign: all, or a segment's, a channel's, a
    system's, or one cell's (--segment and --channel).

    Each badge keeps one idempotency key for every retry and resumed push; a push
    interrupted (Ctrl-C, crash, kill -9) resumes with the next one, and a push of what is
    done transfers nothing and says so. Refused (exit 65) until `campaignctl lock`. After
    `lock --refresh`, it first withdraws the badges of records the lock left out or moved
    to another cell (a moved record then gets its new cell's badge).

    Example: campaignctl export push appel-cotisation-2027 --segment renewing-soon
    """
    from campaignctl.export.transfer import push_badges

    app = get_app(ctx).use(workspace)
    with _Bar(app, json_output) as bar:
        options = _options(app, segment, channel, system, lock_timeout, bar)
        result = push_badges(app.store(), app.valid_workspace(), campaign, options)
    _print_result(app, result, json_output)


@export_app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    campaign: CampaignArgument,
    segment: SegmentOption = None,
    channel: ChannelOption = None,
    system: SystemOption = None,
    yes: YesOption = False,
    lock_timeout: LockTimeoutOption = None,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Undo transferred badges (same selectors as push): a withdraw request per batch to
    a webhook, a withdraw file to a CSV drop. Needs --yes without a terminal.

    Example: campaignctl export withdraw appel-cotisation-2027 --segment members-new --yes
    """
    from campaignctl.export.transfer import withdraw_badges

    app = get_app(ctx).use(workspace)
    scope = " ".join(
        f"{flag} {value}"
        for flag, value in (("--segment", segment), ("--channel", channel), ("--system", system))
        if value
    )
    confirm(yes, f"withdraw the badges of {campaign}{' ' + scope if scope else ''}")
    with _Bar(app, json_output) as bar:
        options = _options(app, segment, channel, system, lock_timeout, bar)
        result = withdraw_badges(app.store(), app.valid_workspace(), campaign, options)
    _print_result(app, result, json_output)


@export_app.command("status")
def status(
    ctx: typer.Context,
    campaign: CampaignArgument,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Per cell (segment × channel) and system: records locked, badges to transfer,
    pending, sent, failed, withdrawn, and when; then the latest transfers.

    Example: campaignctl export status appel-cotisation-2027 --json
    """
    from campaignctl.export.status import export_status

    app = get_app(ctx).use(workspace)
    found = export_status(app.store(), app.valid_workspace(), campaign)
    if json_output:
        app.print_json(found.as_json())
        return
    tz = app.valid_workspace().config.timezone  # type: ignore[union-attr]
    lock = f"lock {found.lock_id}" if found.lock_id else "not locked: `campaignctl lock` it"
    app.out.print(f"{campaign} ({lock})")
    for cell in found.cells:
        records = "" if cell.records is None else f": {cell.records} record(s)"
        app.out.print(f"{cell.segment} × {cell.channel}{records}")
        if not cell.systems:
            app.out.print("  no export gives this cell a badge")
        for s in cell.systems:
            figures = [f"{s.sent} sent", f"{s.to_transfer} to transfer"]
            if s.to_withdraw:
                figures.append(f"{s.to_withdraw} to withdraw (left out or moved by the lock)")
            for word, n in (
                ("pending", s.pending),
                ("failed", s.failed),
                ("withdrawing", s.withdrawing),
                ("withdrawn", s.withdrawn),
            ):
                if n:
                    figures.append(f"{n} {word}")
            when = [
                f"{word} {_local(value, tz)}"
                for word, value in (
                    ("pushed", s.last_pushed_at),
                    ("withdrawn", s.last_withdrawn_at),
                )
                if value
            ]
            label = s.label or "(no export gives it a badge now)"
            app.out.print(
                f"  {s.system}: {label} — {', '.join(figures)}"
                + (f" (last {', '.join(when)})" if when else "")
            )
    for t in found.transfers:
        counts = ", ".join(
            f"{system}: {c.get('sent', 0)} ok, {c.get('failed', 0)} failed"
            for system, c in t["counts"].items()
        )
        app.out.print(
            f"transfer {t['id']}: {t['action']} {_local(t['started_at'], tz)} {t['outcome']}"
            + (f" ({counts})" if counts else "")
        )


def _local(value: str | None, timezone: str) -> str:
    """An ISO time from the store (UTC) in the workspace's time zone, to the minute."""
    if not value:
        return ""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export", rich_help_panel="Campaigns")
