"""`export status`: per cell and system, what was transferred, withdrawn, failed, and when.

Three set-based queries: the lock's records per cell, the badges per cell × system × state
(with the latest push and withdrawal), and the locked records each system has no live
badge for (`to_transfer`); then the latest transfers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from campaignctl.enums import BadgeState
from campaignctl.export.cells import badge_specs, cells, systems_of
from campaignctl.export.transfer import STALE_STATES
from campaignctl.spec.workspace import Workspace
from campaignctl.store.campaigns import lock_id_in_force as active_lock_id
from campaignctl.store.statistics import refresh_statistics
from campaignctl.store.store import Store
from campaignctl.store.tables import CAMPAIGN, EXPORT_BADGE, EXPORT_TRANSFER, RECIPIENT

RECENT_TRANSFERS = 10


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class CellSystem:
    system: str
    entity: str | None
    label: str | None
    to_transfer: int = 0  # locked records without a live badge in this system and cell
    # badges the next push withdraws: their record left out of the lock in force, or in
    # another cell now (`lock --refresh`)
    to_withdraw: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    withdrawing: int = 0
    withdrawn: int = 0
    last_pushed_at: str | None = None
    last_withdrawn_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Cell:
    segment: str | None
    channel: str
    records: int | None  # in the lock; None when the campaign is not locked
    systems: list[CellSystem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "channel": self.channel,
            "records": self.records,
            "systems": [s.as_json() for s in self.systems],
        }


@dataclass
class ExportStatus:
    campaign: str
    lock_id: int | None
    cells: list[Cell]
    transfers: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "campaign": self.campaign,
            "lock": self.lock_id,
            "cells": [c.as_json() for c in self.cells],
            "transfers": self.transfers,
        }


def export_status(store: Store, workspace: Workspace, name: str) -> ExportStatus:
    """The campaign's cells in its order, each with every system's badges."""
    campaign = workspace.campaign(name)
    specs = badge_specs(campaign)
    systems = systems_of(campaign)
    badge = EXPORT_BADGE.c
    with store.read() as conn:
        campaign_id = conn.execute(sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == name)).scalar()
        lock_id = active_lock_id(conn, campaign_id) if campaign_id is not None else None
        refresh_statistics(conn, "recipient", "export_badge")
        locked = _locked(conn, lock_id)
        states = (
            conn.execute(
                sa.select(
                    badge.system,
                    badge.segment,
                    badge.channel,
                    badge.state,
                    sa.func.count(),
                    sa.func.max(badge.pushed_at),
                    sa.func.max(badge.withdrawn_at),
                )
                .where(badge.campaign_id == campaign_id)
                .group_by(badge.system, badge.segment, badge.channel, badge.state)
            ).all()
            if campaign_id is not None
            else []
        )
        missing = _to_transfer(conn, campaign_id, lock_id, systems)
        stale = _to_withdraw(conn, campaign_id, lock_id)
        transfers = (
            conn.execute(
                sa.select(EXPORT_TRANSFER)
                .where(EXPORT_TRANSFER.c.campaign_id == campaign_id)
                .order_by(EXPORT_TRANSFER.c.id.desc())
                .limit(RECENT_TRANSFERS)
            ).all()
            if campaign_id is not None
            else []
        )
    order = cells(campaign)
    known = {(s, c) for s, c in order}
    extra = sorted({(r.segment, r.channel) for r in states} - known, key=str)
    found: list[Cell] = []
    index: dict[tuple[str, str, str], CellSystem] = {}
    for segment, channel in [*order, *extra]:
        cell = Cell(segment, channel, locked.get((segment, channel), 0) if lock_id else None)
        for system in systems:
            spec = specs.get((system, segment, channel))
            has_badges = any(
                r.system == system and (r.segment, r.channel) == (segment, channel) for r in states
            )
            if spec is None and not has_badges:
                continue
            entry = CellSystem(system, spec.entity if spec else None, spec.label if spec else None)
            entry.to_transfer = missing.get((system, segment, channel), 0) if spec else 0
            entry.to_withdraw = stale.get((system, segment, channel), 0)
            cell.systems.append(entry)
            index[(system, segment, channel)] = entry  # type: ignore[index]
        found.append(cell)
    for system, segment, channel, state, n, pushed, withdrawn in states:
        entry = index.get((system, segment, channel))
        if entry is None:
            continue
        setattr(entry, BadgeState(state).value, n)
        entry.last_pushed_at = max(filter(None, [entry.last_pushed_at, _iso(pushed)]), default=None)
        entry.last_withdrawn_at = max(
            filter(None, [entry.last_withdrawn_at, _iso(withdrawn)]), default=None
        )
    return ExportStatus(
        name,
        lock_id,
        found,
        [
            {
                "id": t.id,
                "action": t.action.value if hasattr(t.action, "value") else t.action,
                "selection": t.selection,
                "started_at": _iso(t.started_at),
                "finished_at": _iso(t.finished_at),
                "outcome": t.outcome or "running or killed",
                "counts": t.counts or {},
            }
            for t in transfers
        ],
    )


def _locked(conn: sa.Connection, lock_id: int | None) -> dict[tuple[str, str], int]:
    if lock_id is None:
        return {}
    rows = conn.execute(
        sa.select(RECIPIENT.c.segment, RECIPIENT.c.channel, sa.func.count())
        .where(RECIPIENT.c.lock_id == lock_id)
        .group_by(RECIPIENT.c.segment, RECIPIENT.c.channel)
    )
    return {(segment, channel): int(n) for segment, channel, n in rows}


def _to_transfer(
    conn: sa.Connection, campaign_id: int | None, lock_id: int | None, systems: list[str]
) -> dict[tuple[str, str, str], int]:
    """Locked records per system and cell with no badge in that cell, or a withdrawn one (a
    record a `lock --refresh` moved here is transferred here by the next push)."""
    if campaign_id is None or lock_id is None:
        return {}
    badge = EXPORT_BADGE.c
    found: dict[tuple[str, str, str], int] = {}
    for system in systems:
        rows = conn.execute(
            sa.select(RECIPIENT.c.segment, RECIPIENT.c.channel, sa.func.count())
            .where(
                RECIPIENT.c.lock_id == lock_id,
                ~sa.exists().where(
                    badge.campaign_id == campaign_id,
                    badge.system == system,
                    badge.record_id == RECIPIENT.c.record_id,
                    badge.segment.is_not_distinct_from(RECIPIENT.c.segment),
                    badge.channel == RECIPIENT.c.channel,
                    badge.state != BadgeState.WITHDRAWN.value,
                ),
            )
            .group_by(RECIPIENT.c.segment, RECIPIENT.c.channel)
        )
        for segment, channel, n in rows:
            found[(system, segment, channel)] = int(n)
    return found


def _to_withdraw(
    conn: sa.Connection, campaign_id: int | None, lock_id: int | None
) -> dict[tuple[str, str, str], int]:
    """Badges per system and cell that the next push withdraws: transferred (or on their
    way, refused, being withdrawn) for records the lock in force does not put in that cell."""
    if campaign_id is None or lock_id is None:
        return {}
    badge = EXPORT_BADGE.c
    rows = conn.execute(
        sa.select(badge.system, badge.segment, badge.channel, sa.func.count())
        .where(
            badge.campaign_id == campaign_id,
            badge.state.in_(STALE_STATES),
            ~sa.exists().where(
                RECIPIENT.c.lock_id == lock_id,
                RECIPIENT.c.record_id == badge.record_id,
                RECIPIENT.c.segment.is_not_distinct_from(badge.segment),
                RECIPIENT.c.channel == badge.channel,
            ),
        )
        .group_by(badge.system, badge.segment, badge.channel)
    )
    return {(system, segment, channel): int(n) for system, segment, channel, n in rows}
