"""SQL functions registered on every SQLite connection to the store (no SQLAlchemy, so that
the segment fast path can register them cheaply), and the one compiler of `matches:` patterns.

`matches:` runs RE2 (google-re2) on SQLite, whose matching time is linear in the text: a
pattern written carelessly (`^([a-z]+ ?)+$`) cannot hang a count or a send on one long
value, as Python's backtracking `re` does. PostgreSQL runs the same pattern with `~`, whose
engine does not blow up on it either. So a pattern must mean the same to both: RE2 refuses
what it cannot run in linear time (back-references, look-arounds), and `compile_pattern`
refuses the escapes and groups PostgreSQL reads otherwise (`\\b` is a backspace there) or
not at all (`\\z`, `(?P<name>…)`). `validate` reports both through it, located.
"""

from __future__ import annotations

import hashlib
import sqlite3
from functools import lru_cache
from typing import Any

import re2

from campaignctl.errors import InvalidValue

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its own copy of every error on stderr
_OPTIONS.dot_nl = True  # `.` matches a newline, as in PostgreSQL's `~`

# Escapes RE2 and PostgreSQL read alike; any other backslash-letter or -digit differs.
_PORTABLE_ESCAPES = frozenset("dDsSwWAtnrfv")
SYNTAX_HINT = (
    "`matches:` runs RE2 (https://github.com/google/re2/wiki/Syntax) on SQLite and `~` on "
    "PostgreSQL: write what both read alike (classes, ^ $, * + ? {n,m}, | ( ) (?: ), a leading "
    "(?i), \\d \\s \\w \\A); no back-references (\\1), look-arounds ((?=…), (?<!…)), named groups "
    "or \\b: for a word boundary write (^|\\W)word(\\W|$)"
)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled `matches:` pattern, or an InvalidValue (a ValueError) saying why it cannot
    run, or would not mean the same on PostgreSQL."""
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidValue(
            f"invalid regular expression {pattern!r}: {reason}", hint=SYNTAX_HINT
        ) from None
    construct = _unportable(pattern)
    if construct is not None:
        raise InvalidValue(
            f"regular expression {pattern!r}: {construct} is read otherwise by PostgreSQL, "
            "or refused",
            hint=SYNTAX_HINT,
        )
    return compiled


def _unportable(pattern: str) -> str | None:
    """The first escape or group (outside a [class]) that PostgreSQL reads otherwise."""
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped.isalnum() and escaped not in _PORTABLE_ESCAPES:
                return pattern[i : i + 2]
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a leading ] is a literal one
            continue
        elif pattern.startswith("(?", i) and not (
            pattern.startswith("(?:", i) or (i == 0 and pattern.startswith("(?i)"))
        ):
            return pattern[i : i + 3]
        i += 1
    return None


def regexp(pattern: str | None, value: object) -> bool | None:
    """`value REGEXP pattern` (a segment's `matches:`): an RE2 search."""
    if pattern is None or value is None:
        return None
    return compile_pattern(pattern).search(str(value)) is not None


def sha256(value: str | None) -> str | None:
    """`campaignctl_sha256(value)`: the hex SHA-256 a suppression keeps of an address
    (`store.suppressions.sha256_hex`; PostgreSQL computes it with its own functions)."""
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


def register(dbapi: sqlite3.Connection) -> None:
    dbapi.create_function("regexp", 2, regexp, deterministic=True)
    dbapi.create_function("campaignctl_sha256", 1, sha256, deterministic=True)
