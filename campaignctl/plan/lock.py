"""`lock`: freeze a campaign's recipients and content before sending.

A lock is a `campaign_lock` row (git commit, time, the figures, the hash of the
definition and of every template file) and its `recipient` rows, inserted by
one `INSERT … SELECT` from the targeting query, computed once (the figures come
from the same result): what the plan counted is what is frozen. `send` sends
exactly a lock; a template edited after the lock makes it refuse
(`check_content`) until `lock --refresh`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.audience.segments import workspace_today
from campaignctl.enums import OutboxState, WaveStatus
from campaignctl.errors import StateError, UsageError
from campaignctl.plan.definitions import git_state
from campaignctl.plan.plan import NotContactedCount, content_hashes
from campaignctl.plan.targeting import (
    LOCK,
    OUTBOX,
    RECIPIENT,
    RECORD,
    NotContacted,
    materialized,
)
from campaignctl.spec.models import Campaign
from campaignctl.spec.workspace import Workspace
from campaignctl.store import campaigns
from campaignctl.store.store import Store
from campaignctl.store.tables import AUDIT_LOG, WAVE


@dataclass
class LockView:
    campaign: str
    lock_id: int
    created_at: str
    git_commit: str | None
    counts: dict[str, Any]
    created: bool = False  # made by this call
    added: int | None = None  # with --refresh: recipients added/removed vs the previous lock
    removed: int | None = None
    added_keys: list[str] = field(default_factory=list)
    removed_keys: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, **self.__dict__}


def _campaign(workspace: Workspace, name: str) -> Campaign:
    campaign = workspace.campaign(name)
    if not campaign.channels:
        raise UsageError(f"campaign {name!r} has no channels: there is nothing to lock")
    return campaign


def _campaign_id(conn: sa.Connection, name: str) -> int:
    return int(campaigns.by_name(conn, name).id)


# the store's look-ups, under the names the send path has used
sendable_campaign = campaigns.sendable
active_lock_id = campaigns.lock_id_in_force
_active_lock = campaigns.lock_in_force


def _view(name: str, row: Any, created: bool = False) -> LockView:
    created_at = row.created_at
    stamp = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
    return LockView(name, row.id, stamp, row.git_commit, dict(row.counts or {}), created)


def current_lock(store: Store, name: str) -> LockView | None:
    """The campaign's active lock, if any."""
    with store.read() as conn:
        row = _active_lock(conn, _campaign_id(conn, name))
    return _view(name, row) if row is not None else None


def _counts(conn: sa.Connection, chosen: sa.Table) -> dict[str, Any]:
    """The frozen figures, from one pass over the materialised selection: records per
    segment × channel, messages per channel (one per leader, that is per distinct
    address), not contacted per reason, and per other campaign for `other_campaign`."""
    rows = conn.execute(
        sa.select(chosen.c.segment, chosen.c.channel, chosen.c.reason, chosen.c.detail)
        .add_columns(sa.func.count(), sa.func.sum(chosen.c.leader))
        .group_by(chosen.c.segment, chosen.c.channel, chosen.c.reason, chosen.c.detail)
        .order_by(chosen.c.segment, chosen.c.channel, chosen.c.reason, chosen.c.detail)
    ).all()
    matrix = [
        {"segment": segment, "channel": channel, "records": int(n)}
        for segment, channel, reason, _, n, _ in rows
        if reason is None
    ]
    messages: dict[str, int] = {}
    not_contacted: dict[str, int] = {}
    other_campaigns: dict[str, int] = {}
    for _, channel, reason, detail, n, leaders in rows:
        if reason is None:
            messages[channel] = messages.get(channel, 0) + int(leaders or 0)
        else:
            not_contacted[reason] = not_contacted.get(reason, 0) + int(n)
        if reason == NotContacted.OTHER_CAMPAIGN:
            other_campaigns[detail] = other_campaigns.get(detail, 0) + int(n)
    return {
        "recipients": sum(m["records"] for m in matrix),
        "messages": dict(sorted(messages.items())),
        "matrix": matrix,
        "not_contacted": dict(sorted(not_contacted.items())),
        "other_campaigns": dict(sorted(other_campaigns.items())),
    }


def not_contacted_counts(counts: dict[str, Any] | None) -> list[NotContactedCount]:
    """A lock's frozen not-contacted figures as the plan shows them: in the order the
    rules apply, `other_campaign` once per other campaign (`detail`)."""
    counts = counts or {}
    by_campaign = left_out_by_other_campaigns(counts)
    found = []
    for reason in NotContacted:
        n = (counts.get("not_contacted") or {}).get(reason.value)
        if reason == NotContacted.OTHER_CAMPAIGN and by_campaign:
            found += [NotContactedCount(reason.value, k, other) for other, k in by_campaign.items()]
        elif n:
            found.append(NotContactedCount(reason.value, int(n)))
    return found


def left_out_by_other_campaigns(counts: dict[str, Any] | None) -> dict[str, int]:
    """Other campaign → records a lock left out because that active questionnaire
    campaign already asks them (`respect_other_campaigns`), from the lock's figures."""
    return dict((counts or {}).get("other_campaigns") or {})


def lock_campaign(
    store: Store,
    workspace: Workspace,
    name: str,
    *,
    refresh: bool = False,
    now: datetime | None = None,
) -> LockView:
    """Freeze the recipients and content; an existing lock is shown, or replaced by `refresh`."""
    campaign = _campaign(workspace, name)
    now = now or clock.now()
    today = workspace_today(workspace, now)
    git = git_state(workspace.root)
    hashes = content_hashes(workspace, campaign)
    with store.transaction(immediate=True) as conn:
        campaign_id = int(sendable_campaign(conn, name).id)
        previous = _active_lock(conn, campaign_id)
        if previous is not None and not refresh:
            return _view(name, previous)
        if previous is not None:
            conn.execute(LOCK.update().where(LOCK.c.id == previous.id).values(released_at=now))
        lock_id = conn.execute(
            LOCK.insert()
            .values(
                campaign_id=campaign_id,
                created_at=now,
                git_commit=git.commit,
                definition_hash=hashes["(definition)"],
                content_hashes=hashes,
                counts={},
            )
            .returning(LOCK.c.id)
        ).scalar_one()
        # the selection is computed once; the recipients and the frozen figures come from it
        with materialized(conn, workspace, campaign, today) as chosen:
            conn.execute(
                RECIPIENT.insert().from_select(
                    ["lock_id", "record_id", "channel", "address", "segment", "group_key"],
                    sa.select(
                        sa.literal(lock_id),
                        chosen.c.record_id,
                        chosen.c.channel,
                        chosen.c.address,
                        chosen.c.segment,
                        chosen.c.group_key,
                    ).where(chosen.c.reason.is_(None)),
                )
            )
            counts = _counts(conn, chosen)
        conn.execute(LOCK.update().where(LOCK.c.id == lock_id).values(counts=counts))
        view = LockView(name, lock_id, now.isoformat(), git.commit, counts, created=True)
        if previous is not None:
            view.added_keys = _difference(conn, lock_id, previous.id)
            view.removed_keys = _difference(conn, previous.id, lock_id)
            view.added, view.removed = len(view.added_keys), len(view.removed_keys)
        conn.execute(
            AUDIT_LOG.insert().values(
                at=now,
                action="lock",
                object=name,
                data={"lock_id": lock_id, "recipients": counts["recipients"]},
            )
        )
    return view


def _difference(conn: sa.Connection, lock_a: int, lock_b: int) -> list[str]:
    """Record keys (with channel) in lock A and not in lock B."""
    other = sa.alias(RECIPIENT, "other")
    rows = conn.execute(
        sa.select(RECORD.c.key, RECIPIENT.c.channel)
        .join(RECORD, RECORD.c.id == RECIPIENT.c.record_id)
        .where(
            RECIPIENT.c.lock_id == lock_a,
            ~sa.exists().where(
                other.c.lock_id == lock_b,
                other.c.record_id == RECIPIENT.c.record_id,
                other.c.channel == RECIPIENT.c.channel,
            ),
        )
        .order_by(RECORD.c.key)
    )
    return [f"{key} ({channel})" for key, channel in rows]


def unlock_campaign(
    store: Store, name: str, *, force: bool = False, now: datetime | None = None
) -> LockView:
    """Release the active lock; refused once a wave was sent from it, unless `force`."""
    now = now or clock.now()
    with store.transaction(immediate=True) as conn:
        row = _active_lock(conn, _campaign_id(conn, name))
        if row is None:
            raise StateError(f"campaign {name!r} is not locked")
        sent = conn.execute(
            sa.select(sa.func.count(), sa.func.min(OUTBOX.c.sent_at))
            .select_from(OUTBOX)
            .join(WAVE, WAVE.c.id == OUTBOX.c.wave_id)
            .where(
                WAVE.c.lock_id == row.id,
                OUTBOX.c.state.in_(OutboxState.received()),
            )
        ).one()
        waves = conn.execute(
            sa.select(sa.func.count()).where(
                WAVE.c.lock_id == row.id,
                WAVE.c.status.in_([WaveStatus.SENDING.value, WaveStatus.DONE.value]),
            )
        ).scalar_one()
        if (sent[0] or waves) and not force:
            since = f" since {str(sent[1])[:16]}" if sent[1] else ""
            raise StateError(
                f"campaign {name!r}: {sent[0]} message(s) were sent from lock {row.id}{since}; "
                "unlocking would let the next wave target different recipients than its relaunches "
                "expect",
                hint="use `lock --refresh` to update the recipients, or `unlock --force`",
            )
        conn.execute(LOCK.update().where(LOCK.c.id == row.id).values(released_at=now))
        conn.execute(
            AUDIT_LOG.insert().values(
                at=now, action="unlock", object=name, data={"lock_id": row.id, "force": force}
            )
        )
    return _view(name, row)


@contextmanager
def virtual_lock(
    conn: sa.Connection, workspace: Workspace, name: str, now: datetime
) -> Iterator[tuple[sa.Table, dict[str, Any]]]:
    """The recipients a lock made now would freeze, and its counts, without recording a
    lock: a temporary table shaped like `recipient` (lock_id 0), private to `conn`.
    `send --dry-run` renders a campaign not locked yet from it."""
    campaign = _campaign(workspace, name)
    table = sa.Table(
        f"virtual_lock_{uuid.uuid4().hex[:12]}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(c.name, c.type) for c in RECIPIENT.columns if c.name != "id"),
        prefixes=["TEMPORARY"],
    )
    columns = ["lock_id", "record_id", "channel", "address", "segment", "group_key"]
    with materialized(conn, workspace, campaign, workspace_today(workspace, now)) as chosen:
        table.create(conn)
        conn.execute(  # the rows lock_campaign would insert, in the same order
            table.insert().from_select(
                columns,
                sa.select(sa.literal(0), *(chosen.c[c] for c in columns[1:])).where(
                    chosen.c.reason.is_(None)
                ),
            )
        )
        counts = _counts(conn, chosen)
    yield table, counts
    table.drop(conn)


def active_or_new_lock(store: Store, workspace: Workspace, name: str) -> LockView:
    """The lock `send` uses: the active one, or a new one (`created` says so)."""
    return lock_campaign(store, workspace, name)


def changed_content(store: Store, workspace: Workspace, name: str) -> list[str]:
    """Files (and `(definition)`) whose hash differs from the active lock's."""
    campaign = _campaign(workspace, name)
    with store.read() as conn:
        row = _active_lock(conn, _campaign_id(conn, name))
    if row is None:
        return []
    locked = dict(row.content_hashes or {})
    current = content_hashes(workspace, campaign)
    return sorted(k for k in set(locked) | set(current) if locked.get(k) != current.get(k))


def check_content(store: Store, workspace: Workspace, name: str) -> None:
    """Raise StateError when the templates or definition changed since the lock (send calls it)."""
    changed = changed_content(store, workspace, name)
    if changed:
        raise StateError(
            f"campaign {name!r} changed since it was locked: {', '.join(changed)}",
            hint=f"review with `campaignctl plan {name}`, then `campaignctl lock {name} --refresh`",
        )
