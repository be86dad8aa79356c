"""`Store`: the connection to the campaign database, its transactions and its schema version.

Like sqlite-utils' `Database(conn)`, a Store is built from a URL or an engine and
passed to whoever needs it; there is no module-level engine. SQLite gets WAL,
foreign keys, a busy timeout and a REGEXP function on every connection;
PostgreSQL is used through psycopg 3 (the `postgresql` extra). The schema is upgraded by
the Alembic migrations shipped in `store/migrations/` the first time a Store is used.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from campaignctl.errors import NoSpaceLeft, ServiceUnavailable, StateError, disk_full
from campaignctl.store.functions import register as register_functions

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000


def utcnow() -> datetime:
    """Now, timezone-aware UTC (stored as such; SQLite keeps the ISO text)."""
    return datetime.now(UTC)


def resolve_url(url: str, root: Path | None) -> str:
    """Make a relative `sqlite:///` path relative to the workspace root, and create its folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    database = parsed.database
    if database == ":memory:" or database.startswith("file:"):
        return url
    path = Path(database)
    if not path.is_absolute() and root is not None:
        path = root / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


def display_url(url: str | sa.URL) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(str(url) if not isinstance(url, str) else url).render_as_string(
        hide_password=True
    )


def create_engine(url: str) -> Engine:
    """An engine configured for the store (SQLite pragmas and transactions, PostgreSQL driver)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            # the driver's own implicit transactions are off: SQLAlchemy's BEGIN is the one
            connect_args={"isolation_level": None, "check_same_thread": False},
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi: sqlite3.Connection, _record: object) -> None:
            dbapi.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            dbapi.execute("PRAGMA journal_mode = WAL")
            dbapi.execute("PRAGMA synchronous = NORMAL")
            dbapi.execute("PRAGMA foreign_keys = ON")
            register_functions(dbapi)

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.info.pop("begin_mode", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:  # the driver is an extra: SQLite users do not install it
        raise ServiceUnavailable(
            f"the store {display_url(parsed)} needs the PostgreSQL driver, which is not "
            f"installed ({exc})",
            hint="install it with `pip install 'campaignctl[postgresql]'`",
        ) from None


@dataclass(frozen=True)
class SchemaStatus:
    url: str
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


class Store:
    """The campaign database. `Store(url_or_engine, root=workspace_root)`."""

    def __init__(self, url_or_engine: str | Engine, *, root: Path | None = None) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine = url_or_engine
        else:
            self.engine = create_engine(resolve_url(url_or_engine, root))
        self.url = display_url(self.engine.url)
        self._ready = False

    @property
    def location(self) -> str:
        """Where the data lives, for messages: the SQLite file, or the server's URL."""
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            return database
        return f"the database server ({self.url})"

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ connections
    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ServiceUnavailable(
                f"cannot reach the store at {self.url}: {reason}",
                hint="check `store:` in campaignctl.yaml (or CAMPAIGNCTL_STORE) "
                "and that the database server is running",
            ) from None
        with conn:
            try:
                yield conn
            except sa.exc.DBAPIError as exc:
                if disk_full(exc):
                    raise NoSpaceLeft(self.location) from exc
                raise

    @contextmanager
    def transaction(
        self, *, immediate: bool = False, bump: bool = True, wait: bool = True
    ) -> Iterator[Connection]:
        """A write transaction; commits on success, bumps the store serial, rolls back on error.

        `immediate=True` takes SQLite's write lock at BEGIN (claims, leases), so two
        writers never both read then fail to upgrade their lock. `bump=False` is for
        writes that change nothing a plan depends on (the report's own summary).
        `wait=False` (SQLite, with `immediate`): fail at once (OperationalError, see
        `sqlite_busy`) when another connection holds the write lock, instead of waiting
        up to SQLITE_BUSY_TIMEOUT_MS for it (serve's event loop must not sleep there).
        """
        self.ensure_schema()
        with self._connect() as conn:
            raw = None
            if immediate and self.dialect == "sqlite":
                conn.info["begin_mode"] = "IMMEDIATE"
                if not wait:
                    raw = conn.connection.driver_connection
                    raw.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
            try:
                with conn.begin():
                    yield conn
                    if bump:
                        bump_serial(conn)
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")  # type: ignore[union-attr]

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (no serial bump), inside one transaction for a stable view."""
        self.ensure_schema()
        with self._connect() as conn, conn.begin():
            yield conn

    def serial(self) -> int:
        """The store state serial: it changes with every write transaction."""
        with self.read() as conn:
            return int(
                conn.execute(sa.text("SELECT serial FROM store_state WHERE id = 1")).scalar_one()
            )

    # ------------------------------------------------------------------ schema
    def ensure_schema(self) -> None:
        """Upgrade the schema to the shipped head the first time this Store is used."""
        if self._ready:
            return
        if self._at_shipped_head():
            self._ready = True
            return
        status = self.schema_status()
        if not status.up_to_date:
            self.upgrade()
        self._ready = True

    def _at_shipped_head(self) -> bool:
        """The common case, answered without loading Alembic (a quarter of a second of
        start-up): the store's revision is the single head of the shipped migrations."""
        head = _shipped_head()
        if head is None:
            return False
        try:
            with self._connect() as conn:
                rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except sa.exc.DBAPIError:
            return False  # no version table yet: a new store, Alembic creates it
        return [tuple(r) for r in rows] == [(head,)]

    def schema_status(self) -> SchemaStatus:
        from alembic.runtime.migration import MigrationContext

        head = _script().get_current_head()
        with self._connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and not _known_revision(current):
            raise StateError(
                f"the store at {self.url} is at schema revision {current!r}, "
                "newer than this campaignctl knows",
                hint="upgrade campaignctl (pip install -U campaignctl)",
            )
        return SchemaStatus(self.url, current, head or "")

    def upgrade(self, revision: str = "head") -> SchemaStatus:
        """Run the shipped migrations up to `revision` (no alembic.ini needed)."""
        from alembic import command

        with self._connect() as conn, conn.begin():
            if self.dialect == "postgresql":
                # two processes upgrading at once: the second waits, then finds it done
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7411001)"))
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        self._ready = True
        return self.schema_status()


def sqlite_busy(exc: BaseException) -> bool:
    """Whether SQLite refused for a lock another connection holds (SQLITE_BUSY)."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and (
        getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
        or "database is locked" in str(orig)
    )


def bump_serial(conn: Connection) -> None:
    conn.execute(
        sa.text("UPDATE store_state SET serial = serial + 1, updated_at = :now WHERE id = 1"),
        {"now": utcnow()},
    )


def _config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@lru_cache(maxsize=1)
def _shipped_head() -> str | None:
    """The head revision read from the migration files' `revision =` / `down_revision =`
    lines; None (ask Alembic) when anything is unusual (branches, merges, computed values)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        revision, down = found.get("revision", ""), found.get("down_revision", "")
        if not re.fullmatch(r"[\"'][\w-]+[\"']", revision):
            return None
        if down == "None":
            parent = None
        elif re.fullmatch(r"[\"'][\w-]+[\"']", down):
            parent = down[1:-1]
        else:
            return None
        revisions[revision[1:-1]] = parent
    heads = set(revisions) - {p for p in revisions.values() if p is not None}
    return heads.pop() if len(heads) == 1 else None


@lru_cache(maxsize=1)
def _script():  # type: ignore[no-untyped-def]
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _known_revision(revision: str) -> bool:
    """Whether the shipped migrations know `revision` (alembic raises for an unknown one)."""
    from alembic.util import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False
