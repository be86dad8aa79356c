"""The worker side of `audience import`: parse, classify, type and stage blocks of rows.

Import workers are started fresh (not forked from the importer, whose memory every
forked worker would carry), so this module imports only what typing a row needs: the
source reader, the converters, the standard library's sqlite3, and psycopg on
PostgreSQL. No SQLAlchemy, no CLI.

A worker parses its block, hashes each row's raw cells, and on a re-import looks the
keys up in the store through its own read connection: an unchanged row is recognised by
its hash and not typed again, unless it had bad values when it was stored (the lowest
bit of its hash says so): it is typed again to list them, so that a re-import reports
every problem the file still has. It types the new and changed rows and writes them to
its own staging SQLite file; the importer moves them into the store.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import orjson

from campaignctl.audience.source import Block, RowProblem, RowTyper, SourceLayout, parse_block
from campaignctl.enums import RecordStatus
from campaignctl.spec.models import Audience

# what differs from record to record; the audience, status and timestamps are the import's
RECORD_COLUMNS = (
    "key", "email", "email_normalized", "phone", "invalid_addresses", "category", "attributes",
    "source_hash",
)  # fmt: skip
STAGED_COLUMNS = ", ".join(RECORD_COLUMNS)
# The version of the row hash: a new one makes every row 'changed' once.
# 2: every header column is an attribute; the lowest bit says the row had bad values.
HASH_VERSION = 2
HAD_PROBLEMS = 1  # the bit of a stored source hash

ADDED, UPDATED, UNCHANGED = "a", "u", "="  # what a row with a key does to the store
_ABSENT, _KEEP = object(), object()  # stored states: no such record, a forgotten one


def row_hasher(salt: bytes) -> Callable[[list[str]], int]:
    """The hash of a row's raw cells, keyed by the mapping: a signed 64-bit integer whose
    lowest bit is left clear (for HAD_PROBLEMS)."""
    keyed = hashlib.blake2b(digest_size=8, key=salt)  # copied: the key is absorbed once

    def row_hash(cells: list[str]) -> int:
        hasher = keyed.copy()
        hasher.update("\x1f".join(cells).encode())
        return int.from_bytes(hasher.digest(), "big", signed=True) & ~HAD_PROBLEMS

    return row_hash


def mapping_salt(layout: SourceLayout, audience: Audience, region: str) -> bytes:
    """Changing the mapping (types, regions, which header feeds which attribute) makes
    every row 'changed' once."""
    mapping = [
        (name, column.model_dump(mode="json"), layout.positions[name])
        for name, column in layout.columns.items()
    ]
    text = orjson.dumps([HASH_VERSION, audience.key, mapping, region])
    return hashlib.blake2b(text, digest_size=16).digest()


@dataclass
class Staged:
    """What a worker hands back for one block; the typed rows themselves are in `file`."""

    file: str
    first: int  # line numbers of the first and last staged row (first > last: none)
    last: int
    rows: int  # non-blank rows in the block
    keys: list[str]  # of the rows that have one, in file order
    lines: list[int]  # their line numbers
    kinds: str  # one of ADDED, UPDATED, UNCHANGED per key
    problems: list[tuple[Any, ...]]  # (line, key, column, value, reason, message)


class Staging:
    """One process's staging file: the typed rows of the blocks it handled, by line."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, f"staged-{os.getpid()}.db")
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        # scratch data: no journal, no syncs; each block is committed for the importer.
        # Bigger pages: a sixth less time per row written (and read back)
        self.conn.execute("PRAGMA page_size = 16384")
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute(f"CREATE TABLE staged (line INTEGER PRIMARY KEY, {STAGED_COLUMNS})")
        self.insert = f"INSERT INTO staged VALUES ({', '.join('?' * (len(RECORD_COLUMNS) + 1))})"

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(self.insert, rows)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@dataclass
class Stager:
    """Parses, classifies, types and stages one block of rows (picklable: import workers)."""

    layout: SourceLayout
    typer: RowTyper
    salt: bytes
    audience: str
    known: bool  # the store holds records of this audience: look the keys up

    def __call__(self, block: Block, staging: Staging, store: Any) -> Staged:
        """Stage the new and changed rows of `block`; `store` (a DB-API connection to the
        store) answers the key look-ups.

        `invalid` lists the channels whose address the source gave but normalisation
        dropped ("email", "sms", "email,sms"): `plan` reports those records as
        `invalid_address` rather than `no_address`.
        """
        typer, row_hash = self.typer, row_hasher(self.salt)
        key_index, values, contact = typer.key_index, typer.values, typer.contact
        email_column, phone_column = typer.email_column, typer.phone_column
        rows = parse_block(block, self.layout)
        keyed: list[tuple[int, list[str], str]] = []
        problems: list[tuple[Any, ...]] = []
        for line, cells in rows:
            key = cells[key_index].strip()
            unusable = typer.key_problem(line, key)
            if unusable is None:
                keyed.append((line, cells, key))
            else:
                problems.append(_problem(line, "", unusable))
        keys = [key for _line, _cells, key in keyed]
        stored = stored_states(store, self.audience, keys) if self.known and keyed else {}
        kinds: list[str] = []
        staged: list[tuple[Any, ...]] = []
        for line, cells, key in keyed:
            source_hash = row_hash(cells)
            state = stored.get(key, _ABSENT)
            if state is _KEEP:
                kinds.append(UNCHANGED)
                continue
            if isinstance(state, int) and state & ~HAD_PROBLEMS == source_hash:
                kinds.append(UNCHANGED)
                if state & HAD_PROBLEMS:  # typed again, only to list its bad values again
                    _attributes, bad = values(line, cells)
                    problems.extend(_problem(line, key, p) for p in bad)
                continue
            attributes, bad = values(line, cells)
            problems.extend(_problem(line, key, p) for p in bad)
            kinds.append(ADDED if state is _ABSENT else UPDATED)
            email, phone, category = contact(attributes)
            invalid = None
            if bad:
                source_hash |= HAD_PROBLEMS
                columns = {p.column for p in bad}
                invalid = (
                    ",".join(
                        channel
                        for channel, column in (("email", email_column), ("sms", phone_column))
                        if column is not None and column in columns
                    )
                    or None
                )
            lower = email.lower() if email else None
            document = orjson.dumps(attributes).decode()
            staged.append(
                (line, key, email, lower, phone, invalid, category, document, source_hash)
            )
        if staged:
            staging.add(staged)
        problems.sort(key=lambda problem: problem[0])
        return Staged(
            staging.path,
            staged[0][0] if staged else 1,
            staged[-1][0] if staged else 0,
            len(rows),
            keys,
            [line for line, _cells, _key in keyed],
            "".join(kinds),
            problems,
        )


def _problem(line: int, key: str, problem: RowProblem) -> tuple[Any, ...]:
    return (line, key, problem.column, problem.value, problem.reason, problem.message)


def stored_states(conn: Any, audience: str, keys: list[str]) -> dict[str, object]:
    """The stored state of each key the store has: the source hash of an active record,
    None for a removed one (any row brings it back), _KEEP for a forgotten one (never
    filled again from the source). `conn` is a DB-API connection (sqlite3 or psycopg)."""
    if isinstance(conn, sqlite3.Connection):  # one parameter: no 10,000-placeholder statement
        rows = conn.execute(
            "SELECT key, source_hash, status FROM record "
            "WHERE audience = ? AND key IN (SELECT value FROM json_each(?))",
            (audience, orjson.dumps(keys).decode()),
        )
    else:
        rows = conn.execute(
            "SELECT key, source_hash, status FROM record WHERE audience = %s AND key = ANY(%s)",
            (audience, keys),
        )
    stored: dict[str, object] = {}
    for key, source_hash, status in rows:
        if status == RecordStatus.ACTIVE.value:
            stored[key] = source_hash
        elif status == RecordStatus.FORGOTTEN.value:
            stored[key] = _KEEP
        else:
            stored[key] = None
    return stored


@dataclass(frozen=True)
class StoreAddress:
    """Where a worker opens its own read connection to the store (picklable)."""

    dialect: str  # sqlite | postgresql
    target: str  # the database file, or a libpq connection string

    def connect(self) -> Any:
        if self.dialect == "sqlite":
            return sqlite3.connect(f"{Path(self.target).as_uri()}?mode=ro", uri=True)
        import psycopg

        return psycopg.connect(self.target, autocommit=True)


_WORKER: tuple[Stager, Staging, Any] | None = None


def init_worker(stager: Stager, folder: str, store: StoreAddress | None) -> None:
    """A worker's staging file, and for a re-import its own read connection to the store
    (it sees the store as it was before the import: the importer writes only at the end)."""
    global _WORKER
    _exit_with_parent()
    _WORKER = (stager, Staging(folder), store.connect() if store else None)
    gc.disable()  # the worker lives only as long as one import; see stage_one


def _exit_with_parent() -> None:
    """End this worker as soon as the importer is gone, however it ended.

    A worker waits for its next block on a queue that nothing closes when the importer
    is killed (kill -9, `timeout`, the OOM killer): it would sleep forever, holding its
    memory. The parent sentinel is a pipe only the importer writes to; it reads as closed
    the moment the importer's process ends.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def stage_block(block: Block) -> Staged:
    """What a worker runs for each block."""
    assert _WORKER is not None
    return stage_one(*_WORKER, block)


def stage_one(stager: Stager, staging: Staging, store: Any, block: Block) -> Staged:
    """Stage one block, then free any reference cycle it left.

    The cyclic garbage collector is paused during an import: millions of short-lived
    tuples and no cycles of our own, and each collection would walk every live object.
    But a cycle a library makes holds the frames it was made in and their callers', up
    to the stager's with every row of the block: phonenumbers made one per number with a
    bad country code (cut at its source now, in `values`), 0.75 KB a row never freed, a
    gigabyte a worker on a million rows. Collecting the youngest generation after each
    block frees any such cycle; it only looks at what the block left alive.
    """
    staged = stager(block, staging, store)
    gc.collect(0)
    return staged
