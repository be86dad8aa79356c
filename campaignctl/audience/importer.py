"""`audience import`: load an Audience's CSV into the store, normalised, idempotently.

Streaming in chunks, the main process reads the CSV, recognises unchanged rows by
a hash of their raw cells (so a re-import of the same file normalises nothing),
and writes; two worker processes (files of 2 MB and more) type and normalise the new
and changed rows, the expensive part, into ready-made statement parameters. A first
load of a big file into a SQLite table holding fewer records rebuilds the table's
secondary indexes once at the end instead of updating them row by row. Never holds
the file in memory: what is kept is the set of keys seen (duplicate detection and
removal), a few dozen bytes a record.

Rows: a missing key or a key already seen earlier in the file (the first wins)
rejects the row; a bad value (email, phone, date…) drops that value and keeps the
record. Every problem goes to the rejects CSV and the per-reason summary.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.audience.source import (
    RowTyper,
    SourceLayout,
    estimate_rows,
    inspect_source,
    iter_rows,
)
from campaignctl.enums import RecordStatus
from campaignctl.errors import UsageError
from campaignctl.spec.models import Audience
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store, utcnow

CHUNK_ROWS = 5_000
IMPORT_CACHE_KIB = 16 * 1024  # SQLite page cache during an import (default: 2 MiB)
PARALLEL_MIN_BYTES = 2_000_000  # below this a worker process costs more than it saves
BULK_MIN_ROWS = 20_000  # below this, rebuilding the record indexes costs more than it saves
# what differs from record to record; the audience, status and timestamps are the import's
RECORD_COLUMNS = (
    "key", "email", "email_normalized", "phone", "invalid_addresses", "category", "attributes",
    "source_hash",
)  # fmt: skip


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    prune: bool = False  # delete records gone from the source instead of marking them removed
    rejects: Path | None = None  # write every problem there (CSV)
    workers: int | None = None  # normalising processes; None: 2 for big files, 0 otherwise
    progress: Callable[[int], None] | None = None  # called with the rows read so far


@dataclass
class ImportResult:
    audience: str
    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    pruned: int = 0
    rejected: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False
    elapsed: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.pruned)

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        if not self.changed:
            return (
                f"{self.audience}: no changes ({self.unchanged} records unchanged, "
                f"{self.rejected} rejected rows) in {self.elapsed:.1f}s"
            )
        return (
            f"{self.audience}: {verb} {self.rows} rows: {self.added} added, {self.updated} "
            f"updated, {self.unchanged} unchanged, {self.removed} removed"
            + (f", {self.pruned} pruned" if self.pruned else "")
            + f", {self.rejected} rejected in {self.elapsed:.1f}s"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "audience": self.audience,
            "source": self.source,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "pruned": self.pruned,
            "rejected": self.rejected,
            "problems": dict(sorted(self.problems.items())),
            "elapsed_seconds": round(self.elapsed, 3),
        }


def import_audiences(
    store: Store, workspace: Workspace, names: list[str] | None, options: ImportOptions
) -> list[ImportResult]:
    """Import the named audiences (all of them when `names` is empty), one transaction each."""
    audiences = workspace.audiences
    selected = names or sorted(audiences)
    for name in selected:
        if name not in audiences:
            raise UsageError(
                f"audience {name!r} does not exist",
                hint=f"audiences: {', '.join(sorted(audiences)) or 'none defined'}",
            )
    return [import_audience(store, workspace, audiences[name], options) for name in selected]


def _row_hash(cells: list[str], salt: bytes) -> int:
    digest = hashlib.blake2b("\x1f".join(cells).encode(), digest_size=8, key=salt).digest()
    return int.from_bytes(digest, "big", signed=True)


def _mapping_salt(audience: Audience, region: str) -> bytes:
    """Changing the mapping (types, regions, headers) makes every row 'changed' once."""
    text = audience.model_dump_json(include={"key", "columns"}) + region
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


# ----------------------------------------------------------------------------- typing (worker)

Typed = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


@dataclass
class _Typist:
    """Turns raw rows into the parameters of the record INSERTs and UPDATEs, and problems.

    Runs in the import's worker processes (it is picklable), so that the main process,
    which reads the file and writes to the store, does as little per row as possible.
    """

    typer: RowTyper
    salt: bytes

    def __call__(self, rows: list[tuple[int, list[str], int | None]], existing: set[str]) -> Typed:
        """(inserts, updates, problems) of the new and changed rows of one chunk.

        A row's hash is computed here when the main process did not need it (a first
        import). `invalid` lists the channels whose address the source gave but
        normalisation dropped ("email", "sms", "email,sms"): `plan` reports those records
        as `invalid_address` rather than `no_address`.
        """
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        problems: list[tuple[Any, ...]] = []
        typer, salt = self.typer, self.salt
        key_index, values = typer.key_index, typer.values
        email_column, phone_column, category_column = (
            typer.email_column, typer.phone_column, typer.category_column,
        )  # fmt: skip
        for row, cells, source_hash in rows:
            key = cells[key_index].strip()  # never empty: _classify rejected those rows
            attributes, bad = values(row, cells)
            email = attributes[email_column] if email_column else None
            phone = attributes[phone_column] if phone_column else None
            category = attributes[category_column] if category_column else None
            if category is not None:
                category = str(category)
            invalid = None
            if bad:
                columns = {p.column for p in bad}
                invalid = (
                    ",".join(
                        channel
                        for channel, column in (("email", email_column), ("sms", phone_column))
                        if column is not None and column in columns
                    )
                    or None
                )
                problems.extend((row, key, p.column, p.value, p.reason, p.message) for p in bad)
            lower = email.lower() if email else None
            if lower == email:
                lower = email  # one string to pickle back instead of two equal ones
            document = orjson.dumps(attributes).decode()
            if source_hash is None:
                source_hash = _row_hash(cells, salt)
            if key in existing:
                updates.append((email, lower, phone, invalid, category, document, source_hash, key))
            else:
                inserts.append((key, email, lower, phone, invalid, category, document, source_hash))
        return inserts, updates, problems


_TYPIST: _Typist | None = None


def _init_worker(typist: _Typist) -> None:
    global _TYPIST
    _TYPIST = typist
    gc.disable()  # see _bulk_mode: the worker lives only as long as one import


def _type_chunk(rows: list[tuple[int, list[str], int | None]], existing: set[str]) -> Typed:
    assert _TYPIST is not None
    return _TYPIST(rows, existing)


@contextmanager
def _bulk_mode(conn: Connection, dialect: str) -> Iterator[None]:
    """What a bulk load needs, undone afterwards whatever happens.

    The cyclic garbage collector is paused: an import allocates millions of short-lived
    tuples and no reference cycles, and each collection would walk every live chunk
    (a quarter of the CPU time). SQLite gets a bigger page cache for this connection, so
    that the indexes an update or a small load maintains row by row stay in memory
    instead of spilling pages to the WAL mid-transaction; durability is untouched (same
    journal, same synchronous setting, one transaction).
    """
    enabled = gc.isenabled()
    gc.disable()
    if dialect == "sqlite":
        previous = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        if dialect == "sqlite":
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")
        if enabled:
            gc.enable()


# ----------------------------------------------------------------------------- import


@dataclass
class _Writer:
    """Runs the workers' INSERT and UPDATE parameters (RECORD_COLUMNS) against the store."""

    conn: Connection
    dialect: str
    audience: str
    now: datetime

    def __post_init__(self) -> None:
        columns = ", ".join(("audience", "status", "created_at", "updated_at", *RECORD_COLUMNS))
        if self.dialect == "sqlite":
            # the import's constants as SQL literals: 8 parameters a row instead of 12
            audience = "'" + self.audience.replace("'", "''") + "'"
            # SQLite stores DATETIME as this text (what SQLAlchemy's type writes and reads)
            stamp = self.now.strftime("'%Y-%m-%d %H:%M:%S.%f'")
            values = ["?"] * len(RECORD_COLUMNS)
        else:
            audience = stamp = "%s"
            values = ["%s::jsonb" if c == "attributes" else "%s" for c in RECORD_COLUMNS]
        pairs = zip(RECORD_COLUMNS[1:], values[1:], strict=True)
        changes = ", ".join(f"{column} = {value}" for column, value in pairs)
        self.insert_sql = (
            f"INSERT INTO record ({columns}) "
            f"VALUES ({audience}, 'active', {stamp}, {stamp}, {', '.join(values)})"
        )
        self.update_sql = (
            f"UPDATE record SET {changes}, status = 'active', removed_at = NULL, "
            f"updated_at = {stamp} WHERE audience = {audience} AND key = {values[0]}"
        )

    def write(self, inserts: list[tuple[Any, ...]], updates: list[tuple[Any, ...]]) -> None:
        if self.dialect == "sqlite":
            # plain tuples straight to the driver, inside SQLAlchemy's transaction (same
            # connection): no per-row parameter processing
            cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                if inserts:
                    cursor.executemany(self.insert_sql, inserts)
                if updates:
                    cursor.executemany(self.update_sql, updates)
            finally:
                cursor.close()
        else:
            audience, now = self.audience, self.now
            if inserts:
                rows = [(audience, now, now, *row) for row in inserts]
                self.conn.exec_driver_sql(self.insert_sql, rows)
            if updates:
                rows = [(*row[:-1], now, audience, row[-1]) for row in updates]
                self.conn.exec_driver_sql(self.update_sql, rows)


def import_audience(
    store: Store, workspace: Workspace, audience: Audience, options: ImportOptions
) -> ImportResult:
    """Load one audience's source into the store; see the module docstring for the rules."""
    started = time.perf_counter()
    assert workspace.config is not None
    region = workspace.config.phone_region
    layout = inspect_source(workspace.root / audience.source, audience, audience.source)
    typer = RowTyper(audience, layout, region)
    salt = _mapping_salt(audience, region)
    result = ImportResult(audience.name, audience.source, dry_run=options.dry_run)
    workers = options.workers
    if workers is None:
        big = layout.path.stat().st_size >= PARALLEL_MIN_BYTES
        workers = 2 if big and (os.cpu_count() or 1) > 1 else 0
    rejects = _RejectsFile(options.rejects) if options.rejects else None
    table = sa.table(
        "record", sa.column("key"), sa.column("source_hash"), sa.column("status"),
        sa.column("audience"), sa.column("id"),
    )  # fmt: skip
    try:
        with store.transaction() as conn, _bulk_mode(conn, store.dialect):
            now = utcnow()
            writer = _Writer(conn, store.dialect, audience.name, now)
            typist = _Typist(typer, salt)
            known = conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.audience == audience.name)
            ).scalar_one()
            deferred = (
                _drop_secondary_indexes(conn)
                if store.dialect == "sqlite" and not known and _bulk_load(conn, layout)
                else []
            )
            seen: set[str] = set()
            executor = (
                ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(typist,))
                if workers
                else None
            )
            pending: deque[Future[Typed] | Typed] = deque()

            def drain(limit: int) -> None:
                while len(pending) > limit:
                    item = pending.popleft()
                    inserts, updates, problems = item.result() if isinstance(item, Future) else item
                    writer.write(inserts, updates)
                    result.added += len(inserts)
                    result.updated += len(updates)
                    for problem in problems:
                        result.problems[problem[4]] += 1
                        if rejects:
                            rejects.add(*problem)

            try:
                for chunk in _chunks(iter_rows(layout), CHUNK_ROWS):
                    result.rows += len(chunk)
                    todo, existing = _classify(
                        conn, audience.name, typer, chunk, salt, seen, known, result, rejects
                    )
                    if todo:
                        pending.append(
                            executor.submit(_type_chunk, todo, existing)
                            if executor
                            else typist(todo, existing)
                        )
                    drain(2 * workers)
                    if options.progress:
                        options.progress(result.rows)
                drain(0)
            finally:
                if executor:
                    executor.shutdown(cancel_futures=True)
            for statement in deferred:
                conn.exec_driver_sql(statement)
            if known:
                _mark_removed(conn, now, table, audience.name, seen, result, options.prune)
            _ensure_indexes(conn, store.dialect, workspace, audience)
            _audit(conn, result)
            if options.dry_run:
                raise _DryRun  # everything was computed for real; nothing is kept
    except _DryRun:
        pass
    finally:
        if rejects:
            rejects.close()
    result.elapsed = time.perf_counter() - started
    return result


class _DryRun(Exception):
    """Rolls the import's transaction back once its figures are known."""


def _bulk_load(conn: Connection, layout: SourceLayout) -> bool:
    """Whether the file brings more records than the table holds (of every audience)."""
    upper = conn.exec_driver_sql("SELECT max(id) FROM record").scalar() or 0  # >= row count
    return estimate_rows(layout) > max(upper, BULK_MIN_ROWS)


def _drop_secondary_indexes(conn: Connection) -> list[str]:
    """Drop the record table's secondary indexes; return the statements that rebuild them.

    Loading a big file into a (nearly) empty table, building each index once at the end
    (one sort) is about three times faster than updating four or five B-trees row by
    row: emails and phones arrive in random order and their index pages keep falling out
    of the page cache. It all happens inside the import's transaction: readers see the
    old table until the commit, a failure or a dry run rolls the drop back with the rest.
    The unique (audience, key) index stays: the import looks keys up through it.
    """
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = 'record' AND sql IS NOT NULL"
    ).all()
    for name, _sql in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _name, sql in indexes]


def _chunks(
    rows: Iterator[tuple[int, list[str]]], size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _classify(
    conn: Connection,
    audience: str,
    typer: RowTyper,
    chunk: list[tuple[int, list[str]]],
    salt: bytes,
    seen: set[str],
    known: int,
    result: ImportResult,
    rejects: _RejectsFile | None,
) -> tuple[list[tuple[int, list[str], int | None]], set[str]]:
    """The rows to (re)type: new or changed ones; counts unchanged and rejected ones.

    Rows are hashed here only when the store has records to compare them with; on a
    first import the workers hash them.
    """
    candidates: list[tuple[int, list[str], int | None]] = []
    keys: list[str] = []
    key_index = typer.key_index
    for row, cells in chunk:
        key = cells[key_index].strip()
        if not key or key in seen:
            reason = "duplicate_key" if key else "missing_key"
            message = (
                f"key {key!r} already appears earlier in the file (the first row wins)"
                if key
                else f"the key column {typer.audience.key!r} is empty"
            )
            result.rejected += 1
            result.problems[reason] += 1
            if rejects:
                rejects.add(row, key, typer.audience.key, key, reason, message)
            continue
        seen.add(key)
        candidates.append((row, cells, _row_hash(cells, salt) if known else None))
        keys.append(key)
    if not known or not candidates:
        return candidates, set()
    stored: dict[str, int | None] = {}
    existing: set[str] = set()
    if conn.dialect.name == "sqlite":  # one parameter: no 5,000-placeholder statement to build
        lookup = (
            "SELECT key, source_hash, status FROM record "
            "WHERE audience = ? AND key IN (SELECT value FROM json_each(?))",
            (audience, orjson.dumps(keys).decode()),
        )
    else:
        lookup = (
            "SELECT key, source_hash, status FROM record WHERE audience = %s AND key = ANY(%s)",
            (audience, keys),
        )
    for key, source_hash, status in conn.exec_driver_sql(*lookup):
        existing.add(key)
        if status == RecordStatus.ACTIVE.value:
            stored[key] = source_hash
        elif status == RecordStatus.FORGOTTEN.value:
            stored[key] = None  # a forgotten record is never filled again from the source
    todo = []
    for item, key in zip(candidates, keys, strict=True):
        if key in stored and stored[key] in (item[2], None):
            result.unchanged += 1
        else:
            todo.append(item)
    return todo, existing


def _mark_removed(
    conn: Connection,
    now: datetime,
    table: sa.TableClause,
    audience: str,
    seen: set[str],
    result: ImportResult,
    prune: bool,
) -> None:
    """Records of the audience no longer in the source: marked removed, or deleted (--prune)."""
    gone = [
        record_id
        for record_id, key in conn.execute(
            sa.select(table.c.id, table.c.key).where(
                table.c.audience == audience, table.c.status == RecordStatus.ACTIVE.value
            )
        )
        if key not in seen
    ]
    for start in range(0, len(gone), 10_000):
        ids = gone[start : start + 10_000]
        conn.execute(
            sa.text(
                "UPDATE record SET status = 'removed', removed_at = :now, updated_at = :now "
                "WHERE id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"now": now, "ids": ids},
        )
    result.removed = len(gone)
    if prune:
        # records frozen in a lock stay (marked removed): a lock sends exactly what it froze
        pruned = conn.execute(
            sa.text(
                "DELETE FROM record WHERE audience = :audience AND status = 'removed' "
                "AND id NOT IN (SELECT record_id FROM recipient)"
            ),
            {"audience": audience},
        )
        result.pruned = pruned.rowcount or 0


def _ensure_indexes(
    conn: Connection, dialect: str, workspace: Workspace, audience: Audience
) -> None:
    """Expression indexes on the attributes this audience's segments test (built once, after
    the bulk insert, then maintained by the database): segment counts stay index lookups."""
    from campaignctl.audience.segments import index_statements, tested_attributes

    attributes: set[str] = set()
    for segment in workspace.segments.values():
        if segment.audience == audience.name:
            attributes |= tested_attributes(segment.where, workspace.segments)
    for statement in index_statements(dialect, audience, attributes):
        conn.exec_driver_sql(statement)
    # fresh statistics, so that the planner picks the selective index for segment counts
    if dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
    conn.exec_driver_sql("ANALYZE record")


def _audit(conn: Connection, result: ImportResult) -> None:
    from campaignctl.store.tables import AuditLog

    conn.execute(
        sa.insert(AuditLog.__table__),  # type: ignore[arg-type]
        {
            "at": utcnow(),
            "actor": _actor(),
            "action": "audience.import",
            "object": result.audience,
            "data": result.as_json(),
        },
    )


def _actor() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class _RejectsFile:
    """The rejects CSV: one line per problem, in file order of discovery."""

    HEADER = ("row", "key", "column", "value", "reason", "message")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(self.HEADER)

    def add(self, row: int, key: str, column: str, value: str, reason: str, message: str) -> None:
        self.writer.writerow((row, key, column, value, reason, message))

    def close(self) -> None:
        self.handle.close()
