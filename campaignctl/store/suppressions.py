"""Suppressions: the one rule that says an address may not be contacted, and the one writer.

A suppression applies to an address on a channel for one category, or (category NULL)
for all. It is matched by its address text (an index-free IN list, cheap: suppressions
are few) or, once the contact was forgotten and only the SHA-256 of the address is
kept, by that hash. `applies` is that rule as one SQL predicate: plan targeting, the
outbox, relaunches and `suppress`/`forget` all build their queries from it.
Addresses here are already normalised (lower-cased email, E.164 phone): see
`audience.privacy.normalize_address`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from campaignctl.enums import Channel, SuppressionReason
from campaignctl.store.store import utcnow
from campaignctl.store.tables import SUPPRESSION
from campaignctl.store.upsert import insert

S = SUPPRESSION


def address_hash(normal: str) -> str:
    """The SHA-256 (hex) a suppression keeps of its normalised address."""
    return hashlib.sha256(normal.encode()).hexdigest()


class sha256_hex(FunctionElement[str]):
    """SQL: the hex SHA-256 of a text, as `address_hash` computes it in Python
    (SQLite: a function registered on every connection, `store.functions`)."""

    type = sa.String()
    inherit_cache = True


@compiles(sha256_hex)
def _sha256_sqlite(element: sha256_hex, compiler: Any, **kw: Any) -> str:
    return f"campaignctl_sha256({compiler.process(element.clauses, **kw)})"


@compiles(sha256_hex, "postgresql")
def _sha256_postgresql(element: sha256_hex, compiler: Any, **kw: Any) -> str:
    return f"encode(sha256(convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')), 'hex')"


def _scope(channel: Any, category: Any) -> list[sa.ColumnElement[bool]]:
    """A suppression of that channel, for every category or the given one."""
    return [S.c.channel == channel, sa.or_(S.c.category.is_(None), S.c.category == category)]


def applies(
    address: Any, channel: Any, category: str | None, *, hashed: bool = True
) -> sa.ColumnElement[bool]:
    """SQL: a suppression forbids contacting `address` on `channel` for `category`.

    `address` and `channel` are SQL expressions (a column of the rows being selected) or
    Python values. An address in Python is matched by its hash (the unique index); a
    column by the addresses suppressions keep, and, unless `hashed` is false (the caller
    knows no forgotten suppression applies: see `present`), by the hash of those that
    were forgotten.
    """
    if isinstance(address, str):
        return sa.exists().where(
            *_scope(channel, category), S.c.address_hash == address_hash(address)
        )
    # Correlated EXISTS, each a probe of an index per row (ix_suppression_address, and
    # uq_suppression for the hashes), never `address IN (SELECT …)`: PostgreSQL may run
    # that, in a CASE or under NOT, as a subplan scanning every suppression for every row
    # once they outgrow work_mem (tests/store/test_pg_subplans.py); and SQLite answered it
    # three times slower (400,000 suppressions, 1M records: `plan` 20.5 s, now 6.5 s).
    scope = _scope(channel, category)
    tests = [sa.exists().where(*scope, S.c.address == address)]
    if hashed:
        # by the hash alone (uq_suppression): a kept address with that hash is the same
        # address, which the test above finds too
        tests.append(sa.exists().where(*scope, S.c.address_hash == sha256_hex(address)))
    return sa.or_(*tests)


def reason(
    address: Any, channel: Any, category: str | None, *, hashed: bool = True
) -> sa.ScalarSelect[Any]:
    """SQL: the reason of a suppression that `applies` (NULL when none does)."""
    match: Any = S.c.address == address
    if hashed:
        match = sa.or_(
            match, sa.and_(S.c.address.is_(None), S.c.address_hash == sha256_hex(address))
        )
    return sa.select(S.c.reason).where(*_scope(channel, category), match).limit(1).scalar_subquery()


@dataclass(frozen=True)
class Present:
    """How many suppressions could apply: kept with their address, and forgotten (hash only)."""

    by_address: int
    hashed_only: int

    def __bool__(self) -> bool:
        return bool(self.by_address or self.hashed_only)


def present(
    conn: sa.Connection, channel: Channel | str | None = None, category: str | None = None
) -> Present:
    """The suppressions `applies` may find (of that channel and category; any when
    `channel` is None): a query skips the test when there are none, and the hash of
    every address when none was forgotten."""
    where = _scope(str(channel), category) if channel is not None else []
    by_address, hashed_only = conn.execute(
        sa.select(sa.func.count(S.c.address), sa.func.count() - sa.func.count(S.c.address)).where(
            *where
        )
    ).one()
    return Present(int(by_address or 0), int(hashed_only or 0))


def reasons(
    conn: sa.Connection, addresses: Iterable[tuple[str, str]], category: str | None
) -> dict[tuple[str, str], str]:
    """(channel, normalised address) → the reason of a suppression that applies, for those
    that have one: one look-up by hash for the whole set."""
    wanted = {(channel, address_hash(normal)): (channel, normal) for channel, normal in addresses}
    if not wanted:
        return {}
    found: dict[tuple[str, str], str] = {}
    rows = conn.execute(
        sa.select(S.c.channel, S.c.address_hash, S.c.reason).where(
            S.c.address_hash.in_(sorted({digest for _, digest in wanted})),
            sa.or_(S.c.category.is_(None), S.c.category == category),
        )
    )
    for channel, digest, why in rows:
        key = wanted.get((channel, digest))
        if key is not None:
            found.setdefault(key, str(why))
    return found


@dataclass(frozen=True)
class SuppressionEntry:
    """One suppression to add: `normal` is the normalised address, kept beside its hash
    unless `keep_address` is false (a forgotten record: the hash only)."""

    channel: Channel
    normal: str
    category: str | None
    reason: SuppressionReason
    source: str | None
    keep_address: bool = True

    def key(self) -> tuple[str, str, str]:
        return (str(self.channel), address_hash(self.normal), self.category or "")


def add(conn: sa.Connection, entries: Iterable[SuppressionEntry]) -> list[SuppressionEntry]:
    """Add suppressions in the caller's transaction, set-based (one look-up and one insert per
    thousand); returns those added, the others existed. Safe when writers overlap: the unique
    index keeps one of two suppressions added at once (both are then reported added)."""
    wanted: dict[tuple[str, str, str], SuppressionEntry] = {}
    for entry in entries:
        wanted.setdefault(entry.key(), entry)
    added: list[SuppressionEntry] = []
    keys = list(wanted)
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        existing = {
            tuple(row)
            for row in conn.execute(
                sa.select(S.c.channel, S.c.address_hash, sa.func.coalesce(S.c.category, "")).where(
                    S.c.address_hash.in_(sorted({digest for _, digest, _ in chunk}))
                )
            )
        }
        fresh = [wanted[k] for k in chunk if k not in existing]
        if fresh:
            _insert_ignoring_existing(conn, fresh)
        added.extend(fresh)
    return added


def _insert_ignoring_existing(conn: sa.Connection, fresh: Sequence[SuppressionEntry]) -> None:
    # a writer in another transaction may have added one meanwhile (PostgreSQL): the
    # unique index on (channel, address_hash, coalesce(category, '')) keeps the first
    now = utcnow()
    conn.execute(
        insert(conn, S).on_conflict_do_nothing(),
        [
            {
                "channel": str(e.channel),
                "address": e.normal if e.keep_address else None,
                "address_hash": address_hash(e.normal),
                "category": e.category,
                "reason": str(e.reason),
                "source": e.source,
                "created_at": now,
            }
            for e in fresh
        ],
    )


def remove(conn: sa.Connection, channel: Channel | str, normal: str, category: str | None) -> bool:
    """Delete the suppression of exactly that channel, address and category (None: the one
    for all categories); False when there was none."""
    deleted = conn.execute(
        sa.delete(S).where(
            S.c.channel == str(channel),
            S.c.address_hash == address_hash(normal),
            sa.func.coalesce(S.c.category, "") == (category or ""),
        )
    ).rowcount
    return bool(deleted)


def listing(
    conn: sa.Connection, channel: Channel | str | None = None, category: str | None = None
) -> list[Any]:
    """The suppressions (of that channel, of that category), by channel and hash."""
    query = sa.select(S).order_by(S.c.channel, S.c.address_hash)
    if channel:
        query = query.where(S.c.channel == str(channel))
    if category:
        query = query.where(S.c.category == category)
    return conn.execute(query).all()


def keep_hash_only(conn: sa.Connection, normal: str) -> None:
    """Erase the text of that address from every suppression (a contact forgotten): only
    its hash stays, and still blocks it."""
    conn.execute(sa.update(S).where(S.c.address_hash == address_hash(normal)).values(address=None))
