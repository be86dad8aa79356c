"""Relaunches: which records of a campaign a new wave reaches, computed in SQL.

A relaunch goes to the records of the campaign's lock that match its target,
read from the events (DESIGN.md §3):

- `non_responders`: no `form_submitted` (questionnaire campaigns) or no `clicked`
  (others) for the record;
- `non_openers`: not even an `opened` / `form_opened` (a click or an answer counts as
  an open too); an open of a message grouping several records counts for all of them;
- `failed`: the record's message of the previous wave ended failed or bounced (when
  sending, or by a hard bounce or SMS failure event afterwards) and none reached it; it is
  retried on another channel when the record has an address there;
- `all`: every record of the lock.

Each record gets the first of the wave's channels (priority order) for which it
has an address that is not suppressed; `max_messages_per_contact` (messages of
this campaign to the record or its address, in any wave, counted as plan and send
count them: `store.outbox.toward_cap`) and suppressions (every category, or the
campaign's: `store.suppressions.applies`) always hold. `options.send_email: false`
applies to the first send only: relaunches may email (seed 000).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.enums import Channel, OutboxState, RecordStatus, WaveKind, WaveStatus
from campaignctl.errors import StateError, UsageError
from campaignctl.events.model import soft_bounce
from campaignctl.spec.models import Campaign as CampaignSpec
from campaignctl.spec.models import CampaignType, EventType, RelaunchTarget
from campaignctl.store import campaigns, suppressions
from campaignctl.store.outbox import toward_cap
from campaignctl.store.store import Store
from campaignctl.store.tables import (
    CAMPAIGN,  # noqa: F401 (schedule.scheduler imports it from here)
    EVENT,
    OUTBOX,
    RECIPIENT,
    RECORD,
    WAVE,
)
from campaignctl.store.waves import NewWave, add_wave, next_wave_number

RECORD_EVENTS = [str(EventType.FORM_OPENED), str(EventType.FORM_SUBMITTED)]
OPEN_EVENTS = [
    EventType.OPENED,
    EventType.FORM_OPENED,
    EventType.CLICKED,
    EventType.FORM_SUBMITTED,
]


@dataclass(frozen=True)
class AppliedCampaign:
    """A campaign as `apply` recorded it in the store (the scheduler's source of truth)."""

    id: int
    name: str
    category: str | None
    spec: CampaignSpec

    @classmethod
    def from_row(cls, row: Any) -> AppliedCampaign:
        return cls(row.id, row.name, row.category, CampaignSpec.model_validate(row.definition))


def load_campaign(
    conn: Connection, name: str, *, defined: Collection[str] | None = None
) -> AppliedCampaign:
    """The applied campaign, or the one error (`store.campaigns.by_name`)."""
    return AppliedCampaign.from_row(campaigns.by_name(conn, name, defined=defined))


def previous_wave(conn: Connection, campaign_id: int, before_number: int | None = None) -> Any:
    """The latest wave that sent (done or sending) before wave `before_number`."""
    query = sa.select(WAVE).where(
        WAVE.c.campaign_id == campaign_id,
        WAVE.c.status.in_([WaveStatus.DONE, WaveStatus.SENDING]),
    )
    if before_number is not None:
        query = query.where(WAVE.c.number < before_number)
    return conn.execute(query.order_by(WAVE.c.number.desc()).limit(1)).first()


def _address(channel: str) -> sa.ColumnElement[Any]:
    return RECORD.c.email_normalized if channel == Channel.EMAIL else RECORD.c.phone


def _acted(campaign: AppliedCampaign, types: list[EventType], by_address: bool) -> Any:
    """An event of these types for the record (or, for opens, for a message to its email).

    An event about a message (an open, a click) counts only when it names one, or was
    attributed one (`events.record`); one about the record (a form opened or submitted)
    counts in any case."""
    own = sa.and_(
        EVENT.c.record_id == RECORD.c.id,
        sa.or_(EVENT.c.outbox_id.is_not(None), EVENT.c.type.in_(RECORD_EVENTS)),
    )
    if by_address:
        to_address = EVENT.c.outbox_id.in_(
            sa.select(OUTBOX.c.id)
            .where(
                OUTBOX.c.campaign_id == campaign.id,
                OUTBOX.c.channel == str(Channel.EMAIL),
                OUTBOX.c.address == RECORD.c.email_normalized,
            )
            .correlate(RECORD)  # two levels down: explicit, or RECORD would be joined in here
        )
        own = sa.or_(own, to_address)
    return sa.exists().where(
        EVENT.c.campaign_id == campaign.id, EVENT.c.type.in_([str(t) for t in types]), own
    )


def _target_filter(
    campaign: AppliedCampaign, target: RelaunchTarget, previous_wave_id: int | None, dialect: str
) -> Any:
    if target == RelaunchTarget.ALL:
        return sa.true()
    if target == RelaunchTarget.NON_RESPONDERS:
        acted = (
            EventType.FORM_SUBMITTED
            if campaign.spec.type == CampaignType.QUESTIONNAIRE
            else EventType.CLICKED
        )
        types = [acted] + ([EventType.FORM_SUBMITTED] if acted == EventType.CLICKED else [])
        return sa.not_(_acted(campaign, types, by_address=False))
    if target == RelaunchTarget.NON_OPENERS:
        return sa.not_(_acted(campaign, OPEN_EVENTS, by_address=True))
    if previous_wave_id is None:
        return sa.false()
    mine = sa.or_(
        OUTBOX.c.record_id == RECORD.c.id,
        sa.and_(OUTBOX.c.channel == "email", OUTBOX.c.address == RECORD.c.email_normalized),
        sa.and_(OUTBOX.c.channel == "sms", OUTBOX.c.address == RECORD.c.phone),
    )
    in_previous = sa.and_(OUTBOX.c.wave_id == previous_wave_id, mine)
    # a message sent, then reported lost (a hard bounce or an SMS failure), failed as well
    e = EVENT.alias("e")
    lost = sa.exists().where(
        e.c.outbox_id == OUTBOX.c.id,
        sa.or_(
            e.c.type == str(EventType.SMS_FAILED),
            sa.and_(
                e.c.type == str(EventType.BOUNCED), sa.text(f"NOT {soft_bounce(dialect, 'e')}")
            ),
        ),
    )
    failed = sa.exists().where(
        in_previous,
        sa.or_(
            OUTBOX.c.state.in_([OutboxState.FAILED, OutboxState.BOUNCED]),
            sa.and_(OUTBOX.c.state == OutboxState.SENT, lost),
        ),
    )
    reached = sa.exists().where(in_previous, OUTBOX.c.state == OutboxState.SENT, sa.not_(lost))
    return sa.and_(failed, sa.not_(reached))


def _candidates(
    campaign: AppliedCampaign,
    lock_id: int,
    target: RelaunchTarget,
    channels: Sequence[str],
    previous_wave_id: int | None,
    conn: Connection,
) -> sa.CTE:
    """One row per record × channel where it has an address, with the facts that decide."""
    dialect = conn.dialect.name
    hashed = suppressions.present(conn).hashed_only > 0  # a forgotten contact's suppression
    reached = (
        sa.select(RECIPIENT.c.record_id, sa.func.min(RECIPIENT.c.segment).label("segment"))
        .where(RECIPIENT.c.lock_id == lock_id)
        .group_by(RECIPIENT.c.record_id)
        .subquery("reached")
    )
    selects = []
    for index, channel in enumerate(channels):
        address = _address(channel)
        suppressed = suppressions.applies(address, channel, campaign.category, hashed=hashed)
        sent = toward_cap(campaign.id, channel, address, record_id=RECORD.c.id)
        priority: Any = sa.literal(index)
        if target == RelaunchTarget.FAILED and previous_wave_id is not None:
            failed_here = sa.exists().where(
                OUTBOX.c.wave_id == previous_wave_id,
                OUTBOX.c.channel == channel,
                OUTBOX.c.address == address,
            )
            # another channel first; the same one only when the record has no other
            priority = sa.case((failed_here, index + 100), else_=index)
        selects.append(
            sa.select(
                RECORD.c.id.label("record_id"),
                reached.c.segment,
                sa.literal(str(channel)).label("channel"),
                address.label("address"),
                sa.case((suppressed, 1), else_=0).label("suppressed"),
                sent.label("sent"),
                priority.label("priority"),
            )
            .select_from(reached.join(RECORD, RECORD.c.id == reached.c.record_id))
            .where(
                RECORD.c.status == RecordStatus.ACTIVE,
                address.is_not(None),
                _target_filter(campaign, target, previous_wave_id, dialect),
            )
        )
    union = sa.union_all(*selects).subquery("candidate")
    ranked = sa.select(
        union,
        sa.func.row_number()
        .over(
            partition_by=union.c.record_id,
            order_by=(union.c.suppressed, union.c.priority),
        )
        .label("rank"),
    ).subquery("ranked")
    return sa.select(ranked).where(ranked.c.rank == 1).cte("best")


def _resolve(
    conn: Connection,
    campaign: AppliedCampaign,
    channels: Sequence[str] | None,
    lock_id: int | None,
) -> tuple[int, list[str]]:
    lock_id = lock_id or campaigns.lock_id_in_force(conn, campaign.id)
    if lock_id is None:
        raise StateError(
            f"campaign {campaign.name!r} has no lock: nobody to relaunch yet",
            hint=f"lock and send it first: campaignctl lock {campaign.name}",
        )
    chosen = [str(c) for c in (channels or campaign.spec.channels)]
    unknown = [c for c in chosen if c not in (Channel.EMAIL, Channel.SMS)]
    if unknown or not chosen:
        raise UsageError(f"--channels: unknown channel(s) {', '.join(unknown) or '(none)'}")
    return lock_id, chosen


def relaunch_recipients(
    conn: Connection,
    campaign: AppliedCampaign,
    target: RelaunchTarget,
    *,
    channels: Sequence[str] | None = None,
    previous_wave_id: int | None = None,
    lock_id: int | None = None,
) -> sa.Select[Any]:
    """The records a relaunch reaches: (record_id, segment, channel, address, group_key).

    A query, not rows: the send engine streams it into the outbox in batches.
    """
    lock_id, chosen = _resolve(conn, campaign, channels, lock_id)
    best = _candidates(campaign, lock_id, target, chosen, previous_wave_id, conn)
    cap = campaign.spec.options.max_messages_per_contact
    group = campaign.spec.options.group_by_email
    group_key: Any = (
        sa.case((best.c.channel == "email", best.c.address), else_=None) if group else sa.null()
    )
    query = sa.select(
        best.c.record_id, best.c.segment, best.c.channel, best.c.address,
        group_key.label("group_key"),
    ).where(best.c.suppressed == 0)  # fmt: skip
    if cap is not None:
        query = query.where(best.c.sent < cap)
    return query.order_by(best.c.channel, best.c.address, best.c.record_id)


@dataclass(frozen=True)
class RelaunchPlan:
    """What a relaunch wave would do, before it does it."""

    campaign: str
    target: str
    channels: tuple[str, ...]
    lock_id: int
    previous_wave: int | None  # its number
    reached: int  # records of the lock
    matching: int  # of which match the target and have an address on a wave channel
    suppressed: int
    capped: int  # at max_messages_per_contact
    cells: tuple[tuple[str, str | None, int], ...]  # (channel, segment, records)

    @property
    def selected(self) -> int:
        return sum(n for _, _, n in self.cells)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "target": self.target,
            "channels": list(self.channels),
            "previous_wave": self.previous_wave,
            "lock": self.lock_id,
            "reached": self.reached,
            "matching": self.matching,
            "suppressed": self.suppressed,
            "capped": self.capped,
            "selected": self.selected,
            "cells": [{"channel": c, "segment": s, "records": n} for c, s, n in self.cells],
        }


def plan_relaunch(
    conn: Connection,
    campaign: AppliedCampaign,
    target: RelaunchTarget,
    *,
    channels: Sequence[str] | None = None,
    before_number: int | None = None,
) -> RelaunchPlan:
    """Counts per channel × segment of a relaunch, and why the others are left out."""
    previous = previous_wave(conn, campaign.id, before_number)
    lock_id, chosen = _resolve(
        conn, campaign, channels, previous.lock_id if previous is not None else None
    )
    prev_id = previous.id if previous is not None else None
    best = _candidates(campaign, lock_id, target, chosen, prev_id, conn)
    cap = campaign.spec.options.max_messages_per_contact
    capped = sa.and_(best.c.suppressed == 0, best.c.sent >= cap) if cap else sa.false()
    totals = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(best.c.suppressed), 0),
            sa.func.coalesce(sa.func.sum(sa.case((capped, 1), else_=0)), 0),
        )
    ).one()
    selection = relaunch_recipients(
        conn, campaign, target, channels=chosen, previous_wave_id=prev_id, lock_id=lock_id
    ).subquery()
    cells = conn.execute(
        sa.select(selection.c.channel, selection.c.segment, sa.func.count())
        .group_by(selection.c.channel, selection.c.segment)
        .order_by(selection.c.channel, selection.c.segment)
    ).all()
    reached = conn.execute(
        sa.select(sa.func.count(sa.distinct(RECIPIENT.c.record_id))).where(
            RECIPIENT.c.lock_id == lock_id
        )
    ).scalar_one()
    return RelaunchPlan(
        campaign.name, str(target), tuple(chosen), lock_id,
        previous.number if previous is not None else None,
        reached, totals[0], int(totals[1]), int(totals[2]),
        tuple((c, s, n) for c, s, n in cells),
    )  # fmt: skip


def create_relaunch_wave(
    conn: Connection, plan: RelaunchPlan, campaign: AppliedCampaign, now: Any
) -> tuple[int, int]:
    """A wave row for a relaunch asked by hand: (wave id, wave number).

    Its occurrence key is `CAMPAIGN/manual/NUMBER`, apart from the scheduled ones.
    """
    number = next_wave_number(conn, campaign.id)
    new = NewWave(
        campaign_id=campaign.id, kind=WaveKind.RELAUNCH,
        occurrence_key=f"{campaign.name}/manual/{number}", scheduled_for=now,
        lock_id=plan.lock_id, target=plan.target, channels=list(plan.channels),
        created_at=now, note="relaunch by hand",
    )  # fmt: skip
    wave_id, _ = add_wave(conn, new, number)
    return wave_id, number


def prepare_relaunch(
    store: Store,
    campaign: str,
    target: RelaunchTarget,
    *,
    channels: list[str] | None,
    dry_run: bool,
    now: datetime,
) -> tuple[RelaunchPlan, tuple[int, int] | None]:
    """`relaunch`'s plan and, unless a dry run or nobody is left, its wave row (id, number),
    in one transaction: two relaunches at once never select the same records twice."""
    with store.transaction(immediate=True) as conn:
        applied = load_campaign(conn, campaign)
        plan = plan_relaunch(conn, applied, target, channels=channels)
        wave = (
            None if dry_run or not plan.selected else create_relaunch_wave(conn, plan, applied, now)
        )
    return plan, wave
