"""`campaignctl calendar`: what is scheduled when."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import JsonOption, WorkspaceOption
from campaignctl.errors import UsageError, writing

DEFAULT_DAYS = 90


def calendar(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD; default: today).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", help=f"Last day (YYYY-MM-DD; default: {DEFAULT_DAYS} days after --from)."
        ),
    ] = None,
    ics: Annotated[
        Path | None, typer.Option("--ics", dir_okay=False, help="Also write an iCalendar file.")
    ] = None,
    drafts: Annotated[bool, typer.Option("--drafts", help="Include draft campaigns.")] = False,
    json_output: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """List every scheduled send, recurrence and relaunch in a period.

    Times are shown in each campaign's time zone with the UTC offset; a local
    time that does not exist on a clock-change day is moved and flagged.

    Example: campaignctl calendar --from 2027-03-01 --to 2027-03-31 --ics campagnes.ics
    """
    from campaignctl import clock
    from campaignctl.waves.known import read_known_waves
    from campaignctl.waves.timeline import day_bounds, workspace_timeline

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    tz = ws.config.timezone
    first = _day("--from", start) if start else clock.today(tz)
    last = _day("--to", end) if end else min(first + timedelta(DEFAULT_DAYS), clock.LAST_DAY)
    if last < first:
        raise UsageError(f"--to ({last}) is before --from ({first})")
    lo, hi = day_bounds(first, last, tz)
    waves = workspace_timeline(list(ws.campaigns.values()), tz, lo, hi, include_drafts=drafts)
    # a wave sent by hand before its time is done already
    known = {key: str(state) for key, state in read_known_waves(app.store()).items()}
    if ics is not None:
        from campaignctl.schedule.ical import calendar_ics

        with writing(ics):
            ics.write_bytes(calendar_ics(waves, ws.config.organization.name, clock.now()))
        app.err.print(f"wrote {len(waves)} event(s) to {ics}")
    if json_output:
        app.print_json(
            {
                "format_version": 1,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "waves": [_wave_json(w, known.get(w.key)) for w in waves],
            }
        )
        return
    _print_table(app, waves, known, first, last)


def _day(option: str, text: str) -> date:
    """A --from/--to value, or a usage error naming it."""
    from campaignctl import clock

    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: {exc}", hint="write dates as YYYY-MM-DD") from None
    if not clock.in_range(day):
        raise UsageError(f"{option} {text!r} is out of range: {clock.RANGE_TEXT}")
    return day


def _wave_json(wave, state: str | None) -> dict[str, object]:
    return {
        "campaign": wave.campaign,
        "kind": str(wave.kind),
        "key": wave.key,
        "occurrence": wave.occurrence,
        "relaunch": wave.relaunch,
        "at": wave.at.isoformat(),
        "local": wave.local.isoformat(),
        "timezone": wave.timezone,
        "target": str(wave.target) if wave.target else None,
        "channels": [str(c) for c in wave.channels],
        "note": wave.note,
        "state": state,  # in the store already (sent by hand before its time): sent, created…
    }


def _done(state: str, at: datetime, now: datetime) -> str:
    """What the store says of a wave: `sent`, or `sent by hand, before its time`."""
    return f"{state} by hand, before its time" if at > now else state


def _print_table(app, waves, known: dict[str, str], first: date, last: date) -> None:
    from campaignctl import clock

    now = clock.now()
    if not waves:
        app.err.print(f"Nothing scheduled from {first} to {last}.")
        return
    table = app.table(
        f"Scheduled waves, {first} → {last}", "when (local)", "campaign", "wave", "channels", "note"
    )
    table.columns[0].no_wrap = True  # a time reads on one line; the other columns may wrap
    table.columns[1].min_width = max(len(w.campaign) for w in waves)  # a name is never cut
    for wave in waves:
        table.add_row(
            f"{wave.local:%a} {clock.local_text(wave.at, wave.timezone)}",
            wave.campaign,
            wave.label(),
            ", ".join(wave.channels),
            "; ".join(
                ([_done(known[wave.key], wave.at, now)] if wave.key in known else [])
                + ([wave.note] if wave.note else [])
            ),
        )
    app.out.print(table)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Schedules")(calendar)
