"""Who a campaign reaches, as ONE SQL query over the store (docs/targeting.md).

`plan` aggregates it, `lock` inserts it into the recipient table (both from one
evaluation kept in a temporary table, `materialized`), `send` reads the lock:
all three share this selection, so what the plan counts is what is sent.
Every targeted record comes out of `selection()` once, either reached (a
channel, an address, a group) or not contacted with exactly one reason.
Records are never loaded into Python to be filtered or counted.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa

from campaignctl.audience.segments import segment_condition
from campaignctl.enums import CampaignState, Channel, OutboxState
from campaignctl.spec.models import Campaign, CampaignType
from campaignctl.spec.workspace import Workspace
from campaignctl.store import suppressions
from campaignctl.store.outbox import capped_addresses
from campaignctl.store.tables import CAMPAIGN, LOCK, OUTBOX, RECIPIENT, RECORD

# a message counts as received (exclude_campaigns, a campaign's latest message)
RECEIVED_STATES = OutboxState.received()
# an applied campaign in these states is going to send or has sent (not a draft,
# completed or archived): with a lock, it asks its recipients (respect_other_campaigns)
ACTIVE_STATES = (CampaignState.SCHEDULED, CampaignState.ACTIVE)


class NotContacted(enum.StrEnum):
    """Why a targeted record gets no message, in the order the rules apply."""

    EXCLUDED_SEGMENT = "excluded_segment"
    EXCLUDED_CAMPAIGN = "excluded_campaign"
    OTHER_CAMPAIGN = "other_campaign"
    NO_ADDRESS = "no_address"
    INVALID_ADDRESS = "invalid_address"
    SUPPRESSED = "suppressed"
    MAX_MESSAGES = "max_messages"
    DUPLICATE_ADDRESS = "duplicate_address"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    NotContacted.EXCLUDED_SEGMENT: "excluded by exclude_segments",
    NotContacted.EXCLUDED_CAMPAIGN: "received a message of an excluded campaign",
    NotContacted.OTHER_CAMPAIGN: "already asked by an active questionnaire campaign",
    NotContacted.NO_ADDRESS: "no address for the campaign's channels",
    NotContacted.INVALID_ADDRESS: "address invalid in the source",
    NotContacted.SUPPRESSED: "suppressed or opted out of the category",
    NotContacted.MAX_MESSAGES: "over max_messages_per_contact",
    NotContacted.DUPLICATE_ADDRESS: "address already used by another record of the wave",
}


@dataclass(frozen=True)
class TargetingOptions:
    """What varies between the first wave and the others."""

    first_wave: bool = True  # options.send_email: false removes email from the first wave only
    channels: tuple[Channel, ...] | None = None  # default: the campaign's


def _suppressed(
    conn: sa.Connection, channel: Channel, column: Any, category: str | None
) -> sa.ColumnElement[bool] | None:
    """The address in `column` may not be contacted on `channel` for `category`
    (`store.suppressions.applies`); None when no suppression applies at all (then the
    selection tests nothing), and the hash of every address only when a forgotten
    contact's suppression may apply."""
    found = suppressions.present(conn, channel, category)
    if not found:
        return None
    return suppressions.applies(column, channel.value, category, hashed=bool(found.hashed_only))


_ADDRESS_COLUMN = {Channel.EMAIL: RECORD.c.email_normalized, Channel.SMS: RECORD.c.phone}


def _duplicated(column: Any) -> sa.Select[Any]:
    """Addresses that more than one record of the store has: one ordered pass over the
    address's index, no sort."""
    return (
        sa.select(column)
        .where(column.is_not(None))
        .group_by(column)
        .having(sa.func.count() > 1)
        .correlate(None)
    )


def _other_campaigns(
    conn: sa.Connection, workspace: Workspace, campaign: Campaign, today: date
) -> Any:
    """record_id → name: the first other active questionnaire campaign (by name) that asks
    the record (docs/targeting.md, `respect_other_campaigns`).

    Another campaign is an active questionnaire campaign while it is applied with `type:
    questionnaire`, is neither a draft nor completed nor archived, has a lock in force
    (whose recipients are the records it asks), and its form links still open: it has sent
    nothing yet, or its latest message went out less than `tracking.token_max_age` ago.
    First locked, first served: a lock made later leaves those records out, and says so.

    One aggregate over the recipients of those locks, joined once to the records (not a
    subquery per record); None when there is no such campaign, the usual case, so the
    selection skips it altogether.
    """
    active = [
        LOCK.c.released_at.is_(None),
        CAMPAIGN.c.name != campaign.name,
        CAMPAIGN.c.type == CampaignType.QUESTIONNAIRE.value,
        CAMPAIGN.c.state.in_([s.value for s in ACTIVE_STATES]),
    ]
    tracking = workspace.config.tracking if workspace.config else None
    if tracking is not None:
        last_sent = (
            sa.select(sa.func.max(OUTBOX.c.sent_at))
            .where(OUTBOX.c.campaign_id == CAMPAIGN.c.id, OUTBOX.c.state.in_(RECEIVED_STATES))
            .scalar_subquery()
        )
        links_expired = datetime.combine(today - tracking.token_max_age, time.min, UTC)
        active.append(sa.or_(last_sent.is_(None), last_sent >= links_expired))
    lock_ids = list(
        conn.execute(
            sa.select(LOCK.c.id).join(CAMPAIGN, CAMPAIGN.c.id == LOCK.c.campaign_id).where(*active)
        ).scalars()
    )
    if not lock_ids:
        return None
    return (
        sa.select(RECIPIENT.c.record_id, sa.func.min(CAMPAIGN.c.name).label("name"))
        .join(LOCK, LOCK.c.id == RECIPIENT.c.lock_id)
        .join(CAMPAIGN, CAMPAIGN.c.id == LOCK.c.campaign_id)
        .where(RECIPIENT.c.lock_id.in_(lock_ids))  # their recipients only, by index
        .group_by(RECIPIENT.c.record_id)
        .subquery("other")
    )


def _over_max_messages(conn: sa.Connection, campaign: Campaign) -> Any:
    """(channel, address) pairs that already count `max_messages_per_contact` messages of
    this campaign (`store.outbox.capped_addresses`: the rule send and relaunch follow);
    None when there are none (nothing sent yet, the usual case when planning), so the
    selection skips the test."""
    applied = sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == campaign.name).scalar_subquery()
    over = capped_addresses(applied, campaign.options.max_messages_per_contact)
    if conn.execute(over.limit(1)).first() is None:
        return None
    return over


def selection(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: Campaign,
    today: date,
    options: TargetingOptions = TargetingOptions(),
) -> sa.Select[Any]:
    """One row per targeted record: record_id, key, segment, reason, detail, channel,
    address, group_key, leader (1 when the record leads its message).

    `reason` is NULL for reached records; `detail` names the other campaign of an
    `other_campaign` conflict.
    """
    dialect = conn.dialect.name
    segments = list(campaign.audience.segments)
    conditions = [segment_condition(workspace, name, today, dialect) for name in segments]
    rank = sa.case(*((cond, index) for index, cond in enumerate(conditions)), else_=None)
    channels = list(options.channels or campaign.channels)
    if options.first_wave and not campaign.options.send_email and Channel.EMAIL in channels:
        channels.remove(Channel.EMAIL)

    excluded_segment: sa.ColumnElement[bool] = sa.false()
    if campaign.audience.exclude_segments:
        excluded_segment = sa.or_(
            *(
                sa.func.coalesce(segment_condition(workspace, name, today, dialect), sa.false())
                for name in campaign.audience.exclude_segments
            )
        )
    excluded_campaign: sa.ColumnElement[bool] = sa.false()
    if campaign.audience.exclude_campaigns:
        # a correlated EXISTS (a probe of ix_outbox_record per record), not `id IN (SELECT
        # …)`: PostgreSQL scans such a list for every record once it outgrows work_mem
        excluded_campaign = sa.exists().where(
            OUTBOX.c.record_id == RECORD.c.id,
            OUTBOX.c.campaign_id.in_(
                sa.select(CAMPAIGN.c.id).where(
                    CAMPAIGN.c.name.in_(campaign.audience.exclude_campaigns)
                )
            ),
            OUTBOX.c.state.in_(RECEIVED_STATES),
        )
    other = (
        _other_campaigns(conn, workspace, campaign, today)
        if campaign.options.respect_other_campaigns
        else None
    )
    targeted_from: Any = RECORD
    other_column: Any = sa.null()
    if other is not None:
        targeted_from = RECORD.outerjoin(other, other.c.record_id == RECORD.c.id)
        other_column = other.c.name

    base = (
        sa.select(
            RECORD.c.id.label("record_id"),
            RECORD.c.key.label("key"),
            rank.label("rank"),
            RECORD.c.invalid_addresses.label("invalid"),
            RECORD.c.email_normalized.label("email"),
            RECORD.c.phone.label("phone"),
            excluded_segment.label("excluded_segment"),
            excluded_campaign.label("excluded_campaign"),
            other_column.label("other_campaign"),
        )
        .select_from(targeted_from)
        .where(sa.or_(*conditions))
        .subquery("targeted")
    )
    t = base.c
    has: dict[Channel, Any] = {
        Channel.EMAIL: t.email.is_not(None),
        Channel.SMS: t.phone.is_not(None),
    }
    column = {Channel.EMAIL: t.email, Channel.SMS: t.phone}
    usable = {}
    for ch in channels:
        suppressed = _suppressed(conn, ch, column[ch], campaign.category)
        usable[ch] = has[ch] if suppressed is None else sa.and_(has[ch], sa.not_(suppressed))
    channel_expr = sa.case(*((usable[ch], ch.value) for ch in channels), else_=None)
    address_expr = sa.case(*((usable[ch], column[ch]) for ch in channels), else_=None)
    any_address = sa.or_(sa.false(), *(has[ch] for ch in channels))
    invalid_any = sa.or_(
        sa.false(), *(t.invalid.contains(ch.value, autoescape=True) for ch in channels)
    )
    first_reason = sa.case(
        (t.excluded_segment, NotContacted.EXCLUDED_SEGMENT.value),
        (t.excluded_campaign, NotContacted.EXCLUDED_CAMPAIGN.value),
        (t.other_campaign.is_not(None), NotContacted.OTHER_CAMPAIGN.value),
        (sa.and_(sa.not_(any_address), invalid_any), NotContacted.INVALID_ADDRESS.value),
        (sa.not_(any_address), NotContacted.NO_ADDRESS.value),
        (channel_expr.is_(None), NotContacted.SUPPRESSED.value),
        else_=None,
    )
    reasons = sa.select(
        t.record_id,
        t.key,
        t.rank,
        first_reason.label("reason0"),
        t.other_campaign,
        channel_expr.label("channel"),
        address_expr.label("address"),
    ).subquery("classified")

    c = reasons.c
    max_messages = campaign.options.max_messages_per_contact
    over_max: sa.ColumnElement[bool] = sa.false()
    over = _over_max_messages(conn, campaign) if max_messages else None
    if over is not None:
        over_max = sa.and_(c.reason0.is_(None), sa.tuple_(c.channel, c.address).in_(over))
    reason1 = sa.case((over_max, NotContacted.MAX_MESSAGES.value), else_=c.reason0)
    # Only a reached record whose address another record of the store also has can
    # share a message (or be a duplicate): the duplicated addresses come from the
    # address indexes, and only those records are numbered by the window function;
    # every other record leads its own message. Sorting the whole targeted set by
    # address was most of the cost of a plan.
    shared = sa.or_(
        sa.false(),
        *(
            sa.and_(c.channel == ch.value, c.address.in_(_duplicated(_ADDRESS_COLUMN[ch])))
            for ch in channels
        ),
    )
    staged = sa.select(
        c.record_id,
        c.key,
        c.rank,
        reason1.label("reason1"),
        c.other_campaign,
        c.channel,
        c.address,
        sa.case((sa.and_(reason1.is_(None), shared), 1), else_=0).label("shared"),
    ).cte("staged")
    s = staged.c
    columns = (s.record_id, s.key, s.rank, s.reason1, s.other_campaign, s.channel, s.address)
    position = sa.func.row_number().over(
        partition_by=(s.channel, s.address), order_by=(s.rank, s.key)
    )
    numbered = sa.union_all(
        sa.select(*columns, sa.literal(1).label("position")).where(s.shared == 0),
        sa.select(*columns, position.label("position")).where(s.shared == 1),
    ).subquery("numbered")
    n = numbered.c
    grouped = campaign.options.group_by_email
    member = sa.and_(n.position > 1, n.channel == Channel.EMAIL.value) if grouped else sa.false()
    reason = sa.case(
        (n.reason1.is_not(None), n.reason1),
        (sa.and_(n.position > 1, sa.not_(member)), NotContacted.DUPLICATE_ADDRESS.value),
        else_=None,
    )
    segment = sa.case(*((n.rank == i, name) for i, name in enumerate(segments)), else_=None)
    reached = reason.is_(None)
    return sa.select(
        n.record_id,
        n.key,
        segment.label("segment"),
        reason.label("reason"),
        sa.case(
            (n.reason1 == NotContacted.OTHER_CAMPAIGN.value, n.other_campaign), else_=None
        ).label("detail"),
        sa.case((reached, n.channel), else_=None).label("channel"),
        sa.case((reached, n.address), else_=None).label("address"),
        sa.case(
            (
                sa.and_(
                    reached, n.channel == Channel.EMAIL.value, sa.true() if grouped else sa.false()
                ),
                n.address,
            ),
            else_=None,
        ).label("group_key"),
        sa.case((sa.and_(reached, n.position == 1), 1), else_=0).label("leader"),
    )


@contextmanager
def materialized(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: Campaign,
    today: date,
    options: TargetingOptions = TargetingOptions(),
) -> Iterator[sa.Table]:
    """The selection computed once into a temporary table (the columns of `selection`),
    for commands that read it several times: the plan's figures, not-contacted list and
    SMS sample; the lock's recipients and counts. A temporary table is private to the
    connection and never written to the store's files; it is dropped on the way out.
    """
    table = sa.Table(
        f"chosen_{uuid.uuid4().hex[:12]}",
        sa.MetaData(),
        sa.Column("record_id", sa.Integer),
        sa.Column("key", sa.String),
        sa.Column("segment", sa.String),
        sa.Column("reason", sa.String),
        sa.Column("detail", sa.String),
        sa.Column("channel", sa.String),
        sa.Column("address", sa.String),
        sa.Column("group_key", sa.String),
        sa.Column("leader", sa.Integer),
        prefixes=["TEMPORARY"],
    )
    query = selection(conn, workspace, campaign, today, options)
    table.create(conn)
    conn.execute(table.insert().from_select([c.name for c in table.columns], query))
    yield table
    table.drop(conn)  # not on an error: the rolled-back transaction takes the table with it
