"""`plan`: what would happen, computed read-only from definitions × records × history.

A plan is per campaign: the segment × channel matrix (records reached, messages),
the records not contacted and why, SMS parts and cost, the schedule of the next
90 days, and the definition changes against what `apply` recorded. It is
computed in the store with SQL (see `targeting.selection`). A saved plan records
the hash of the definitions and the store serial it was computed from, so that
`apply PLANFILE` refuses to act on a stale one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.audience.segments import workspace_today
from campaignctl.automation.figures import automation_plan
from campaignctl.enums import CampaignState, Channel
from campaignctl.errors import CampaignctlError, InputError, UsageError, writing
from campaignctl.plan.definitions import (
    ChangeAction,
    DefinitionChange,
    canonical,
    content_hash,
    diff_definition,
    git_state,
)
from campaignctl.plan.targeting import CAMPAIGN, NotContacted, materialized
from campaignctl.spec.models import Campaign
from campaignctl.spec.templates import TEMPLATES_DIR
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.store.tables import RECORD
from campaignctl.waves.due import Decision, KnownState
from campaignctl.waves.known import SchedulerOptions, known_waves, pending_waves
from campaignctl.waves.timeline import timeline

FORMAT_VERSION = 1
SCHEDULE_DAYS = 90
NEXT_SEND_YEARS = 10  # how far plan looks for a next send when none falls in SCHEDULE_DAYS
SMS_SAMPLE = 200  # SMS rendered at most per campaign to measure parts (the rest is estimated)


# ----------------------------------------------------------------------------- definitions
def template_files(workspace: Workspace, campaign: Campaign) -> list[Path]:
    """The template files a campaign's messages are built from (its content)."""
    root = workspace.root / TEMPLATES_DIR
    names = set()
    if campaign.message:
        names.add(campaign.message.template)
    if campaign.schedule:
        names |= {r.template for r in campaign.schedule.relaunch if r.template}
    stack = list(campaign.steps)
    while stack:
        step = stack.pop()
        if step.send and step.send.template:
            names.add(step.send.template)
        stack += [*step.then, *step.else_]
    files = [p for n in names for p in root.glob(f"{n}.*.j2")]
    if (root / "layouts").is_dir():
        files += [p for p in (root / "layouts").rglob("*") if p.is_file()]
    signature = workspace.config.organization.signature if workspace.config else None
    if signature and (workspace.root / signature).is_file():
        files.append(workspace.root / signature)
    return sorted(set(files))


def content_hashes(workspace: Workspace, campaign: Campaign) -> dict[str, str]:
    """Path (relative to the workspace) → SHA-256 of each template file, and of the definition."""
    import hashlib

    hashes = {
        p.relative_to(workspace.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in template_files(workspace, campaign)
    }
    hashes["(definition)"] = content_hash(canonical(campaign))
    return hashes


def campaign_hash(workspace: Workspace, campaign: Campaign) -> str:
    return content_hash(content_hashes(workspace, campaign))


def applied_definitions(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """name → {definition, content_hash, state, first_sent_at} of every applied campaign."""
    rows = conn.execute(
        sa.select(
            CAMPAIGN.c.name,
            CAMPAIGN.c.definition,
            CAMPAIGN.c.content_hash,
            CAMPAIGN.c.state,
            CAMPAIGN.c.first_sent_at,
        )
    )
    return {r.name: dict(r._mapping) for r in rows}


# ----------------------------------------------------------------------------- the plan
@dataclass
class MatrixCell:
    segment: str
    channel: str
    records: int
    messages: int


@dataclass
class NotContactedCount:
    reason: str
    records: int
    detail: str | None = None  # the other campaign of an other_campaign conflict


@dataclass
class SmsFigures:
    recipients: int
    measured: int  # how many were rendered to count parts
    min_parts: int | None
    max_parts: int | None
    total_parts: int | None  # exact when measured == recipients, else estimated
    estimated: bool
    cost: float | None
    currency: str | None
    note: str | None = None
    # measured messages per encoding (gsm-7, ucs-2): one character outside GSM-7, an emoji,
    # makes a message UCS-2, 70 characters a part instead of 160
    encodings: dict[str, int] = field(default_factory=dict)

    @property
    def encoding_text(self) -> str:
        """`GSM-7`, `UCS-2`, or `GSM-7 for 6, UCS-2 for 3` when the messages differ."""
        names = {name: name.upper() for name in self.encodings}
        if not names:  # a plan saved before encodings were counted
            return "encoding not recorded"
        if len(names) == 1:
            return next(iter(names.values()))
        return ", ".join(f"{names[n]} for {count}" for n, count in sorted(self.encodings.items()))


@dataclass
class WaveTime:
    key: str
    label: str
    local: str  # ISO with the UTC offset
    timezone: str
    note: str | None = None
    # a past wave the scheduler has not handled: "due" (its next pass sends it), "missed"
    # (it will record it missed) or "waiting" (a relaunch after a first send not done yet);
    # None for a wave to come
    status: str | None = None

    def describe(self) -> str:
        """'recurrence', 'first send (…note)', or what the scheduler will do with a past wave."""
        if self.status:
            return f"{self.label}: {self.note}"
        return f"{self.label} ({self.note})" if self.note else self.label

    @property
    def text(self) -> str:
        """`2027-03-01 09:00 CET (+01:00)`: how plan shows it to a person."""
        return clock.local_text(datetime.fromisoformat(self.local), self.timezone)


@dataclass
class CampaignPlan:
    name: str
    type: str
    category: str
    draft: bool
    state: str | None  # as applied; None when never applied
    change: str | None  # "+", "~", "-" or None
    fields: list[dict[str, Any]] = field(default_factory=list)
    frozen: list[dict[str, Any]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    targeted: int = 0
    reached: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    reached_by_channel: dict[str, int] = field(default_factory=dict)
    grouped: bool = False
    matrix: list[MatrixCell] = field(default_factory=list)
    not_contacted: list[NotContactedCount] = field(default_factory=list)
    not_contacted_records: list[dict[str, Any]] | None = None
    sms: SmsFigures | None = None
    schedule: list[WaveTime] = field(default_factory=list)
    sent: bool = False  # the campaign already sent a wave
    # automations: state (active, inactive, draft…), affected (the trigger would enrol
    # now), enrolled, trigger (automation.figures.AutomationPlan)
    automation: dict[str, Any] | None = None

    @property
    def will_send(self) -> bool:
        """Something is left to send: a first wave not sent yet, or a wave of its schedule
        still to come (a relaunch after a first send by hand)."""
        if self.draft or self.change == "-" or sum(self.messages.values()) == 0:
            return False
        return not self.sent or any(w.status in (None, "due", "waiting") for w in self.schedule)

    @property
    def archived(self) -> bool:
        return self.state == CampaignState.ARCHIVED.value


@dataclass
class Plan:
    format_version: int
    created_at: str
    today: str
    timezone: str
    git_commit: str | None
    git_dirty: bool
    definitions_hash: str
    definitions: dict[str, str]  # campaign → hash of its definition and templates
    store_serial: int
    campaigns: list[CampaignPlan]

    @property
    def changes(self) -> int:
        return sum(1 for c in self.campaigns if c.change)

    def summary(self) -> dict[str, int]:
        return {
            "to_send": sum(1 for c in self.campaigns if c.will_send),
            "to_add": sum(1 for c in self.campaigns if c.change == "+"),
            "to_change": sum(1 for c in self.campaigns if c.change == "~"),
            "to_archive": sum(1 for c in self.campaigns if c.change == "-"),
            "refused": sum(1 for c in self.campaigns if c.frozen),
        }

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data

    def save(self, path: Path) -> None:
        with writing(path):
            path.write_text(json.dumps(self.as_json(), ensure_ascii=False, indent=2) + "\n")


def load_plan(path: Path) -> Plan:
    """A saved plan (`plan --out`); InputError (exit 65) naming what is wrong with any
    other file, UsageError when there is no such file."""
    hint = "write one with `campaignctl plan --out FILE`"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such plan file", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it as a saved plan ({exc})", hint=hint) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}" if hasattr(exc, "lineno") else str(path)
        raise InputError(
            f"{where}: not a saved plan: invalid JSON ({getattr(exc, 'msg', exc)})", hint=hint
        ) from None
    if not isinstance(data, dict) or "format_version" not in data or "campaigns" not in data:
        raise InputError(
            f"{path}: not a saved plan: a JSON document without format_version and campaigns",
            hint=hint,
        )
    if data["format_version"] != FORMAT_VERSION:
        raise InputError(
            f"{path}: plan format {data['format_version']!r} is not supported "
            f"(this campaignctl reads format {FORMAT_VERSION})",
            hint="make the plan again with this version: `campaignctl plan --out FILE`",
        )
    try:
        data.pop("summary", None)
        campaigns = []
        for c in data.pop("campaigns"):
            c["matrix"] = [MatrixCell(**m) for m in c["matrix"]]
            c["not_contacted"] = [NotContactedCount(**n) for n in c["not_contacted"]]
            c["sms"] = SmsFigures(**c["sms"]) if c["sms"] else None
            c["schedule"] = [WaveTime(**w) for w in c["schedule"]]
            campaigns.append(CampaignPlan(**c))
        return Plan(**data, campaigns=campaigns)
    except (KeyError, TypeError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"{path}: not a saved plan: {detail}", hint=hint) from None


@dataclass(frozen=True)
class PlanOptions:
    names: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    show_not_contacted: bool = False
    now: datetime | None = None


def _matches(campaign: Campaign, selector: str) -> bool:
    """dbt-like: `NAME`, `tag:T`, `type:T` (a trailing * matches a prefix)."""
    kind, _, value = selector.partition(":") if ":" in selector else ("name", "", selector)
    candidates = {
        "name": [campaign.name],
        "tag": list(campaign.tags),
        "type": [str(campaign.type)],
    }.get(kind)
    if candidates is None:
        raise UsageError(f"unknown selector {selector!r}", hint="use NAME, tag:TAG or type:TYPE")
    if value.endswith("*"):
        return any(c.startswith(value[:-1]) for c in candidates)
    return value in candidates


def select_campaigns(workspace: Workspace, options: PlanOptions) -> list[Campaign]:
    for name in options.names:
        workspace.campaign(name)  # a name that is not a campaign: exit 64, "did you mean"
    chosen = [
        c
        for name, c in sorted(workspace.campaigns.items())
        if (not options.names or name in options.names)
        and (not options.select or any(_matches(c, s) for s in options.select))
        and not any(_matches(c, s) for s in options.exclude)
    ]
    return chosen


def definitions_state(workspace: Workspace) -> dict[str, str]:
    return {name: campaign_hash(workspace, c) for name, c in sorted(workspace.campaigns.items())}


def compute_plan(store: Store, workspace: Workspace, options: PlanOptions = PlanOptions()) -> Plan:
    """The plan of the selected campaigns (all by default); read-only."""
    assert workspace.config is not None
    now = options.now or clock.now()
    tz = workspace.config.timezone
    today = workspace_today(workspace, now)
    campaigns = select_campaigns(workspace, options)
    selected_all = not (options.names or options.select or options.exclude)
    git = git_state(workspace.root)
    definitions = definitions_state(workspace)
    store.ensure_schema()
    with store.read() as conn:
        serial = int(conn.execute(sa.text("SELECT serial FROM store_state WHERE id = 1")).scalar())
        applied = applied_definitions(conn)
        plans = [
            _campaign_plan(conn, workspace, c, applied.get(c.name), today, now, options)
            for c in campaigns
        ]
    if selected_all:  # campaigns applied but whose file is gone
        for name in sorted(set(applied) - set(workspace.campaigns)):
            row = applied[name]
            if str(row["state"]) == CampaignState.ARCHIVED.value:
                continue
            definition = row["definition"] or {}
            plans.append(
                CampaignPlan(
                    name,
                    str(definition.get("type", "")),
                    str(definition.get("category", "")),
                    False,
                    str(row["state"]),
                    ChangeAction.DELETE.value,
                )
            )
    return Plan(
        FORMAT_VERSION,
        now.isoformat(),
        today.isoformat(),
        tz,
        git.commit,
        git.dirty,
        content_hash(definitions),
        definitions,
        serial,
        plans,
    )


def _campaign_plan(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: Campaign,
    applied: dict[str, Any] | None,
    today: Any,
    now: datetime,
    options: PlanOptions,
) -> CampaignPlan:
    change: DefinitionChange | None = diff_definition(
        campaign.name,
        applied["definition"] if applied else None,
        canonical(campaign),
        sent=bool(applied and applied["first_sent_at"]),
    )
    plan = CampaignPlan(
        campaign.name,
        str(campaign.type),
        campaign.category,
        campaign.draft,
        str(applied["state"]) if applied else None,
        change.action.value if change else None,
        [{"path": f.path, "old": f.old, "new": f.new} for f in change.fields] if change else [],
        [{"path": f.path, "old": f.old, "new": f.new} for f in change.frozen] if change else [],
        [str(c) for c in campaign.channels],
        grouped=campaign.options.group_by_email,
        sent=bool(applied and applied["first_sent_at"]),
    )
    if campaign.trigger is not None:
        plan.automation = automation_plan(conn, workspace, campaign, now).as_json()
    if plan.archived:  # retired by `campaign archive`: nothing to target or schedule
        return plan
    plan.schedule = _schedule(conn, workspace, campaign, now)
    if not campaign.channels:
        return plan
    # computed once into a temporary table: the figures, the not-contacted list and the
    # SMS sample read it (the selection itself sorts and classifies every targeted record)
    with materialized(conn, workspace, campaign, today) as chosen:
        rows = conn.execute(
            sa.select(
                chosen.c.segment,
                chosen.c.channel,
                chosen.c.reason,
                chosen.c.detail,
                sa.func.count(),
                sa.func.sum(chosen.c.leader),
            ).group_by(chosen.c.segment, chosen.c.channel, chosen.c.reason, chosen.c.detail)
        ).all()
        order = {name: i for i, name in enumerate(campaign.audience.segments)}
        channel_order = {str(c): i for i, c in enumerate(campaign.channels)}
        reasons: dict[tuple[str, str | None], int] = {}
        for segment, channel, reason, detail, count, leaders in rows:
            plan.targeted += count
            if reason is None:
                plan.matrix.append(MatrixCell(segment, channel, count, int(leaders or 0)))
                plan.reached += count
                plan.reached_by_channel[channel] = plan.reached_by_channel.get(channel, 0) + count
                plan.messages[channel] = plan.messages.get(channel, 0) + int(leaders or 0)
            else:
                reasons[(reason, detail)] = reasons.get((reason, detail), 0) + count
        plan.matrix.sort(key=lambda m: (order.get(m.segment, 99), channel_order.get(m.channel, 9)))
        # in the campaign's channel order, whatever order the database grouped the rows in
        by_channel = sorted(plan.messages, key=lambda channel: channel_order.get(channel, 9))
        plan.messages = {channel: plan.messages[channel] for channel in by_channel}
        plan.reached_by_channel = {c: plan.reached_by_channel[c] for c in by_channel}
        reason_order = {r.value: i for i, r in enumerate(NotContacted)}
        plan.not_contacted = [
            NotContactedCount(reason, count, detail)
            for (reason, detail), count in sorted(
                reasons.items(), key=lambda item: (reason_order[item[0][0]], item[0][1] or "")
            )
        ]
        if options.show_not_contacted:
            listing = conn.execute(
                sa.select(chosen.c.key, chosen.c.segment, chosen.c.reason, chosen.c.detail)
                .where(chosen.c.reason.is_not(None))
                .order_by(chosen.c.reason, chosen.c.key)
            )
            plan.not_contacted_records = [dict(r._mapping) for r in listing]
        if plan.reached_by_channel.get(Channel.SMS.value):
            plan.sms = _sms_figures(conn, workspace, campaign, chosen, plan.messages["sms"], now)
    return plan


def _schedule(
    conn: sa.Connection, workspace: Workspace, campaign: Campaign, now: datetime
) -> list[WaveTime]:
    """The waves already due that the scheduler has not handled, each with what its next
    pass does with it (the same decision), then those of the next SCHEDULE_DAYS; with none
    there, the next one (within NEXT_SEND_YEARS), so a campaign scheduled far ahead never
    reads as unscheduled."""
    assert workspace.config is not None
    tz = workspace.config.timezone
    options = SchedulerOptions.from_workspace(workspace)
    known = known_waves(conn)
    past = [
        (due.wave, *_pending(due, options.max_lateness))
        for due in pending_waves(conn, [campaign], options, now)
    ]
    # one due this very minute is among the past ones
    waves = [
        w for w in timeline(campaign, tz, now, now + timedelta(days=SCHEDULE_DAYS)) if w.at > now
    ]
    beyond = all(w.key in known for w in waves)  # none, or all sent by hand already
    year, start = timedelta(days=366), now
    # a year at a time: `occurrences` starts a cron without send_at a year before the end
    for _ in range(NEXT_SEND_YEARS if beyond else 0):
        later = [w for w in timeline(campaign, tz, start, start + year) if w.at > now]
        # the next wave still to send, after those sent by hand before their time
        todo = next((i for i, w in enumerate(later) if w.key not in known), None)
        if todo is not None:
            waves = later[: todo + 1]
            break
        start += year
    coming = []
    for w in waves:
        notes = [w.note] if w.note else []
        if beyond and w.key not in known:
            notes.append(f"the next send, beyond the next {SCHEDULE_DAYS} days")
        status = None
        if w.key in known:  # a wave sent by hand before its time (`send --now`)
            status = "done" if known[w.key] == KnownState.SENT else str(known[w.key])
            notes.insert(0, f"{'sent' if status == 'done' else status} by hand, before its time")
        coming.append((w, status, "; ".join(notes) or None))
    return [
        WaveTime(w.key, w.label(), w.local.isoformat(timespec="minutes"), w.timezone, note, status)
        for w, status, note in [*past, *coming]
    ]


def _pending(due: Any, max_lateness: timedelta) -> tuple[str, str]:
    """(status, note) of a past wave the scheduler has not handled yet."""
    if due.decision == Decision.MISSED:
        return "missed", f"will be {due.missed_note(max_lateness)}"
    if due.decision == Decision.WAIT:
        return "waiting", "due, sent once the wave it relaunches is sent"
    return "due", "due, the next scheduler pass sends it"


def _sms_figures(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: Campaign,
    chosen: Any,
    recipients: int,
    now: datetime,
) -> SmsFigures:
    """Parts per SMS measured by rendering up to SMS_SAMPLE recipients."""
    # Lazy for start-up: only a plan with SMS renders, and render/ brings Jinja with it
    # (37 more modules, ~50 ms: benchmarks/imports.py).
    from campaignctl.render.context import Recipient, RecordData
    from campaignctl.render.renderer import CampaignRenderer, RenderOptions

    assert workspace.config is not None
    settings = workspace.config.sms
    price = settings.price_per_part if settings else None
    currency = settings.currency if settings else None
    record = RECORD
    query = (
        sa.select(record.c.key, record.c.attributes, record.c.category, record.c.phone)
        .join(chosen, chosen.c.record_id == record.c.id)
        .where(chosen.c.channel == Channel.SMS.value, chosen.c.leader == 1)
        .order_by(record.c.key)
        .limit(SMS_SAMPLE)
    )
    try:
        renderer = CampaignRenderer(
            workspace,
            campaign,
            RenderOptions(
                allow_development_secret=True,
                require_dkim_key=False,
                now=lambda: now.astimezone(ZoneInfo(workspace.config.timezone)),  # type: ignore[union-attr]
            ),
        )
        infos = [
            renderer.render_sms(
                Recipient([RecordData(r.key, r.attributes or {}, r.category)], phone=r.phone)
            ).info
            for r in conn.execute(query)
        ]
    except CampaignctlError as exc:
        return SmsFigures(recipients, 0, None, None, None, True, None, currency, exc.message)
    if not infos:
        return SmsFigures(recipients, 0, None, None, None, False, None, currency)
    parts = [info.parts for info in infos]
    encodings = dict(Counter(str(info.encoding) for info in infos))
    exact = len(parts) == recipients
    total = sum(parts) if exact else round(sum(parts) / len(parts) * recipients)
    cost = round(total * price, 4) if price is not None else None
    return SmsFigures(
        recipients,
        len(parts),
        min(parts),
        max(parts),
        total,
        not exact,
        cost,
        currency,
        encodings=encodings,
    )
