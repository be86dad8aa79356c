"""SQL functions registered on every SQLite connection to the store (standard library only,
so that the segment fast path can register them without importing SQLAlchemy)."""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regexp(pattern: str | None, value: object) -> bool | None:
    """`value REGEXP pattern` (a segment's `matches:`): Python's `re.search`."""
    if pattern is None or value is None:
        return None
    return _compiled(pattern).search(str(value)) is not None


def register(dbapi: sqlite3.Connection) -> None:
    dbapi.create_function("regexp", 2, regexp, deterministic=True)
