"""Members of `kind: List` documents, kept in the store (`list_member`).

A list holds records of one audience. Adding a member that was removed clears its
`removed_at` and stamps a new `added_at` (a `list_added` trigger sees it again,
but a record is still enrolled once per campaign); removing keeps the row with
`removed_at` set, for `list_removed` triggers. The same two set-based statements
serve `campaignctl list add/remove`, automation steps and the web API.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.enums import RecordStatus
from campaignctl.errors import UsageError
from campaignctl.spec.models import List as ListSpec
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.store.tables import LIST_MEMBER, RECORD

SHOW_LIMIT = 1000


def list_spec(workspace: Workspace, name: str) -> ListSpec:
    """The `kind: List` document named `name`; a usage error naming the known lists."""
    found = workspace.lists.get(name)
    if found is None:
        known = sorted(workspace.lists)
        close = difflib.get_close_matches(name, known, n=1)
        raise UsageError(
            f"list {name!r} is not defined",
            hint=f"did you mean {close[0]!r}?"
            if close
            else "declare it in a `kind: List` document (audiences/lists/NAME.yaml); "
            f"lists: {', '.join(known) or 'none defined'}",
        )
    return found


def _upsert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def add_selected(
    conn: sa.Connection, name: str, records: sa.Select[Any], now: datetime, source: str
) -> int:
    """Add the records `records` selects (one column: record id) to list `name`; members
    already in it are left as they are. Returns how many joined."""
    insert = _upsert(conn)
    picked = records.subquery()
    stamp = sa.bindparam("now", now, type_=LIST_MEMBER.c.added_at.type)
    source_rows = sa.select(sa.literal(name), picked.c[0], stamp, sa.literal(source)).where(
        sa.true()
    )  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
    statement = insert(LIST_MEMBER).from_select(
        ["list_name", "record_id", "added_at", "source"], source_rows
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["list_name", "record_id"],
        set_={"added_at": excluded.added_at, "removed_at": None, "source": excluded.source},
        where=LIST_MEMBER.c.removed_at.is_not(None),
    )
    # RETURNING: psycopg gives no rowcount for an INSERT … SELECT … ON CONFLICT
    return len(conn.execute(statement.returning(LIST_MEMBER.c.id), {"now": now}).all())


def remove_selected(
    conn: sa.Connection, name: str, records: sa.Select[Any], now: datetime, source: str
) -> int:
    """Take the records `records` selects out of list `name`. Returns how many left it."""
    result = conn.execute(
        LIST_MEMBER.update()
        .where(
            LIST_MEMBER.c.list_name == name,
            LIST_MEMBER.c.removed_at.is_(None),
            LIST_MEMBER.c.record_id.in_(records),
        )
        .values(removed_at=now, source=source)
    )
    return int(result.rowcount or 0)


def is_member(record_id: Any, names: Sequence[str]) -> sa.ColumnElement[bool]:
    """SQL: the record `record_id` (a column) is a current member of one of the lists.

    A correlated EXISTS (one probe of uq_list_member per record), never `record_id IN
    (SELECT …)`: PostgreSQL evaluates that, in a CASE or under NOT, as a subplan that
    scans the whole list for every record once its ids outgrow work_mem.
    """
    return sa.exists().where(
        LIST_MEMBER.c.list_name.in_(list(names)),
        LIST_MEMBER.c.record_id == record_id,
        LIST_MEMBER.c.removed_at.is_(None),
    )


@dataclass
class ListChange:
    """What `list add` or `list remove` did."""

    list: str
    audience: str
    action: str  # add | remove
    changed: int = 0  # added, or removed
    unchanged: int = 0  # already members (add) or not members (remove)
    unknown: list[str] = field(default_factory=list)  # keys not in the audience

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "list": self.list,
            "audience": self.audience,
            "action": self.action,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "unknown_keys": self.unknown,
        }

    def text(self) -> str:
        verb = "added" if self.action == "add" else "removed"
        other = "already members" if self.action == "add" else "not members"
        line = f"{self.list}: {self.changed} {verb}, {self.unchanged} {other}"
        if self.unknown:
            shown = ", ".join(self.unknown[:5]) + (" …" if len(self.unknown) > 5 else "")
            line += f", {len(self.unknown)} unknown key(s) in audience {self.audience}: {shown}"
        return line


def _keys(conn: sa.Connection, audience: str, keys: Sequence[str]) -> tuple[list[int], list[str]]:
    found: dict[str, int] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        rows = conn.execute(
            sa.select(RECORD.c.key, RECORD.c.id).where(
                RECORD.c.audience == audience,
                RECORD.c.key.in_(chunk),
                RECORD.c.status != RecordStatus.FORGOTTEN.value,
            )
        )
        found.update({str(k): int(i) for k, i in rows})
    return list(found.values()), [k for k in unique if k not in found]


def change_members(
    store: Store,
    workspace: Workspace,
    name: str,
    keys: Sequence[str],
    *,
    add: bool,
    source: str = "command",
    now: datetime | None = None,
) -> ListChange:
    """`list add` / `list remove`: the keys name records of the list's audience; unknown
    keys are counted and named, never silently dropped."""
    spec = list_spec(workspace, name)
    now = now or clock.now()
    change = ListChange(name, spec.audience, "add" if add else "remove")
    store.ensure_schema()
    with store.transaction(immediate=True) as conn:
        ids, change.unknown = _keys(conn, spec.audience, keys)
        for start in range(0, len(ids), 500):
            chunk = sa.select(RECORD.c.id).where(RECORD.c.id.in_(ids[start : start + 500]))
            if add:
                change.changed += add_selected(conn, name, chunk, now, source)
            else:
                change.changed += remove_selected(conn, name, chunk, now, source)
    change.unchanged = len(ids) - change.changed
    return change


@dataclass
class ListView:
    """`list show`: the list's definition and its current members (first SHOW_LIMIT)."""

    list: str
    audience: str
    description: str | None
    count: int
    members: list[dict[str, Any]]
    removed: int  # former members (kept for list_removed triggers)

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, **self.__dict__}


def show_list(
    store: Store, workspace: Workspace, name: str, keys: Sequence[str] = (), limit: int = SHOW_LIMIT
) -> ListView:
    """The members of list `name` (only `keys`, when given), ordered by key."""
    spec = list_spec(workspace, name)
    store.ensure_schema()
    m = LIST_MEMBER.c
    with store.read() as conn:
        current = sa.and_(m.list_name == name, m.removed_at.is_(None))
        count = conn.execute(sa.select(sa.func.count()).where(current)).scalar_one()
        removed = conn.execute(
            sa.select(sa.func.count()).where(m.list_name == name, m.removed_at.is_not(None))
        ).scalar_one()
        query = (
            sa.select(RECORD.c.key, m.added_at, m.source)
            .join(RECORD, RECORD.c.id == m.record_id)
            .where(current)
            .order_by(RECORD.c.key)
            .limit(limit)
        )
        if keys:
            query = query.where(RECORD.c.key.in_(list(keys)))
        members = [
            {"key": key, "added_at": _iso(added), "source": source}
            for key, added, source in conn.execute(query)
        ]
    return ListView(name, spec.audience, spec.description, int(count), members, int(removed))


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
