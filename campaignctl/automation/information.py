"""Information campaigns (seed 003) as the partner space shows them: the campaigns a
record was enrolled in (by a received document type, or by its visit to its space)
whose `active:` window holds today, with their dashboard message and documents by
typology. `campaignctl serve` renders this; the store is the only source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from campaignctl.automation.engine import unset_nulls
from campaignctl.enums import CampaignType
from campaignctl.spec.models import Campaign
from campaignctl.store.tables import CAMPAIGN, ENROLMENT


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

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "description": self.description,
            "dashboard_message": self.dashboard_message,
            "documents": {
                typology: [d.__dict__ for d in docs] for typology, docs in self.documents.items()
            },
        }


def space_campaigns(conn: sa.Connection, record_ids: list[int], today: date) -> list[SpaceCampaign]:
    """The information campaigns to show in the space of these records, by name."""
    rows = conn.execute(
        sa.select(CAMPAIGN.c.name, CAMPAIGN.c.definition)
        .where(
            CAMPAIGN.c.type == CampaignType.INFORMATION.value,
            CAMPAIGN.c.state != "archived",
            CAMPAIGN.c.id.in_(
                sa.select(ENROLMENT.c.campaign_id).where(ENROLMENT.c.record_id.in_(record_ids))
            ),
        )
        .order_by(CAMPAIGN.c.name)
    ).all()
    shown = []
    for name, definition in rows:
        spec = Campaign.model_validate(unset_nulls(definition))
        if spec.active is not None and not (spec.active.from_ <= today <= spec.active.to):
            continue
        documents: dict[str, list[SpaceDocument]] = {}
        for doc in spec.documents:
            documents.setdefault(doc.typology, []).append(
                SpaceDocument(doc.path, doc.label or doc.path, doc.to_sign)
            )
        shown.append(SpaceCampaign(name, spec.description, spec.dashboard_message, documents))
    return shown
