"""`campaignctl send`: deliver the current wave of a locked campaign."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from campaignctl.cli.app import App, confirm, get_app
from campaignctl.cli.options import WorkspaceOption, parse_lock_timeout

if TYPE_CHECKING:
    from campaignctl.delivery.engine import SendEvent, SendSummary

PLAIN_PROGRESS_SECONDS = 10.0
UNCERTAIN_SHOWN = 1_000  # the text lists this many uncertain rows; --json lists them all


def register(app: typer.Typer) -> None:
    app.command("send")(send)


def send(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign to send (its `name:`).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render every message; send and record nothing.")
    ] = False,
    test_to: Annotated[
        str | None,
        typer.Option(
            "--test-to",
            metavar="ADDR|PHONE",
            help="Send one real message to this address (email or phone) as the first record "
            "of the audience would get it; the campaign's state is not touched.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Send at most N messages, then stop (resumable)."),
    ] = None,
    retry_uncertain: Annotated[
        bool,
        typer.Option(
            "--retry-uncertain",
            help="Send again the messages left uncertain by a crash (or by a connection "
            "lost on their last attempt): their recipients may get them twice.",
        ),
    ] = False,
    lock_timeout: Annotated[
        str | None,
        typer.Option(
            "--lock-timeout",
            metavar="DURATION",
            help="Wait this long (30s, 5m) for another send of the campaign to finish "
            "instead of exiting 75.",
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Send a campaign whose first send is scheduled later now, by hand (asked on "
            "a terminal; required without one).",
        ),
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print NDJSON events, one per line (see docs/json.md)."),
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Send the current wave of a locked campaign: resumable, safe to interrupt.

    Ctrl-C or SIGTERM stops claiming, finishes the messages handed to the
    transport, puts the other claimed ones back in the queue and exits 130 / 143
    with the summary. Messages whose fate is unknown after a crash (at most 5 per
    connection) are listed as uncertain and never re-sent unless --retry-uncertain.

    Example: campaignctl send mise-a-jour-2027 --limit 100
    """
    from campaignctl.delivery.engine import SendOptions, StopRequest, send_campaign, send_test
    from campaignctl.errors import ExitCode

    app = get_app(ctx).use(workspace)
    wait = parse_lock_timeout(lock_timeout)
    ws = app.valid_workspace()
    if test_to is not None:
        return _print_test(app, send_test(ws, campaign, test_to), json_output)
    store = app.store()
    app.require_applied(store, campaign)
    early = None if dry_run else _before_its_schedule(store, ws, campaign, now)
    _locked(app, store, ws, campaign, dry_run)
    if early:
        app.err.print(early)
    stop = StopRequest()
    with _Progress(app, json_output, ws.config.timezone) as progress, _signals(stop):
        summary = send_campaign(
            store,
            ws,
            campaign,
            SendOptions(
                dry_run=dry_run,
                limit=limit,
                retry_uncertain=retry_uncertain,
                lease_wait=wait,
                progress=progress,
                stop=stop,
            ),
        )
        progress.summary(summary)
    codes = {"SIGINT": ExitCode.INTERRUPTED, "SIGTERM": ExitCode.TERMINATED}
    if summary.stopped in codes:
        raise typer.Exit(int(codes[summary.stopped]))
    code = summary.progress.exit_code  # 1 failed or uncertain, 75 held or retrying
    if code:
        raise typer.Exit(int(code))


def _before_its_schedule(store: Any, ws: Any, campaign: str, now: bool) -> str | None:
    """A campaign whose first send is scheduled later goes now only when the person says so
    (--now, or yes at the prompt); then the note that names the schedule it overtakes."""
    from campaignctl import clock
    from campaignctl.schedule.scheduler import scheduled_first_send

    tz = ws.config.timezone
    # an archived campaign is refused as such first
    at = scheduled_first_send(store, ws.campaign(campaign), tz, clock.now())
    if at is None:
        return None
    when = clock.local_text(at, tz)
    confirm(now, f"{campaign} is scheduled for {when}: send it now, by hand", flag="--now")
    return (
        f"{campaign} is scheduled for {when}; sending now by hand (the scheduler will not "
        "send this first wave again; its relaunches keep their dates)"
    )


def _locked(app: Any, store: Any, ws: Any, campaign: str, dry_run: bool) -> None:
    """Send uses the lock, locking first if there is none (and saying so); a template or
    definition edited since the lock is refused until `lock --refresh`."""
    from campaignctl.plan.lock import active_or_new_lock, check_content, current_lock

    if dry_run and current_lock(store, campaign) is None:
        return  # a dry run writes nothing, not even a lock: the engine locks virtually
    view = active_or_new_lock(store, ws, campaign)
    if view.created:
        app.err.print(
            f"{campaign} was not locked: locked it now (lock {view.lock_id}, "
            f"{view.counts.get('recipients', 0)} recipients); see `campaignctl lock {campaign}`"
        )
    check_content(store, ws, campaign)


def _print_test(app: App, results: list[dict[str, Any]], json_output: bool) -> None:
    if json_output:
        app.print_json({"format_version": 1, "test_to": results})
    for item in results:
        app.err.print(
            f"test {item['channel']} to {item['to']} (as {item['record']}): "
            f"{item['status']} — {item['reply']}"
        )
    if any(item["status"] != "sent" for item in results):
        raise typer.Exit(1)


class _signals:
    """SIGINT and SIGTERM ask the engine to stop claiming instead of killing the process."""

    def __init__(self, stop: Any) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(
                sig, lambda number, _frame: self.stop.request(signal.Signals(number).name)
            )

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class _Progress:
    """Renders engine events: NDJSON with --json, a bar on a TTY, a line every 10 s otherwise."""

    def __init__(self, app: App, json_output: bool, timezone: str) -> None:
        self.app = app
        self.json = json_output
        self.timezone = timezone
        self.bar: Any = None
        self.task: Any = None
        self.last_line = time.monotonic()
        self.due = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _ndjson(self, document: dict[str, Any]) -> None:
        import json
        import sys

        sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def __call__(self, event: SendEvent) -> None:
        if self.json:
            return self._ndjson(event.as_json())
        err, data = self.app.err, event.data
        if event.type == "start":
            self.due = data["due"]
            err.print(
                f"Sending {data['campaign']} wave {data['wave']}: {data['due']} to send now "
                f"({data['total']} messages: {data['sent']} already sent, "
                f"{data['suppressed']} suppressed, {data['skipped']} skipped)"
            )
            if err.is_terminal and self.due:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                self.bar = Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[detail]}"), console=err, transient=True,
                )  # fmt: skip
                self.task = self.bar.add_task("sending", total=self.due, detail="")
                self.bar.start()
        elif event.type == "warning":
            err.print(f"note: {data['message']}")
        elif event.type == "uncertain":
            err.print(_uncertain_text(data["count"], data["rows"]))
        elif event.type == "progress":
            done = data.get("rendered", data.get("sent", 0) + data.get("failed", 0))
            detail = f"{data.get('failed', 0)} failed, {data.get('rate', 0):.0f} msg/s"
            if self.bar is not None:
                self.bar.update(self.task, completed=done, detail=detail)
            elif time.monotonic() - self.last_line >= PLAIN_PROGRESS_SECONDS:
                self.last_line = time.monotonic()
                err.print(f"sent {done}/{self.due}, {detail}")

    def summary(self, summary: SendSummary) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.json:
            return self._ndjson({"type": "summary", **summary.as_json()})
        self.app.err.print(summary_text(summary, self.timezone))


def _uncertain_text(count: int, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{count} message(s) are uncertain: they may or may not have reached the recipient "
        "(a sender stopped or a connection dropped after the message was handed over). "
        "They are not sent again; review them, then `send --retry-uncertain` to resend."
    ]
    for row in rows[:UNCERTAIN_SHOWN]:
        lines.append(
            f"  {row['channel']} {row['address']} (record {row['record_key']}, "
            f"message {row['message_id'] or '?'})"
        )
    if count > UNCERTAIN_SHOWN:
        lines.append(f"  … and {count - UNCERTAIN_SHOWN} more (`send --json` lists them all)")
    return "\n".join(lines)


def summary_text(summary: SendSummary, timezone: str) -> str:
    """The closing paragraph of `send` (stderr); times in the workspace's time zone."""
    s = summary
    if s.dry_run:
        virtual = (
            f"{s.campaign} is not locked: rendered from what a lock made now would freeze "
            f"({s.virtual_lock} recipients; `campaignctl lock {s.campaign}` records it, as "
            "`send` does first).\n"
            if s.virtual_lock is not None
            else ""
        )
        return (
            f"{virtual}Dry run of {s.campaign} wave {s.wave}: {s.rendered} message(s) rendered, "
            f"{s.failed} failed to render, {s.suppressed} suppressed, {s.skipped} skipped; "
            "nothing was sent or recorded." + _other_campaigns_text(s)
        )
    text = (
        f"{s.campaign} wave {s.wave}: {s.sent} sent, {s.failed} failed, {s.bounced} bounced, "
        f"{s.retrying} retrying, {s.uncertain} uncertain, {s.suppressed} suppressed, "
        f"{s.skipped} skipped ({s.rate:.0f} msg/s)."
    )
    for waits in s.progress.waits(timezone):
        text += (
            f"\n{waits}: the scheduler's first pass after that sends them, "
            f"or run `campaignctl send {s.campaign}` again then."
        )
    if s.stopped in ("SIGINT", "SIGTERM", "limit") and s.remaining:
        why = "--limit reached" if s.stopped == "limit" else f"stopped by {s.stopped}"
        text += f"\n{why}: {s.remaining} message(s) left; run send again to resume."
    if s.uncertain:
        rows = [row.as_json() for row in s.uncertain_rows]
        text += "\n" + _uncertain_text(s.uncertain, rows)
    return text + _other_campaigns_text(s)


def _other_campaigns_text(s: SendSummary) -> str:
    """The records the lock left out for another active questionnaire campaign, by name."""
    return "".join(
        f"\n{n} record(s) not contacted: already asked by active questionnaire campaign "
        f"{other} (`campaignctl plan {s.campaign} --show not-contacted` lists them)."
        for other, n in s.other_campaigns.items()
    )
