"""`segment show --count` in a fraction of the time when no definition changed.

Counting a segment is one SQL query, yet most of a cold count went to importing what
loads the definitions and compiles the query (pydantic, SQLAlchemy, the store's tables).
So the full path, after counting on a SQLite store, remembers the query it ran in
`.campaignctl/segment-sql.json`, keyed by everything the SQL depends on: the segment,
the definitions fingerprint (every definition and template file, campaignctl's version
and the compiler's source), the date that relative dates resolved against, the
`CAMPAIGNCTL_STORE` override and the store's schema revision. A later count with the same
key runs that SQL with the standard library's sqlite3, against the records as they are
now; any edit, a new day, another store or a migrated one takes the full path again.

This module imports only the standard library (and campaignctl's stdlib-only modules).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaignctl import clock
from campaignctl.spec.files import STATE_DIR, definitions_fingerprint, write_cache
from campaignctl.store import functions

if TYPE_CHECKING:
    from campaignctl.spec.workspace import Workspace
    from campaignctl.store.store import Store

CACHE_FILE = "segment-sql.json"
STORE_VARIABLE = "CAMPAIGNCTL_STORE"
_COMPILER = Path(__file__).with_name("segments.py")


@dataclass(frozen=True)
class SegmentView:
    """What `segment show` reports: the count and/or sample, and how long the queries took."""

    name: str
    audience: str
    count: int | None
    sample: list[dict[str, Any]]
    today: date
    elapsed: float
    sql: str

    def count_line(self) -> str:
        return f"{self.name}: {self.count} records (audience {self.audience})"

    def timing_line(self) -> str:
        return f"evaluated for {self.today.isoformat()} in {self.elapsed:.3f}s"

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "segment": self.name,
            "audience": self.audience,
            "today": self.today.isoformat(),
            "count": self.count,
            "sample": self.sample,
            "elapsed_seconds": round(self.elapsed, 4),
        }


def _fingerprint(root: Path) -> str:
    return definitions_fingerprint(root, Path(__file__), _COMPILER)


def cached_count(root: Path, name: str) -> SegmentView | None:
    """The segment's count through the remembered SQL, or None when the full path must run."""
    try:
        saved = json.loads((root / STATE_DIR / CACHE_FILE).read_text(encoding="utf-8"))
        entry = saved["segments"][name]
        if saved["fingerprint"] != _fingerprint(root) or saved["store_override"] != os.environ.get(
            STORE_VARIABLE
        ):
            return None
        today = clock.today(saved["timezone"])
        if entry["today"] != today.isoformat() or not Path(saved["database"]).is_file():
            return None
        with closing(sqlite3.connect(saved["database"], timeout=30)) as conn:
            functions.register(conn)
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            if revision != [(saved["revision"],)]:
                return None
            started = time.perf_counter()
            count = int(conn.execute(entry["sql"]).fetchone()[0])
            elapsed = time.perf_counter() - started
    except (OSError, ValueError, KeyError, TypeError, sqlite3.Error):
        return None  # no cache, an unreadable one, or a store it cannot read: full path
    return SegmentView(name, entry["audience"], count, [], today, elapsed, entry["sql"])


def remember_count(store: Store, workspace: Workspace, view: SegmentView) -> None:
    """Keep the count query the full path just ran, for `cached_count` (SQLite only)."""
    if store.dialect != "sqlite" or not store.engine.url.database or workspace.config is None:
        return
    state = workspace.state_dir
    if not state.is_dir():
        return
    with store.read() as conn:
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    document = {
        "fingerprint": _fingerprint(workspace.root),
        "store_override": os.environ.get(STORE_VARIABLE),
        "database": str(Path(store.engine.url.database).resolve()),
        "revision": revision,
        "timezone": workspace.config.timezone,
        "segments": {},
    }
    cache = state / CACHE_FILE
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if {k: v for k, v in saved.items() if k != "segments"} == {
            k: v for k, v in document.items() if k != "segments"
        }:
            document["segments"] = dict(saved["segments"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # nothing kept yet, or for other definitions: start afresh
    document["segments"][view.name] = {
        "audience": view.audience,
        "today": view.today.isoformat(),
        "sql": view.sql,
    }
    write_cache(cache, document)
