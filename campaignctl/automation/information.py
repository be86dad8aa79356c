"""Information campaigns (seed 003) as the partner space shows them: the campaigns (not
drafts, not deactivated nor archived) a record was enrolled in (by a received document
type, or by its visit to its space), and the `space_visited` ones it enters by visiting
now, whose `active:` window holds today, with their dashboard message and documents by
typology, and the `to_sign` documents it signed already (`document_signed` events).
`campaignctl serve` renders this; the store is the only source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from campaignctl.audience.segments import workspace_today
from campaignctl.automation.conditions import record_condition
from campaignctl.automation.engine import (
    OFF_STATES,
    active_automations,
    audience_of,
    eligible,
    unset_nulls,
)
from campaignctl.enums import CampaignType
from campaignctl.spec.models import Campaign, EventType, TriggerEvent
from campaignctl.spec.workspace import Workspace
from campaignctl.store.tables import AUTOMATION, CAMPAIGN, ENROLMENT, EVENT, RECORD


@dataclass(frozen=True)
class SpaceDocument:
    path: str  # under documents/
    label: str
    to_sign: bool


@dataclass(frozen=True)
class SpaceCampaign:
    campaign: str
    description: str | None
    dashboard_message: str | None
    documents: dict[str, list[SpaceDocument]] = field(default_factory=dict)  # by typology
    logo: str | None = None  # under documents/

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "description": self.description,
            "dashboard_message": self.dashboard_message,
            "logo": self.logo,
            "documents": {
                typology: [d.__dict__ for d in docs] for typology, docs in self.documents.items()
            },
        }

    def document(self, path: str) -> SpaceDocument | None:
        return next((d for docs in self.documents.values() for d in docs if d.path == path), None)


def _in_window(spec: Campaign, today: date) -> bool:
    return spec.active is None or spec.active.from_ <= today <= spec.active.to


def space_campaigns(
    conn: sa.Connection, record_ids: list[int], today: date, also: tuple[str, ...] = ()
) -> list[SpaceCampaign]:
    """The information campaigns to show in the space of these records, by name: those
    they were enrolled in, and the campaigns named in `also` (see `visit_campaigns`)."""
    enrolled = sa.select(ENROLMENT.c.campaign_id).where(ENROLMENT.c.record_id.in_(record_ids))
    # a campaign `campaign deactivate`d is closed: the space no longer shows it
    closed = sa.select(AUTOMATION.c.campaign_id).where(AUTOMATION.c.active.is_(False))
    rows = conn.execute(
        sa.select(CAMPAIGN.c.name, CAMPAIGN.c.definition)
        .where(
            CAMPAIGN.c.type == CampaignType.INFORMATION.value,
            CAMPAIGN.c.state.not_in(OFF_STATES),
            CAMPAIGN.c.id.not_in(closed),
            sa.or_(CAMPAIGN.c.id.in_(enrolled), CAMPAIGN.c.name.in_(list(also))),
        )
        .order_by(CAMPAIGN.c.name)
    ).all()
    shown = []
    for name, definition in rows:
        spec = Campaign.model_validate(unset_nulls(definition))
        if not _in_window(spec, today):
            continue
        documents: dict[str, list[SpaceDocument]] = {}
        for doc in spec.documents:
            documents.setdefault(doc.typology, []).append(
                SpaceDocument(doc.path, doc.label or doc.path, doc.to_sign)
            )
        shown.append(
            SpaceCampaign(name, spec.description, spec.dashboard_message, documents, spec.logo)
        )
    return shown


def visit_campaigns(
    conn: sa.Connection, workspace: Workspace, record_ids: list[int], now: datetime
) -> tuple[str, ...]:
    """The active information campaigns triggered by `space_visited` that these records
    enter by visiting their space now (window, segments, partner types and the trigger's
    `where:` on the record): the space shows them at this very visit, and the next
    scheduler pass enrols the records from the stored visit (their notice, figures)."""
    today = workspace_today(workspace, now)
    dialect = conn.dialect.name
    found = []
    for campaign, _ in active_automations(conn):
        spec = campaign.spec
        trigger = spec.trigger
        if spec.type != CampaignType.INFORMATION or trigger is None:
            continue
        if trigger.event != TriggerEvent.SPACE_VISITED or not _in_window(spec, today):
            continue
        where = [RECORD.c.id.in_(record_ids), eligible(workspace, spec, dialect, today)]
        if trigger.where is not None:
            audience = audience_of(workspace, spec)
            where.append(record_condition(workspace, audience, dialect, today, trigger.where))
        if conn.execute(sa.select(RECORD.c.id).where(*where).limit(1)).first() is not None:
            found.append(campaign.name)
    return tuple(found)


def space_view(
    conn: sa.Connection, workspace: Workspace, record_ids: list[int], now: datetime
) -> list[SpaceCampaign]:
    """What the space of these records shows now: `space_campaigns` with `visit_campaigns`."""
    also = visit_campaigns(conn, workspace, record_ids, now)
    return space_campaigns(conn, record_ids, workspace_today(workspace, now), also)


@dataclass(frozen=True)
class Signature:
    campaign: str
    document: str
    record: str
    at: datetime
    sha256: str | None


def signatures(conn: sa.Connection, record_ids: list[int]) -> list[Signature]:
    """The `document_signed` events of these records, oldest first."""
    rows = conn.execute(
        sa.select(CAMPAIGN.c.name, EVENT.c.record_key, EVENT.c.at, EVENT.c.data)
        .join(CAMPAIGN, CAMPAIGN.c.id == EVENT.c.campaign_id)
        .where(EVENT.c.type == EventType.DOCUMENT_SIGNED.value, EVENT.c.record_id.in_(record_ids))
        .order_by(EVENT.c.at)
    ).all()
    return [
        Signature(name, str((data or {}).get("document")), key, at, (data or {}).get("sha256"))
        for name, key, at, data in rows
    ]
