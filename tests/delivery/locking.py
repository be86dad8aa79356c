"""Test helpers: an applied and locked campaign, made directly in the store.

Until `apply` and `lock` (another branch) are merged, the send tests build the
Campaign, CampaignLock and Recipient rows themselves from imported records,
following docs/targeting.md: each record of the campaign's segments (first
segment wins, exclusions removed) on its first channel with an address, grouped
by normalised email when `group_by_email` is on, in segment then key order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.audience.records import RECORD
from campaignctl.audience.segments import segment_query, workspace_today
from campaignctl.cli.main import app
from campaignctl.plan.definitions import canonical, content_hash
from campaignctl.spec.workspace import Workspace, load_workspace
from campaignctl.store import Store
from campaignctl.store.tables import Campaign, CampaignLock, Recipient

CAMPAIGN = Campaign.__table__  # type: ignore[attr-defined]
LOCK = CampaignLock.__table__  # type: ignore[attr-defined]
RECIPIENT = Recipient.__table__  # type: ignore[attr-defined]


def import_audience(root: Path) -> None:
    result = CliRunner().invoke(app, ["--workspace", str(root), "audience", "import"])
    assert result.exit_code == 0, result.output


def open_store(root: Path, url: str | None = None) -> Store:
    return Store(url or "sqlite:///.campaignctl/store.db", root=root)


def lock_campaign(store: Store, workspace: Workspace, name: str) -> dict[str, Any]:
    """Apply and lock `name`: returns the campaign id, lock id and recipients made."""
    spec = workspace.campaigns[name]
    now = datetime.now(UTC)
    today = workspace_today(workspace, now)
    with store.transaction() as conn:
        definition = canonical(spec)
        campaign_id = conn.execute(
            CAMPAIGN.insert()
            .values(
                name=name,
                type=str(spec.type),
                category=spec.category,
                definition=definition,
                content_hash=content_hash(definition),
                options=definition.get("options"),
                applied_at=now,
            )
            .returning(CAMPAIGN.c.id)
        ).scalar_one()
        lock_id = conn.execute(
            LOCK.insert()
            .values(campaign_id=campaign_id, created_at=now, definition_hash="test", counts={})
            .returning(LOCK.c.id)
        ).scalar_one()
        excluded: set[int] = set()
        for segment in spec.audience.exclude_segments:
            excluded |= set(conn.execute(segment_query(store, workspace, segment, today)).scalars())
        seen: set[int] = set()
        rows = []
        for segment in spec.audience.segments:
            ids = segment_query(store, workspace, segment, today).subquery()
            records = conn.execute(
                sa.select(RECORD.c.id, RECORD.c.email_normalized, RECORD.c.phone)
                .where(RECORD.c.id.in_(sa.select(ids.c.id)))
                .order_by(RECORD.c.key)
            ).all()
            for record_id, email, phone in records:
                if record_id in seen or record_id in excluded:
                    continue
                seen.add(record_id)
                for channel in spec.channels:
                    address = email if channel == "email" else phone
                    if channel == "email" and not spec.options.send_email:
                        continue
                    if address:
                        group = (
                            address if channel == "email" and spec.options.group_by_email else None
                        )
                        rows.append(
                            {
                                "lock_id": lock_id,
                                "record_id": record_id,
                                "channel": str(channel),
                                "address": address,
                                "segment": segment,
                                "group_key": group,
                            }
                        )
                        break
        # without grouping, one record per address (docs/targeting.md: duplicate_address)
        used: set[tuple[str, str]] = set()
        kept = []
        for row in rows:
            key = (row["channel"], row["address"])
            if row["group_key"] is None and key in used:
                continue
            used.add(key)
            kept.append(row)
        if kept:
            conn.execute(RECIPIENT.insert(), kept)
    return {"campaign_id": campaign_id, "lock_id": lock_id, "recipients": len(kept)}


def locked_demo(root: Path, name: str = "mise-a-jour-2027", url: str | None = None) -> dict:
    """Import the workspace's audience and lock `name`; returns the lock figures."""
    import_audience(root)
    store = open_store(root, url)
    try:
        return lock_campaign(store, load_workspace(root), name)
    finally:
        store.close()
