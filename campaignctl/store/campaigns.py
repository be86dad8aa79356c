"""Applied campaigns: the one look-up by name (with the one error), and the lock in force.

Every command that takes a CAMPAIGN argument, and every library function that works on
an applied campaign, finds it here: a name the store does not know gives the same
message and exit code whoever asks (DESIGN.md §2):

- named nowhere (neither defined in the workspace nor applied): a usage error (64) with
  "did you mean";
- defined but never applied (or, for a caller that has no workspace, simply not
  applied): a state error (65) that says to apply it;
- archived, for what sends (`sendable`): a state error (65) that says so.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from campaignctl.enums import CampaignState
from campaignctl.errors import StateError, unknown_campaign
from campaignctl.store.tables import CAMPAIGN, LOCK

if TYPE_CHECKING:
    from campaignctl.store.store import Store


def names(conn: sa.Connection) -> list[str]:
    """The names of the applied campaigns, sorted."""
    return list(conn.execute(sa.select(CAMPAIGN.c.name).order_by(CAMPAIGN.c.name)).scalars())


def find(conn: sa.Connection, name: str) -> Any | None:
    """The applied campaign's row (every column), or None."""
    return conn.execute(sa.select(CAMPAIGN).where(CAMPAIGN.c.name == name)).first()


def by_name(conn: sa.Connection, name: str, *, defined: Collection[str] | None = None) -> Any:
    """The applied campaign's row, or the one error that says why there is none.

    `defined` are the campaigns of the workspace, when the caller has one: a name that
    is neither defined nor applied is then a usage error (64) with "did you mean". A
    name the store does not know is otherwise a state error (65): apply it first.
    """
    row = find(conn, name)
    if row is not None:
        return row
    applied = names(conn)
    if defined is None:  # the store alone cannot tell a typo: it says what it knows
        raise not_applied(name, applied)
    if name not in defined:
        raise unknown_campaign(name, set(defined) | set(applied))
    raise not_applied(name)


def require(store: Store, name: str, *, defined: Collection[str] | None = None) -> None:
    """`by_name` in a read transaction of its own: a CAMPAIGN argument names an applied
    campaign, or the one error."""
    with store.read() as conn:
        by_name(conn, name, defined=defined)


def not_applied(name: str, applied: Collection[str] = ()) -> StateError:
    """The error for a campaign the store does not know (yet); `applied`, the names it
    knows, for a "did you mean"."""
    close = difflib.get_close_matches(name, list(applied), n=1)
    hint = "run `campaignctl apply` first"
    if close:
        hint += f", or did you mean {close[0]!r}?"
    return StateError(
        f"campaign {name!r} is not applied: the store does not know it yet", hint=hint
    )


def sendable(conn: sa.Connection, name: str, *, defined: Collection[str] | None = None) -> Any:
    """The applied campaign's row for what locks and sends: `by_name`, and a state error
    (65) when it is archived."""
    row = by_name(conn, name, defined=defined)
    if row.state == CampaignState.ARCHIVED:
        raise StateError(
            f"campaign {name!r} is archived: it sends nothing more",
            hint=f"`campaignctl report {name}` still shows what it sent; "
            "send again under a new campaign name",
        )
    return row


def state(conn: sa.Connection, name: str) -> str | None:
    """The applied campaign's life state, None when it is not applied."""
    found = conn.execute(sa.select(CAMPAIGN.c.state).where(CAMPAIGN.c.name == name)).scalar()
    return str(found) if found is not None else None


def lock_in_force(conn: sa.Connection, campaign_id: int) -> Any | None:
    """The campaign's lock in force (the latest not released), or None."""
    return conn.execute(
        sa.select(LOCK)
        .where(LOCK.c.campaign_id == campaign_id, LOCK.c.released_at.is_(None))
        .order_by(LOCK.c.id.desc())
        .limit(1)
    ).first()


def lock_id_in_force(conn: sa.Connection, campaign_id: int) -> int | None:
    """The id of the campaign's lock in force, or None."""
    row = lock_in_force(conn, campaign_id)
    return int(row.id) if row is not None else None
