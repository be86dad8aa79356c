"""Insert-or-ignore and insert-or-update on both stores, written once.

SQLite and PostgreSQL both have `INSERT … ON CONFLICT`, but SQLAlchemy builds it from
each dialect's own `insert()`. `insert(conn, table)` picks it, so no code outside the
store branches on the dialect to write an upsert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT for `table`: it has `on_conflict_do_nothing()` and
    `on_conflict_do_update()` (and `excluded`) on SQLite and PostgreSQL alike."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    key: Iterable[str],
    update: Iterable[str] | None = None,
    where: sa.ColumnElement[bool] | None = None,
    returning: Iterable[sa.ColumnElement[Any]] = (),
) -> sa.CursorResult[Any]:
    """INSERT `values`; on a conflict on the `key` columns, UPDATE the `update` columns
    (default: every other column given) to the values offered, when `where` holds.

    Drivers disagree on the rowcount of an upsert that did nothing: ask for `returning`
    to know whether a row was written."""
    statement = insert(conn, table).values(**values)
    key = list(key)
    columns = [c for c in (update if update is not None else values) if c not in key]
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={c: statement.excluded[c] for c in columns},
        where=where,
    )
    returned = list(returning)
    if returned:
        statement = statement.returning(*returned)
    return conn.execute(statement)
