"""`audience import`: load an Audience's CSV into the store, normalised, idempotently.

The main process streams the file in blocks of whole rows (256 KiB of text each) to
worker processes (files of 2 MB and more; inline otherwise), which parse, type and stage
them (see `campaignctl.audience.staging`). The main process only checks keys for
duplicates, in file order, and writes the rejects; once every block is staged, it
moves the staged rows into the store with one INSERT … SELECT per block (an attached
database on SQLite: no row goes through Python again), all in one transaction. A
first load of a big file into a SQLite table holding fewer records rebuilds the
table's secondary indexes once at the end instead of updating them row by row.

Memory stays flat whatever the file's size: the file is streamed, staged rows are on
disk, and so are the keys seen (duplicate detection, then removal: one UPDATE).

Rows: a missing key or a key already seen earlier in the file (the first wins)
rejects the row; a bad value (email, phone, date…) drops that value and keeps the
record. Every problem goes to the rejects CSV and the per-reason summary.
"""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.audience.accepted import accepted_values, keep_accepted
from campaignctl.audience.segments import index_statements, tested_attributes
from campaignctl.audience.source import (
    RowTyper,
    SourceLayout,
    estimate_rows,
    inspect_source,
    iter_blocks,
)
from campaignctl.audience.staging import (
    ADDED,
    RECORD_COLUMNS,
    STAGED_COLUMNS,
    UNCHANGED,
    UPDATED,
    Staged,
    Stager,
    Staging,
    StoreAddress,
    init_worker,
    mapping_salt,
    stage_block,
    stage_one,
)
from campaignctl.enums import RecordStatus
from campaignctl.errors import InputError, UsageError
from campaignctl.safecsv import FormulaSafeWriter
from campaignctl.spec.models import Audience, ColumnType
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store, utcnow
from campaignctl.store.tables import AUDIT_LOG

IMPORT_CACHE_KIB = 16 * 1024  # SQLite page cache during an import (default: 2 MiB)
SORT_CACHE_KIB = 4 * 1024  # ... while building an index: the size of each sorted run
PARALLEL_MIN_BYTES = 2_000_000  # below this a worker process costs more than it saves
MAX_WORKERS = 4  # the move into the store is one process: more workers would wait on it
BULK_MIN_ROWS = 20_000  # below this, rebuilding the record indexes costs more than it saves


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    prune: bool = False  # delete records gone from the source instead of marking them removed
    allow_removals: bool = False  # let an import remove more than half of the active records
    rejects: Path | None = None  # write every problem there (CSV)
    # typing processes; None: one a core (up to 4) for big files. They are started fresh
    # (spawn): a script that imports must run under `if __name__ == "__main__":`
    workers: int | None = None
    progress: Callable[[int], None] | None = None  # called with the rows read so far


REJECTING = (
    "missing_key",
    "key_too_long",
    "duplicate_key",
)  # problems that reject the row; others drop a value
SHOWN_PROBLEMS = 10  # the problems an import keeps to show (every one goes to --rejects)


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
    rejected: int = 0  # rows
    # values an accepted response wrote that the import row would have reverted (kept)
    kept_accepted: list[dict[str, Any]] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)  # reason -> count
    first_problems: list[tuple[Any, ...]] = field(default_factory=list)  # in file order
    dry_run: bool = False
    elapsed: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.pruned)

    @property
    def dropped(self) -> int:
        """Values dropped from records that were kept (a bad email, phone, date…)."""
        return sum(n for reason, n in self.problems.items() if reason not in REJECTING)

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        if not self.changed:
            return (
                f"{self.audience}: no changes ({self.unchanged} records unchanged) "
                f"in {self.elapsed:.1f}s"
            )
        return (
            f"{self.audience}: {verb} {self.rows} rows: {self.added} added, {self.updated} "
            f"updated, {self.unchanged} unchanged, {self.removed} removed"
            + (f", {self.pruned} pruned" if self.pruned else "")
            + f" in {self.elapsed:.1f}s"
            + (f"; {self.kept_summary()}" if self.kept_accepted else "")
        )

    def kept_summary(self) -> str:
        """`kept 2 values changed by accepted responses (HOT-002 capacity, …)`."""
        n = len(self.kept_accepted)
        shown = ", ".join(f"{k['record']} {k['field']}" for k in self.kept_accepted[:5])
        more = f", {n - 5} more" if n > 5 else ""
        return (
            f"{'would keep' if self.dry_run else 'kept'} {n} value{'s' if n != 1 else ''} "
            f"changed by accepted responses ({shown}{more})"
        )

    def problems_summary(self) -> str:
        """`24 values dropped (3 invalid_email, 21 invalid_phone), 0 rows rejected`."""

        def part(total: int, noun: str, reasons: list[str]) -> str:
            detail = ", ".join(f"{self.problems[reason]} {reason}" for reason in reasons)
            return f"{total} {noun}" + (f" ({detail})" if detail else "")

        value_reasons = sorted(r for r in self.problems if r not in REJECTING)
        row_reasons = sorted(r for r in self.problems if r in REJECTING)
        values = part(self.dropped, "value dropped" if self.dropped == 1 else "values dropped",
                      value_reasons)  # fmt: skip
        rows = part(self.rejected, "row rejected" if self.rejected == 1 else "rows rejected",
                    row_reasons)  # fmt: skip
        return f"{values}, {rows}"

    def problem_lines(self) -> list[str]:
        """The first problems: `audiences/contacts.csv:9: email 'jean@': not a valid …`."""
        lines = []
        for line, _key, column, value, _reason, message in self.first_problems:
            shown = f" {value if len(value) <= 60 else value[:57] + '...'!r}" if value else ""
            lines.append(f"{self.source}:{line}: {column}{shown}: {message}")
        return lines

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
            "dropped": self.dropped,
            "kept_accepted": len(self.kept_accepted),
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


@contextmanager
def _bulk_mode(conn: Connection, dialect: str) -> Iterator[None]:
    """What a bulk load needs, undone afterwards whatever happens.

    The cyclic garbage collector is paused: an import allocates millions of short-lived
    tuples and no reference cycles, and each collection would walk every live object.
    SQLite gets a bigger page cache for this connection, so that the indexes an update
    or a small load maintains row by row stay in memory instead of spilling pages to
    the WAL mid-transaction; durability is untouched (same journal, same synchronous
    setting, one transaction).
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
class _Collector:
    """The importer's side of the blocks, in file order: duplicate keys (the first row
    wins), counts, rejects, and the staged line ranges to move into the store."""

    key_column: str
    result: ImportResult
    rejects: _RejectsFile | None
    progress: Callable[[int], None] | None
    seen: _KeysSeen
    moves: list[tuple[str, int, int, list[int]]] = field(default_factory=list)

    def take(self, staged: Staged) -> None:
        result = self.result
        result.rows += staged.rows
        duplicates: list[tuple[Any, ...]] = []
        excluded: list[int] = []  # staged lines of rows that repeat an earlier key
        counts = Counter(staged.kinds)
        firsts = self.seen.first(staged.keys)
        for line, key, kind, first in zip(
            staged.lines, staged.keys, staged.kinds, firsts, strict=True
        ):
            if first:
                continue
            message = "the key appears earlier in the file: the row is left out (the first wins)"
            duplicates.append((line, key, self.key_column, key, "duplicate_key", message))
            counts[kind] -= 1
            if kind != UNCHANGED:
                excluded.append(line)
        result.added += counts[ADDED]
        result.updated += counts[UPDATED]
        result.unchanged += counts[UNCHANGED]
        problems = staged.problems
        if duplicates:
            lines = {problem[0] for problem in duplicates}
            problems = [p for p in problems if p[0] not in lines] + duplicates
            problems.sort(key=lambda problem: problem[0])
        room = SHOWN_PROBLEMS - len(result.first_problems)
        result.first_problems.extend(problems[:room] if room > 0 else [])
        for problem in problems:
            reason = problem[4]
            result.problems[reason] += 1
            if reason in REJECTING:
                result.rejected += 1
            if self.rejects:
                self.rejects.add(*problem)
        if staged.first <= staged.last:
            self.moves.append((staged.file, staged.first, staged.last, excluded))
        if self.progress:
            self.progress(result.rows)


class _KeysSeen:
    """The keys met so far in the file, in a SQLite file of the staging folder (a set of a
    million keys would take about 100 MB): duplicates, then the records gone."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "keys.db")
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")  # scratch data
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")

    def first(self, keys: list[str]) -> list[bool]:
        """Whether each key is met for the first time (neither in an earlier block nor
        earlier in `keys`); remembers them."""
        new = {
            key
            for (key,) in self.conn.execute(
                "INSERT INTO seen SELECT value FROM json_each(?) WHERE true "
                "ON CONFLICT DO NOTHING RETURNING key",
                (orjson.dumps(keys).decode(),),
            )
        }
        firsts = []
        for key in keys:  # the first of the repeats within `keys` is the one inserted
            firsts.append(key in new)
            new.discard(key)
        return firsts

    def close(self) -> None:
        self.conn.close()


class _Mover:
    """Moves staged rows into the record table: one upsert by (audience, key) per block.

    SQLite reads the staging files attached to the import's connection (INSERT …
    SELECT: no row goes through Python); PostgreSQL gets the rows read back here.
    """

    def __init__(self, conn: Connection, dialect: str, audience: str, now: datetime) -> None:
        self.conn, self.dialect, self.audience, self.now = conn, dialect, audience, now
        # the driver's connection outlives `conn`: close() detaches after the transaction
        self.raw = conn.connection.dbapi_connection if dialect == "sqlite" else None
        self.sources: dict[str, str | sqlite3.Connection] = {}  # file: alias or connection
        columns = ", ".join(("audience", "status", "created_at", "updated_at", *RECORD_COLUMNS))
        changes = ", ".join(
            [f"{c} = excluded.{c}" for c in RECORD_COLUMNS[1:]]
            + ["status = 'active'", "removed_at = NULL", "updated_at = excluded.updated_at"]
        )
        upsert = f"ON CONFLICT (audience, key) DO UPDATE SET {changes}"
        if dialect == "sqlite":
            # the import's constants as SQL literals; SQLite stores DATETIME as this text
            # (what SQLAlchemy's type writes and reads)
            audience_sql = "'" + audience.replace("'", "''") + "'"
            stamp = now.strftime("'%Y-%m-%d %H:%M:%S.%f'")
            self.insert = (
                f"INSERT INTO record ({columns}) SELECT {audience_sql}, 'active', {stamp}, "
                f"{stamp}, {STAGED_COLUMNS} FROM {{source}}.staged "
                f"WHERE line BETWEEN ? AND ? {{excluding}} {upsert}"
            )
        else:
            values = ["%s::jsonb" if c == "attributes" else "%s" for c in RECORD_COLUMNS]
            self.insert = (
                f"INSERT INTO record ({columns}) "
                f"VALUES (%s, 'active', %s, %s, {', '.join(values)}) {upsert}"
            )

    def attach(self, file: str) -> str:
        """The alias of a scratch SQLite file attached to the import's connection (SQLite)."""
        alias = self.sources.get(file)
        if alias is None:
            alias = self.sources[file] = f"staged_{len(self.sources)}"
            self.conn.exec_driver_sql(f"ATTACH DATABASE ? AS {alias}", (file,))
        assert isinstance(alias, str)
        return alias

    def move(self, file: str, first: int, last: int, excluded: list[int]) -> None:
        if self.dialect == "sqlite":
            alias = self.attach(file)
            excluding = "AND line NOT IN (SELECT value FROM json_each(?))" if excluded else ""
            parameters: tuple[Any, ...] = (first, last)
            if excluded:
                parameters += (orjson.dumps(excluded).decode(),)
            sql = self.insert.format(source=alias, excluding=excluding)
            self.conn.exec_driver_sql(sql, parameters)
            return
        source = self.sources.get(file)
        if source is None:
            source = self.sources[file] = sqlite3.connect(file)
        assert isinstance(source, sqlite3.Connection)
        skip = set(excluded)
        rows = [
            (self.audience, self.now, self.now, *row[1:])
            for row in source.execute(
                f"SELECT line, {STAGED_COLUMNS} FROM staged WHERE line BETWEEN ? AND ?",
                (first, last),
            )
            if row[0] not in skip
        ]
        if rows:
            self.conn.exec_driver_sql(self.insert, rows)

    def close(self) -> None:
        """Detach the staging files (after the transaction: SQLite refuses before)."""
        for alias in self.sources.values():
            if isinstance(alias, sqlite3.Connection):
                alias.close()
            elif self.raw is not None:
                with suppress(sqlite3.Error):  # a connection closed by an error holds none
                    self.raw.execute(f"DETACH DATABASE {alias}")
        self.sources.clear()


def import_audience(
    store: Store, workspace: Workspace, audience: Audience, options: ImportOptions
) -> ImportResult:
    """Load one audience's source into the store; see the module docstring for the rules."""
    started = time.perf_counter()
    assert workspace.config is not None
    region = workspace.config.phone_region
    layout = inspect_source(workspace.audience_source(audience), audience, audience.source)
    typer = RowTyper(audience, layout, region)
    salt = mapping_salt(layout, audience, region)
    result = ImportResult(audience.name, audience.source, dry_run=options.dry_run)
    workers = options.workers
    if workers is None:
        big = layout.path.stat().st_size >= PARALLEL_MIN_BYTES
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if big else 0
        workers = workers if workers > 1 else 0
    database = store.engine.url.database if store.dialect == "sqlite" else None
    if database is not None and (not database or "memory" in database):
        workers = 0  # an in-memory store: no other process can open it
    # staged rows take about the room the records will: beside a SQLite store, on the disk
    # that must hold them anyway (the system's temporary folder may be a small RAM disk)
    beside = database and not database.startswith("file:")
    table = sa.table("record", sa.column("audience"), sa.column("status"))
    with ExitStack() as cleanup:  # whatever happens: files closed, staging removed
        parent = str(Path(database).parent) if beside else tempfile.gettempdir()
        folder = cleanup.enter_context(staging_folder(parent))
        rejects = _RejectsFile(options.rejects) if options.rejects else None
        if rejects:
            cleanup.callback(rejects.close)
        seen = _KeysSeen(folder)
        cleanup.callback(seen.close)
        try:
            with store.transaction(immediate=True) as conn, _bulk_mode(conn, store.dialect):
                now = utcnow()
                known, active = conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count().filter(table.c.status == RecordStatus.ACTIVE.value),
                    ).where(table.c.audience == audience.name)
                ).one()
                stager = Stager(layout, typer, salt, audience.name, bool(known))
                collector = _Collector(audience.key, result, rejects, options.progress, seen)
                _stage(stager, folder, workers, conn, collector)
                deferred = (
                    _drop_secondary_indexes(conn)
                    if store.dialect == "sqlite" and not known and _bulk_load(conn, layout)
                    else []
                )
                watched = accepted_values(conn, audience.name) if known else {}
                mover = _Mover(conn, store.dialect, audience.name, now)
                cleanup.callback(mover.close)  # after the transaction: detaching needs that
                for move in collector.moves:
                    mover.move(*move)
                _build_indexes(conn, store.dialect, deferred)
                result.kept_accepted = keep_accepted(
                    conn,
                    watched,
                    email_field=audience.first_column(ColumnType.EMAIL),
                    phone_field=audience.first_column(ColumnType.PHONE),
                    now=now,
                )
                if known:
                    keys = _seen_table(conn, mover, seen)
                    _mark_removed(conn, now, audience.name, keys, result, options.prune)
                    if not options.allow_removals:
                        _refuse_mass_removal(result, active)
                _ensure_indexes(conn, store.dialect, workspace, audience, layout)
                _audit(conn, result)
                if options.dry_run:
                    raise _DryRun  # everything was computed for real; nothing is kept
        except _DryRun:
            pass
    result.elapsed = time.perf_counter() - started
    return result


def _stage(
    stager: Stager, folder: str, workers: int, conn: Connection, collector: _Collector
) -> None:
    """Stage every block of the file, in `workers` processes or inline (0)."""
    blocks = iter_blocks(stager.layout)
    if not workers:
        staging = Staging(folder)
        try:
            for block in blocks:
                collector.take(stage_one(stager, staging, conn.connection.dbapi_connection, block))
        finally:
            staging.close()
        return
    # Started fresh, not forked: a forked worker would carry the importer's memory (the
    # CLI, SQLAlchemy, Alembic: 80 MB a worker) for nothing
    pending: deque[Future[Staged]] = deque()
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(stager, folder, _store_address(conn) if stager.known else None),
    ) as executor:
        try:
            for block in blocks:
                pending.append(executor.submit(stage_block, block))
                while len(pending) > 2 * workers:
                    collector.take(pending.popleft().result())
            while pending:
                collector.take(pending.popleft().result())
        except BaseException:
            executor.shutdown(cancel_futures=True)
            raise


def _store_address(conn: Connection) -> StoreAddress:
    """Where workers open their own connection to the store: the database file, or the
    connection's own parameters (a Store may be built from an engine whose connection
    options its URL does not carry)."""
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        files = {name: file for _seq, name, file in raw.execute("PRAGMA database_list")}
        return StoreAddress("sqlite", files["main"])
    from psycopg.conninfo import make_conninfo

    return StoreAddress("postgresql", make_conninfo(raw.info.dsn, password=raw.info.password))


STAGING_PREFIX = "campaignctl-import-"
OWNER = "owner"  # the lock file of a staging folder


@contextmanager
def staging_folder(parent: str) -> Iterator[str]:
    """A new folder in `parent` for one import's scratch files, removed when it ends.

    The folders of imports killed before their end (they hold contact data) are removed
    first, and only those: each import keeps its folder's lock file locked while it runs
    (the system drops the lock when the process ends, however it ends). The folder gets
    its final name once locked, so no other import ever sees it unlocked.
    """
    _remove_dead_staging(parent)
    building = tempfile.mkdtemp(prefix=f".{STAGING_PREFIX}", dir=parent)
    folder = os.path.join(parent, os.path.basename(building)[1:])
    with open(os.path.join(building, OWNER), "w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        owner.write(f"{os.getpid()}\n")  # for a person looking; the lock is what counts
        owner.flush()
        os.rename(building, folder)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_dead_staging(parent: str) -> None:
    """Remove the staging folders in `parent` whose import is no longer running."""
    folders: list[str] = []
    with suppress(OSError), os.scandir(parent) as entries:
        folders = [e.path for e in entries if e.name.startswith(STAGING_PREFIX) and e.is_dir()]
    for folder in folders:
        try:
            with open(os.path.join(folder, OWNER)) as owner:
                fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a live import
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:
            shutil.rmtree(folder, ignore_errors=True)  # half removed already
        except OSError:
            continue  # a live import's, or not ours to touch


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
    The unique (audience, key) index stays: the upsert goes through it.
    """
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = 'record' AND sql IS NOT NULL"
    ).all()
    for name, _sql in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _name, sql in indexes]


def _build_indexes(conn: Connection, dialect: str, statements: list[str]) -> None:
    """Run CREATE INDEX statements; on SQLite, with the sorter's helper threads.

    Each build sorts a million keys or so. With helper threads and a small page cache
    the sorter hands each few megabytes it collects to a thread to sort while it goes
    on reading the table (about a quarter faster on two cores than one big sort).
    """
    if not statements:
        return
    if dialect != "sqlite":
        for statement in statements:
            conn.exec_driver_sql(statement)
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA threads = {min(os.cpu_count() or 1, MAX_WORKERS)}")
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SORT_CACHE_KIB}")
    try:
        for statement in statements:
            conn.exec_driver_sql(statement)
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")
        conn.exec_driver_sql("PRAGMA threads = 0")


def _seen_table(conn: Connection, mover: _Mover, seen: _KeysSeen) -> str:
    """A table the store's connection reads, of the keys the file holds: the key file
    attached on SQLite, copied into a temporary table on PostgreSQL."""
    if conn.dialect.name == "sqlite":
        return f"{mover.attach(seen.path)}.seen"
    conn.exec_driver_sql("CREATE TEMPORARY TABLE import_seen (key TEXT PRIMARY KEY) ON COMMIT DROP")
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy("COPY import_seen (key) FROM STDIN") as copy:
        for row in seen.conn.execute("SELECT key FROM seen"):
            copy.write_row(row)
    return "import_seen"


def _mark_removed(
    conn: Connection, now: datetime, audience: str, seen: str, result: ImportResult, prune: bool
) -> None:
    """Records of the audience no longer in the source (`seen` is the table of the keys it
    holds): marked removed, or deleted (--prune)."""
    removed = conn.execute(
        sa.text(
            "UPDATE record SET status = 'removed', removed_at = :now, updated_at = :now "
            "WHERE audience = :audience AND status = 'active' "
            f"AND NOT EXISTS (SELECT 1 FROM {seen} AS seen WHERE seen.key = record.key)"
        ),
        {"now": now, "audience": audience},
    )
    result.removed = removed.rowcount or 0
    if prune:
        # records frozen in a lock stay (marked removed): a lock sends exactly what it froze
        pruned = conn.execute(
            sa.text(
                "DELETE FROM record WHERE audience = :audience AND status = 'removed' "
                "AND NOT EXISTS (SELECT 1 FROM recipient WHERE recipient.record_id = record.id)"
            ),
            {"audience": audience},
        )
        result.pruned = pruned.rowcount or 0


def _refuse_mass_removal(result: ImportResult, active: int) -> None:
    """A truncated or empty export must not wipe the audience: removing more than half of
    its active records takes --allow-removals (raised inside the transaction: nothing kept)."""
    if result.removed * 2 > active:
        raise InputError(
            f"{result.source}: this import would remove {result.removed} of the {active} "
            f"active records of audience {result.audience!r} (their keys are not in the "
            "file); nothing was changed",
            hint="check that the file is complete (a truncated or empty export?); if those "
            "records are really gone, run the import again with --allow-removals",
        )


def _ensure_indexes(
    conn: Connection, dialect: str, workspace: Workspace, audience: Audience, layout: SourceLayout
) -> None:
    """Expression indexes on the attributes this audience's segments test (built once, after
    the bulk insert, then maintained by the database): segment counts stay index lookups."""
    attributes: set[str] = set()
    for segment in workspace.segments.values():
        if segment.audience == audience.name:
            attributes |= tested_attributes(segment.where, workspace.segments)
    _build_indexes(conn, dialect, index_statements(dialect, layout.columns, attributes))
    # fresh statistics, so that the planner picks the selective index for segment counts
    if dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
    conn.exec_driver_sql("ANALYZE record")


def _audit(conn: Connection, result: ImportResult) -> None:
    conn.execute(
        sa.insert(AUDIT_LOG),
        {
            "at": utcnow(),
            "actor": _actor(),
            "action": "audience.import",
            "object": result.audience,
            "data": {**result.as_json(), "kept_accepted_values": result.kept_accepted},
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
        self.writer = FormulaSafeWriter(self.handle)  # opened in spreadsheets: no formulas
        self.writer.writerow(self.HEADER)

    def add(self, row: int, key: str, column: str, value: str, reason: str, message: str) -> None:
        self.writer.writerow((row, key, column, value, reason, message))

    def close(self) -> None:
        self.handle.close()
