"""`campaignctl scheduler tick|run|status`: run due waves from cron, or as a daemon."""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import (
    JsonOption,
    LockTimeoutOption,
    WorkspaceOption,
    parse_lock_timeout,
)

if TYPE_CHECKING:
    from campaignctl.cli.app import App

scheduler_app = typer.Typer(help="Run scheduled waves, relaunches and recurrences.")


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        help="text: one line per action on stderr; json: one JSON object per line on stdout.",
    ),
]


def _logger(app: App, log_format: LogFormat):
    import json

    def log(action: Any) -> None:
        if log_format == LogFormat.JSON:
            sys.stdout.write(json.dumps(action.as_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            app.err.print(action.text())

    return log


def _say(app: App, log_format: LogFormat, kind: str, text: str, **fields: Any) -> None:
    import json

    if log_format == LogFormat.JSON:
        document = {"type": kind, "message": text, **fields}
        sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
    else:
        app.err.print(text)


@scheduler_app.command("tick")
def tick(
    ctx: typer.Context,
    lock_timeout: LockTimeoutOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    workspace: WorkspaceOption = None,
) -> None:
    """One scheduler pass, for cron: create the due waves, send them, exit.

    Takes the scheduler lease first: when another tick or the daemon holds it, exits 75
    at once (or waits with --lock-timeout). A wave more than scheduler.max_lateness late
    is recorded as missed. Exits 1 when a wave failed or was missed, or a message failed
    or is uncertain; else 75 while messages wait (SMS held by quiet hours, retries: a
    later tick sends them) or a wave was postponed; else 0.

    Example: campaignctl scheduler tick --log-format json
    """
    from campaignctl.schedule.daemon import tick as one_tick

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    store = app.store()
    wait = parse_lock_timeout(lock_timeout)
    result = one_tick(store, ws, wait=wait, log=_logger(app, log_format))
    counts: dict = {str(t): result.count(t) for t in _types()}
    if result.automations is not None and result.automations.campaigns:
        counts["automations"] = result.automations.as_json()
    _say(app, log_format, "pass", result.summary(), **counts)
    if result.exit_code:
        raise typer.Exit(int(result.exit_code))


def _types():
    from campaignctl.schedule.scheduler import ActionType

    return ActionType


@scheduler_app.command("run")
def run(
    ctx: typer.Context,
    interval: Annotated[
        int, typer.Option("--interval", min=1, help="Seconds between passes.")
    ] = 60,
    lock_timeout: LockTimeoutOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
    workspace: WorkspaceOption = None,
) -> None:
    """Run the scheduler as a daemon (systemd): a pass every --interval seconds.

    Holds the scheduler lease for its whole life and renews it (the heartbeat that
    `scheduler status` shows), so ticks from cron exit 75 meanwhile. Definitions are
    re-read from the store on every pass (`apply` is enough). SIGTERM or Ctrl-C stops
    it after the wave in flight.

    Example: campaignctl scheduler run --log-format json
    """
    from functools import partial

    from campaignctl.schedule.daemon import run_daemon

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    store = app.store()
    wait = parse_lock_timeout(lock_timeout)
    say = partial(_say, app, log_format)
    run_daemon(store, ws, interval=interval, wait=wait, log=_logger(app, log_format), say=say)


@scheduler_app.command("status")
def status(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="How far ahead to look.")] = 30,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show who holds the scheduler lease, its heartbeat, recent waves and the next ones due.

    Example: campaignctl scheduler status --json
    """
    from datetime import timedelta

    from campaignctl import clock
    from campaignctl.clock import local_text
    from campaignctl.schedule.scheduler import scheduler_status
    from campaignctl.waves.known import SchedulerOptions

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    options = SchedulerOptions.from_workspace(ws)
    now = clock.now()
    state = scheduler_status(app.store(), options, now, horizon=timedelta(days=days))
    if json_output:
        app.print_json(
            {
                "format_version": 1,
                "lease": state.lease.as_json(now) if state.lease else None,
                "recent": [_recent_json(r) for r in state.recent],
                "next": [{"campaign": w.campaign, "key": w.key, "kind": str(w.kind),
                          "local": w.local.isoformat()} for w in state.next_waves],
            }
        )  # fmt: skip
        return
    lease, tz = state.lease, ws.config.timezone
    if lease is None:
        app.out.print("scheduler: never ran")
    elif state.held:
        app.out.print(
            f"scheduler: running ({lease.holder}, {lease.operation}) since "
            f"{local_text(lease.since, tz)}, last heartbeat {local_text(lease.heartbeat_at, tz)}"
        )
    else:
        app.out.print(
            f"scheduler: idle; last pass by {lease.holder} ({lease.operation}) ended "
            f"{local_text(lease.heartbeat_at, tz)}"
        )
    table = app.table("Recent waves", "campaign", "wave", "key", "status", "due", "note")
    table.columns[4].no_wrap = True
    for column, field in ((0, "campaign"), (2, "occurrence_key")):  # names are never cut
        table.columns[column].min_width = max((len(r[field]) for r in state.recent), default=0)
    for r in state.recent:
        when, progress = r["scheduled_for"], r["progress"]
        note = "; ".join([*progress.waits(tz), *([r["note"]] if r["note"] else [])])
        table.add_row(r["campaign"], str(r["number"]), r["occurrence_key"], str(progress.state),
                      local_text(when, tz) if when else "", note)  # fmt: skip
    if state.recent:
        app.out.print(table)
    upcoming = app.table(f"Next waves (next {days} days)", "when (local)", "campaign", "wave")
    upcoming.columns[0].no_wrap = True
    for wave in state.next_waves:
        upcoming.add_row(
            f"{wave.local:%a} {local_text(wave.at, wave.timezone)}", wave.campaign, wave.label()
        )
    if state.next_waves:
        app.out.print(upcoming)
    else:
        app.out.print(f"Nothing due in the next {days} days.")


def _recent_json(row: dict[str, Any]) -> dict[str, Any]:
    when = row["scheduled_for"]
    fields = {k: v for k, v in row.items() if k not in ("id", "progress")}
    return {
        **fields,
        "status": str(row["status"]),
        "scheduled_for": when.isoformat() if when else None,
        **row["progress"].as_json(),
    }


def register(app: typer.Typer) -> None:
    app.add_typer(scheduler_app, name="scheduler", rich_help_panel="Schedules")
