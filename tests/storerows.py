"""Store rows the scheduler, relaunch and event tests start from.

`audience import` loads a workspace's real records; the campaign, its lock,
recipients, first wave and outbox rows are then inserted as `apply`, `lock` and
`send` leave them, to set up histories (a wave sent days ago, a contact at its
message cap) in one step. Tests of those commands themselves run the commands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from campaignctl.enums import CampaignState, OutboxState, WaveKind, WaveStatus
from campaignctl.store import Store
from campaignctl.store.tables import CAMPAIGN, LOCK, OUTBOX, RECIPIENT, RECORD, WAVE

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris: the scaffold's first send


@dataclass
class Seeded:
    store: Store
    campaign_id: int
    lock_id: int
    wave_id: int | None
    records: dict[str, int]  # key -> record id


def open_store(root: Path) -> Store:
    """The store the commands use: CAMPAIGNCTL_STORE (see the `backend` fixture), else the
    workspace's SQLite file."""
    url = os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db"
    return Store(url, root=root)


def import_records(root: Path) -> Store:
    from campaignctl.audience.importer import ImportOptions, import_audiences
    from campaignctl.spec.workspace import load_workspace

    store = open_store(root)
    import_audiences(store, load_workspace(root).require_valid(), None, ImportOptions(workers=0))
    return store


def apply_campaign(store: Store, root: Path, name: str, **changes: object) -> int:
    """Insert the Campaign row `apply` would write, with top-level fields overridden."""
    from campaignctl.plan.definitions import canonical, content_hash
    from campaignctl.spec.models import Campaign as CampaignSpec
    from campaignctl.spec.workspace import load_workspace

    spec = load_workspace(root).require_valid().campaigns[name]
    if changes:
        spec = CampaignSpec.model_validate({**canonical(spec), **changes})
    definition = canonical(spec)
    with store.transaction() as conn:
        conn.execute(sa.delete(CAMPAIGN).where(CAMPAIGN.c.name == name))
        return conn.execute(
            sa.insert(CAMPAIGN).values(
                name=name, type=str(spec.type), category=spec.category, definition=definition,
                content_hash=content_hash(definition), options=definition["options"],
                state=CampaignState.SCHEDULED, applied_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip


def lock_campaign(store: Store, campaign_id: int, channels=("email", "sms")) -> int:
    """A lock whose recipients are every active record: email where it has one, else SMS."""
    with store.transaction() as conn:
        lock_id = conn.execute(
            sa.insert(LOCK).values(campaign_id=campaign_id, created_at=T0, definition_hash="x")
        ).inserted_primary_key[0]
        record = RECORD
        for row in conn.execute(sa.select(record).order_by(record.c.key)).all():
            for channel in channels:
                address = row.email_normalized if channel == "email" else row.phone
                if address:
                    conn.execute(
                        sa.insert(RECIPIENT).values(
                            lock_id=lock_id, record_id=row.id, channel=channel, address=address,
                            segment="accommodation" if row.category != "restaurant" else "food",
                            group_key=address if channel == "email" else None,
                        )
                    )  # fmt: skip
                    break
    return lock_id


def send_first_wave(
    store: Store, campaign_id: int, lock_id: int, *, failed: tuple[str, ...] = ()
) -> int:
    """Wave 1 done, one outbox row per address (message id `KEY.1@example.org`);
    the records in `failed` end in state failed."""
    with store.transaction() as conn:
        wave_id = conn.execute(
            sa.insert(WAVE).values(
                campaign_id=campaign_id, number=1, kind=WaveKind.INITIAL,
                occurrence_key="update-2027/0/0", scheduled_for=T0, status=WaveStatus.DONE,
                lock_id=lock_id, channels=["email", "sms"], created_at=T0, finished_at=T0,
            )
        ).inserted_primary_key[0]  # fmt: skip
        rows = conn.execute(
            sa.select(RECIPIENT, RECORD.c.key)
            .join(RECORD, RECORD.c.id == RECIPIENT.c.record_id)
            .where(RECIPIENT.c.lock_id == lock_id)
        ).all()
        seen: set[tuple[str, str]] = set()
        for row in rows:
            if (row.channel, row.address) in seen:
                continue  # grouped by email: one message for the records of one address
            seen.add((row.channel, row.address))
            state = OutboxState.FAILED if row.key in failed else OutboxState.SENT
            conn.execute(
                sa.insert(OUTBOX).values(
                    campaign_id=campaign_id, wave_id=wave_id, record_id=row.record_id,
                    group_key=row.group_key, segment=row.segment, channel=row.channel,
                    address=row.address, state=state, attempts=1,
                    message_id=f"{row.key}.1@example.org", provider_id=f"prov-{row.key}",
                    created_at=T0, updated_at=T0, sent_at=T0 if state == OutboxState.SENT else None,
                )
            )  # fmt: skip
    return wave_id


def seed(root: Path, name: str = "update-2027", *, sent: bool = True, **changes: object) -> Seeded:
    store = import_records(root)
    campaign_id = apply_campaign(store, root, name, **changes)
    lock_id = lock_campaign(store, campaign_id)
    wave_id = send_first_wave(store, campaign_id, lock_id) if sent else None
    with store.read() as conn:
        records = dict(conn.execute(sa.select(RECORD.c.key, RECORD.c.id)).all())
    return Seeded(store, campaign_id, lock_id, wave_id, records)
