"""What each step of an automation did, counted in the store (`report CAMPAIGN`), and how
many records its trigger would enrol now (`plan`: "affected", seed 004)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from campaignctl.automation.engine import (
    AppliedAutomation,
    activation_state,
    trigger_selection,
)
from campaignctl.automation.steps import campaign_steps, flatten
from campaignctl.enums import OutboxState
from campaignctl.spec.models import Campaign
from campaignctl.store.tables import CAMPAIGN, ENROLMENT, EVENT, OUTBOX, STEP_RUN


@dataclass(frozen=True)
class StepCount:
    path: str
    label: str
    action: str
    affected: int  # records that reached the step (went through it, or are at it now)
    processed: int  # records that went through it
    waiting: int  # records at it now (a wait not over, a send in progress, a failed send)
    outcomes: dict[str, int]  # sent, no_address, then, else, waited, added, removed
    messages: dict[str, int]  # send steps: outbox rows by state
    opened: int = 0  # send steps: records that opened / clicked that step's message
    clicked: int = 0


def step_counts(conn: sa.Connection, campaign_id: int, spec: Campaign) -> list[StepCount]:
    """Per step of the tree, in order: a handful of grouped queries, whatever the size."""
    runs: dict[str, dict[str, int]] = {}
    for step, outcome, count in conn.execute(
        sa.select(STEP_RUN.c.step, STEP_RUN.c.outcome, sa.func.count())
        .where(STEP_RUN.c.campaign_id == campaign_id)
        .group_by(STEP_RUN.c.step, STEP_RUN.c.outcome)
    ):
        runs.setdefault(step, {})[outcome] = int(count)
    waiting = dict(
        conn.execute(
            sa.select(ENROLMENT.c.step, sa.func.count())
            .where(ENROLMENT.c.campaign_id == campaign_id, ENROLMENT.c.step.is_not(None))
            .group_by(ENROLMENT.c.step)
        ).all()
    )
    step_waves = (
        sa.select(STEP_RUN.c.step, STEP_RUN.c.wave_id)
        .where(STEP_RUN.c.campaign_id == campaign_id, STEP_RUN.c.wave_id.is_not(None))
        .distinct()
        .subquery()
    )
    messages: dict[str, dict[str, int]] = {}
    for step, state, count in conn.execute(
        sa.select(step_waves.c.step, OUTBOX.c.state, sa.func.count())
        .join(OUTBOX, OUTBOX.c.wave_id == step_waves.c.wave_id)
        .group_by(step_waves.c.step, OUTBOX.c.state)
    ):
        messages.setdefault(step, {})[str(state)] = int(count)
    acted: dict[tuple[str, str], int] = {}
    for step, kind, count in conn.execute(
        sa.select(step_waves.c.step, EVENT.c.type, sa.func.count(sa.distinct(EVENT.c.record_id)))
        .join(OUTBOX, OUTBOX.c.wave_id == step_waves.c.wave_id)
        .join(
            EVENT,
            sa.and_(EVENT.c.campaign_id == OUTBOX.c.campaign_id, EVENT.c.outbox_id == OUTBOX.c.id),
        )
        .where(EVENT.c.type.in_(["opened", "clicked"]))
        .group_by(step_waves.c.step, EVENT.c.type)
    ):
        acted[(step, kind)] = int(count)
    counts = []
    for path, node in flatten(campaign_steps(spec)).items():
        outcomes = runs.get(path, {})
        processed = sum(outcomes.values())
        now_at = int(waiting.get(path, 0))
        counts.append(
            StepCount(
                path, node.label, node.action, processed + now_at, processed, now_at, outcomes,
                messages.get(path, {}), acted.get((path, "opened"), 0),
                acted.get((path, "clicked"), 0),
            )
        )  # fmt: skip
    return counts


@dataclass(frozen=True)
class AutomationPlan:
    """`plan`: the automation's state, what its trigger selects now, who is enrolled."""

    state: str
    affected: int
    enrolled: int
    trigger: str

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def trigger_text(spec: Campaign) -> str:
    trigger = spec.trigger
    assert trigger is not None
    what = trigger.list or trigger.segment or trigger.document_type or trigger.campaign
    return f"{trigger.event} {what}" if what else str(trigger.event)


def automation_plan(
    conn: sa.Connection, workspace: Any, spec: Campaign, now: datetime
) -> AutomationPlan:
    """What `plan` shows of an automation (read-only): `affected` counts the records its
    trigger selects now (list or segment members; records named by matching events since
    its activation) that were never enrolled, as the next pass would enrol them."""
    state = activation_state(conn, spec.name)
    campaign_id = conn.execute(
        sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == spec.name)
    ).scalar_one_or_none()
    applied = AppliedAutomation(campaign_id or -1, spec.name, spec.category, spec)
    since = state.activated_at if str(spec.trigger.event) not in (  # type: ignore[union-attr]
        "segment_entered", "list_added"
    ) else None  # fmt: skip
    chosen = trigger_selection(conn, workspace, applied, since, now).subquery()
    enrolled = sa.exists().where(
        ENROLMENT.c.campaign_id == campaign_id, ENROLMENT.c.record_id == chosen.c.record_id
    )
    affected = conn.execute(
        sa.select(sa.func.count()).select_from(chosen).where(~enrolled)
    ).scalar_one()
    total = conn.execute(
        sa.select(sa.func.count()).where(ENROLMENT.c.campaign_id == campaign_id)
    ).scalar_one()
    return AutomationPlan(state.state, int(affected), int(total), trigger_text(spec))


SENT_STATES = (OutboxState.SENT.value,)
