"""`apply`: record the campaign definitions, options and schedules in the store.

What CI runs on merge. With a saved plan, `apply` first checks that neither
the definitions nor the store changed since the plan (a stale plan is refused,
naming what changed). Options are frozen once a campaign sent its first wave.
A campaign whose file disappeared is reported, never deleted:
`archive_campaign` retires it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.enums import CampaignState, WaveStatus
from campaignctl.errors import StateError
from campaignctl.plan.definitions import canonical, diff_definition, git_state
from campaignctl.plan.plan import (
    PlanOptions,
    applied_definitions,
    campaign_hash,
    definitions_state,
    load_plan,
    select_campaigns,
)
from campaignctl.spec.models import Campaign
from campaignctl.spec.workspace import Workspace
from campaignctl.store import campaigns
from campaignctl.store.store import Store
from campaignctl.store.tables import AUDIT_LOG, CAMPAIGN, WAVE


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # applied, file gone: `campaign archive`
    git_commit: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, **self.__dict__}


def require_applied(store: Store, workspace: Workspace, name: str) -> None:
    """A campaign name given on the command line names a campaign the store knows.

    A name neither defined in the workspace nor applied is the usage error (64, with
    "did you mean") that every command gives; a defined campaign that was never applied is
    a state error (65) that says to apply it.
    """
    campaigns.require(store, name, defined=workspace.campaigns)


def check_plan(store: Store, workspace: Workspace, path: Path) -> list[str]:
    """Campaign names the saved plan covers; StateError when it is stale."""
    plan = load_plan(path)
    current = definitions_state(workspace)
    names = [c.name for c in plan.campaigns if c.change != "-"]
    problems = []
    for name in sorted(set(plan.definitions) | set(current)):
        if plan.definitions.get(name) != current.get(name):
            what = (
                "added"
                if name not in plan.definitions
                else "removed"
                if name not in current
                else "changed"
            )
            problems.append(f"campaign {name!r} {what}")
    serial = store.serial()
    if serial != plan.store_serial:
        problems.append(f"the store changed (serial {plan.store_serial} → {serial})")
    if problems:
        raise StateError(
            f"the plan {path} is stale: " + "; ".join(problems),
            hint="run `campaignctl plan --out FILE` again, review it, then apply it",
        )
    return names


def initial_state(campaign: Campaign) -> CampaignState:
    return CampaignState.DRAFT if campaign.draft else CampaignState.SCHEDULED


def apply_definitions(
    store: Store,
    workspace: Workspace,
    names: list[str] | None = None,
    *,
    now: datetime | None = None,
) -> ApplyResult:
    """Upsert the named campaigns (all by default) in one transaction.

    Refuses, changing nothing, when an option of a campaign that already sent changed.
    """
    now = now or clock.now()
    campaigns = select_campaigns(workspace, PlanOptions(names=tuple(names or ())))
    git = git_state(workspace.root)
    result = ApplyResult(git_commit=git.commit)
    with store.transaction(immediate=True) as conn:
        applied = applied_definitions(conn)
        refused = []
        for campaign in campaigns:
            row = applied.get(campaign.name)
            change = diff_definition(
                campaign.name,
                row["definition"] if row else None,
                canonical(campaign),
                sent=bool(row and row["first_sent_at"]),
            )
            if change and change.frozen and row:
                first = row["first_sent_at"]
                for f in change.frozen:
                    refused.append(
                        f"{campaign.name}: option {f.path.removeprefix('options.')!r} is frozen "
                        f"since the first send on {_day(first)} ({f.describe()})"
                    )
        if refused:
            raise StateError(
                "; ".join(refused),
                hint="restore the option, or `campaignctl campaign clone` into a new campaign",
            )
        for campaign in campaigns:
            row = applied.get(campaign.name)
            values = {
                "type": str(campaign.type),
                "category": campaign.category,
                "definition": canonical(campaign),
                "content_hash": campaign_hash(workspace, campaign),
                "options": campaign.options.model_dump(mode="json"),
                "git_commit": git.commit,
                "applied_at": now,
            }
            if row is None:
                conn.execute(
                    CAMPAIGN.insert().values(
                        name=campaign.name, state=initial_state(campaign).value, **values
                    )
                )
                result.created.append(campaign.name)
            elif (
                row["content_hash"] != values["content_hash"]
                or row["definition"] != values["definition"]
            ):
                state = str(row["state"])
                if state in (CampaignState.DRAFT.value, CampaignState.SCHEDULED.value):
                    values["state"] = initial_state(campaign).value
                conn.execute(
                    CAMPAIGN.update().where(CAMPAIGN.c.name == campaign.name).values(**values)
                )
                result.updated.append(campaign.name)
            else:
                result.unchanged.append(campaign.name)
        if not names:
            result.missing = sorted(
                n
                for n, row in applied.items()
                if n not in workspace.campaigns and str(row["state"]) != "archived"
            )
        if result.created or result.updated:
            conn.execute(
                AUDIT_LOG.insert().values(
                    at=now,
                    action="apply",
                    object=",".join(result.created + result.updated)[:500],
                    data={"git_commit": git.commit, "dirty": git.dirty},
                )
            )
    return result


@dataclass
class ArchiveResult:
    campaign: str
    previous_state: str
    archived_at: str | None  # None when it was already archived (nothing changed)
    waves_in_progress: int = 0  # sending waves archived anyway with --force

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, **self.__dict__}


def archive_campaign(
    store: Store,
    name: str,
    *,
    force: bool = False,
    now: datetime | None = None,
    defined: Collection[str] | None = None,
) -> ArchiveResult:
    """Retire an applied campaign: state `archived`, audit-logged; its history stays.
    `defined`: the workspace's campaigns, for the error of a name the store does not know
    (`store.campaigns.by_name`).

    An archived campaign is no longer planned, scheduled or counted as an active
    campaign (`respect_other_campaigns`). Refused while one of its waves is sending,
    unless `force`; archiving twice changes nothing.
    """
    now = now or clock.now()
    with store.transaction(immediate=True) as conn:
        row = campaigns.by_name(conn, name, defined=defined)
        state = str(row.state)
        if state == CampaignState.ARCHIVED.value:
            return ArchiveResult(name, state, None)
        sending = conn.execute(
            sa.select(sa.func.count(), sa.func.min(WAVE.c.number)).where(
                WAVE.c.campaign_id == row.id, WAVE.c.status == WaveStatus.SENDING.value
            )
        ).one()
        if sending[0] and not force:
            raise StateError(
                f"campaign {name!r} has a wave in progress (wave {sending[1]} is sending): "
                "archiving it now would leave that wave half sent",
                hint=f"let `campaignctl send {name}` finish, "
                f"or archive anyway with `campaignctl campaign archive {name} --force`",
            )
        conn.execute(
            CAMPAIGN.update()
            .where(CAMPAIGN.c.id == row.id)
            .values(state=CampaignState.ARCHIVED.value, archived_at=now)
        )
        conn.execute(
            AUDIT_LOG.insert().values(
                at=now,
                action="archive",
                object=name,
                data={"previous_state": state, "force": force, "waves_sending": sending[0]},
            )
        )
    return ArchiveResult(name, state, now.isoformat(), int(sending[0]))


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)[:10]


def state_of(store: Store, name: str) -> str | None:
    with store.read() as conn:
        return campaigns.state(conn, name)
