"""The plan on a terminal: one panel per campaign with its tables (DESIGN.md §2).

Off a terminal (pipes, CI, files) `plan` and `show` print `plan.render.plan_text`
unchanged: that text is what reviewers read in pull requests and what scripts
parse. This layout carries the same figures, in the same order, for a person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaignctl.plan.plan import CampaignPlan, Plan
from campaignctl.plan.render import LEGEND, plan_text, summary_line, value_text
from campaignctl.plan.targeting import NotContacted

if TYPE_CHECKING:
    from campaignctl.cli.app import App

MARK_STYLES = {"+": "bold green", "~": "bold yellow", "-": "bold red", ">": "bold cyan"}


def print_plan(app: App, plan: Plan) -> None:
    """The plan on stdout: the rich layout on a terminal, the plain text otherwise."""
    if not app.out.is_terminal:
        app.out.print(plan_text(plan))
        return
    from rich.text import Text

    console = app.out
    dirty = " (uncommitted changes)" if plan.git_dirty else ""
    commit = plan.git_commit[:12] if plan.git_commit else "not a git repository"
    console.print(Text(LEGEND, style="dim"))
    console.print(
        Text.assemble(
            "Workspace at ",
            (commit, "bold"),
            (dirty, "yellow"),
            f"; today {plan.today}",
            f" ({plan.timezone})",
        )
    )
    for campaign in plan.campaigns:
        console.print(_campaign_panel(app, campaign))
    changes = plan.changes or plan.summary()["to_send"]
    console.print(Text(summary_line(plan), style="bold" if changes else "green"))


def _n(value: int) -> str:
    return f"{value:,}"


def _campaign_panel(app: App, c: CampaignPlan) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    mark = c.change or (">" if c.will_send else " ")
    state = c.state or "not applied"
    title = Text.assemble(
        (f"{mark} ", MARK_STYLES.get(mark, "")),
        (c.name, "bold"),
        f" ({c.type}, {c.category}; {'draft, ' if c.draft else ''}{state})",
    )
    parts: list[Any] = []
    for f in c.fields:
        refused = any(x["path"] == f["path"] for x in c.frozen)
        parts.append(
            Text.assemble(
                ("! " if refused else "~ ", "bold red" if refused else "yellow"),
                f"{f['path']}: ",
                (value_text(f["old"]), "red"),
                " → ",
                (value_text(f["new"]), "green"),
                ("  (refused: frozen by the first send)" if refused else "", "bold red"),
            )
        )
    if c.automation is not None:
        a = c.automation
        parts.append(
            Text(
                f"automation {a['state']}: trigger {a['trigger']}; {_n(a['affected'])} record(s) "
                f"affected (the next pass would enrol them), {_n(a['enrolled'])} enrolled"
            )
        )
    if c.change == "-":
        parts.append(Text(f"file removed: `campaignctl campaign archive {c.name}` retires it"))
    elif c.archived:
        parts.append(
            Text("archived: not targeted or scheduled (`campaign archive` retired it)", "dim")
        )
    elif not c.channels:
        parts.append(Text("no channels: shown in the partner space only", style="dim"))
    else:
        parts += _figures(app, c)
    if c.change != "-" and not c.archived:
        parts.append(_schedule(app, c))
    if c.not_contacted_records is not None:
        listing = app.table("Not contacted", "record", "segment", "reason")
        for r in c.not_contacted_records:
            detail = f" ({r['detail']})" if r["detail"] else ""
            listing.add_row(r["key"], r["segment"] or "", f"{r['reason']}{detail}")
        parts.append(listing)
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def _figures(app: App, c: CampaignPlan) -> list[Any]:
    from rich.text import Text

    parts: list[Any] = [
        Text.assemble(
            "targeted ",
            (_n(c.targeted), "bold"),
            " record(s); reached ",
            (_n(c.reached), "bold green"),
            "; not contacted ",
            (_n(c.targeted - c.reached), "bold yellow" if c.targeted > c.reached else ""),
        )
    ]
    matrix = app.table(None, "segment", "channel", "records", "messages")
    for column in matrix.columns[2:]:
        column.justify = "right"
    for cell in c.matrix:
        matrix.add_row(cell.segment, cell.channel, _n(cell.records), _n(cell.messages))
    for channel in c.channels:
        unit = "emails" if channel == "email" else "SMS"
        records, messages = c.reached_by_channel.get(channel, 0), c.messages.get(channel, 0)
        matrix.add_row(
            Text("total", style="bold"),
            channel,
            Text(_n(records), style="bold"),
            Text(f"{_n(messages)} {unit}", style="bold"),
        )
    parts.append(matrix)
    if c.not_contacted:
        reasons = app.table(None, "not contacted", "records", "why")
        reasons.columns[1].justify = "right"
        for item in c.not_contacted:
            detail = f" ({item.detail})" if item.detail else ""
            reasons.add_row(
                f"{item.reason}{detail}", _n(item.records), NotContacted(item.reason).label
            )
        parts.append(reasons)
    if c.sms:
        s = c.sms
        if s.total_parts is None:
            parts.append(Text(f"SMS parts: unknown ({s.note or 'nothing rendered'})", "yellow"))
        else:
            approx = "~" if s.estimated else ""
            cost = f", cost {approx}{s.cost:.2f} {s.currency}" if s.cost is not None else ""
            measured = f" (measured on {s.measured})" if s.estimated else ""
            parts.append(
                Text(
                    f"SMS parts: {s.min_parts}–{s.max_parts} per message ({s.encoding_text}), "
                    f"{approx}{_n(s.total_parts)} in total{cost}{measured}"
                )
            )
    return parts


def _schedule(app: App, c: CampaignPlan) -> Any:
    from rich.text import Text

    if not c.schedule:
        if c.automation is not None and c.channels:
            return Text("schedule: its steps send on every scheduler pass", style="dim")
        if c.channels:
            return Text("schedule: nothing scheduled (send by hand)", style="dim")
        return Text("")
    table = app.table(None, "when", "time zone", "wave")
    for wave in c.schedule:
        table.add_row(wave.text, wave.timezone, wave.describe())
    return table
