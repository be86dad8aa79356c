"""The plan as text: a legend, one block per campaign, one summary line (DESIGN.md §2)."""

from __future__ import annotations

import json
from datetime import datetime

from campaignctl.clock import local_text
from campaignctl.plan.lock import LockView, not_contacted_counts
from campaignctl.plan.plan import CampaignPlan, Plan
from campaignctl.plan.targeting import NotContacted

LEGEND = "Legend: + new campaign, ~ changed, - file removed (archive it), > will send, ! refused"


def _n(value: int) -> str:
    return f"{value:,}"


def value_text(value: object) -> str:
    text = "(none)" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def campaign_lines(c: CampaignPlan) -> list[str]:
    mark = c.change or (">" if c.will_send else " ")
    state = c.state or "not applied"
    head = f"{mark} {c.name} ({c.type}, {c.category}; {'draft, ' if c.draft else ''}{state})"
    lines = [head]
    for f in c.fields:
        refused = any(x["path"] == f["path"] for x in c.frozen)
        old, new = value_text(f["old"]), value_text(f["new"])
        lines.append(
            f"    {'!' if refused else '~'} {f['path']}: {old} → {new}"
            + ("  (refused: frozen by the first send)" if refused else "")
        )
    if c.automation is not None:
        a = c.automation
        lines.append(
            f"    automation {a['state']}: trigger {a['trigger']}; {_n(a['affected'])} record(s) "
            f"affected (the next pass would enrol them), {_n(a['enrolled'])} enrolled"
        )
    if c.change == "-":
        lines.append("    file removed: `campaignctl campaign archive " + c.name + "` retires it")
        return lines
    if c.archived:
        lines.append("    archived: not targeted or scheduled (`campaign archive` retired it)")
        return lines
    if not c.channels:
        lines.append("    no channels: shown in the partner space only")
    else:
        lines.append(
            f"    targeted {_n(c.targeted)} record(s); reached {_n(c.reached)}; "
            f"not contacted {_n(c.targeted - c.reached)}"
        )
        for cell in c.matrix:
            lines.append(
                f"      {cell.segment:<24} {cell.channel:<6} {_n(cell.records):>8} record(s)"
            )
        for channel in c.channels:
            records = c.reached_by_channel.get(channel, 0)
            messages = c.messages.get(channel, 0)
            unit = "emails" if channel == "email" else "SMS"
            lines.append(f"    {channel}: {_n(records)} records → {_n(messages)} {unit}")
        for item in c.not_contacted:
            label = NotContacted(item.reason).label
            detail = f" ({item.detail})" if item.detail else ""
            lines.append(f"    not contacted: {item.reason}{detail}: {_n(item.records)} — {label}")
        if c.sms:
            s = c.sms
            if s.total_parts is None:
                lines.append(f"    SMS parts: unknown ({s.note or 'nothing rendered'})")
            else:
                approx = "~" if s.estimated else ""
                cost = f", cost {approx}{s.cost:.2f} {s.currency}" if s.cost is not None else ""
                lines.append(
                    f"    SMS parts: {s.min_parts}–{s.max_parts} per message "
                    f"({s.encoding_text}), "
                    f"{approx}{_n(s.total_parts)} in total{cost}"
                    + (f" (measured on {s.measured})" if s.estimated else "")
                )
    if c.schedule:
        for wave in c.schedule:
            lines.append(f"    {wave.text}  {wave.describe()}")
    elif c.automation is not None and c.channels:
        lines.append("    schedule: its steps send on every scheduler pass (automation)")
    elif c.channels:
        lines.append("    schedule: nothing scheduled (send by hand)")
    if c.not_contacted_records is not None:
        for r in c.not_contacted_records:
            detail = f" ({r['detail']})" if r["detail"] else ""
            lines.append(f"      - {r['key']} [{r['segment']}] {r['reason']}{detail}")
    return lines


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    if not plan.changes and not s["to_send"]:
        return "No changes. Campaigns are up to date."
    line = (
        f"Plan: {s['to_send']} to send, {s['to_add']} to add, {s['to_change']} to change, "
        f"{s['to_archive']} to archive."
    )
    if s["refused"]:
        line += f" {s['refused']} change(s) refused: options frozen by a first send."
    return line


def plan_text(plan: Plan) -> str:
    dirty = " (uncommitted changes)" if plan.git_dirty else ""
    commit = plan.git_commit[:12] if plan.git_commit else "not a git repository"
    lines = [LEGEND, f"Workspace at {commit}{dirty}; today {plan.today} ({plan.timezone})", ""]
    for campaign in plan.campaigns:
        lines += campaign_lines(campaign)
        lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def lock_text(view: LockView, timezone: str) -> str:
    """The lock as `lock` prints it; its time local to the workspace, with the zone."""
    counts = view.counts
    commit = view.git_commit[:12] if view.git_commit else "no git commit"
    verb = "locked" if view.created else "locked since"
    when = local_text(datetime.fromisoformat(view.created_at), timezone)
    lines = [f"{view.campaign}: {verb} {when} at {commit} (lock {view.lock_id})"]
    lines.append(f"  recipients: {_n(counts.get('recipients', 0))}")
    for cell in counts.get("matrix", []):
        lines.append(f"    {cell['segment']:<24} {cell['channel']:<6} {_n(cell['records']):>8}")
    for channel, messages in counts.get("messages", {}).items():
        lines.append(f"  {channel} messages: {_n(messages)}")
    for item in not_contacted_counts(counts):
        detail = f" ({item.detail})" if item.detail else ""
        lines.append(f"  not contacted: {item.reason}{detail}: {_n(item.records)}")
    if view.added is not None:
        lines.append(f"  since the previous lock: +{view.added} -{view.removed} recipient(s)")
        lines += [f"    + {k}" for k in view.added_keys[:50]]
        lines += [f"    - {k}" for k in view.removed_keys[:50]]
    return "\n".join(lines)
