"""The error hierarchy and the one place that maps an error to an exit code.

The library raises these; only the CLI entry point prints them and exits.
Exit codes follow DESIGN.md §2 (sysexits where one fits).
"""

from __future__ import annotations

import difflib
import enum
import errno
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # the operation failed (some messages not sent, checks failed)
    CHANGES = 2  # only with --detailed-exitcode: success with changes present
    USAGE = 64  # bad flag or argument
    DATA = 65  # invalid definitions, input data or a stale plan
    UNAVAILABLE = 69  # a required service is unreachable
    SOFTWARE = 70  # internal error: a bug
    TEMPFAIL = 75  # retry later: a lease is held, rate limited
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a file, with where it is and how to fix it.

    `file` is relative to the workspace root (or as given); `line` and `column`
    are 1-based, 0 when the problem concerns the file as a whole.
    """

    file: str
    line: int
    column: int
    severity: Severity
    code: str
    message: str
    hint: str | None = None

    def format(self) -> str:
        text = (
            f"{self.file}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"
        )
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class InvalidValue(ValueError):
    """A ValueError raised in a spec validator that carries a hint `validate` shows."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class CampaignctlError(Exception):
    """Base of every error a user may see. Carries its exit code and a hint."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(CampaignctlError):
    """The command was called wrongly (bad flag, missing workspace, no TTY to confirm)."""

    exit_code = ExitCode.USAGE


def unknown_campaign(name: str, known: Iterable[str]) -> UsageError:
    """The one error for a CAMPAIGN argument that names no campaign (defined or applied)."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1)
    listed = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return UsageError(
        f"campaign {name!r} does not exist",
        hint=f"did you mean {close[0]!r}?" if close else f"campaigns: {listed or 'none'}",
    )


class SpecError(CampaignctlError):
    """Definitions are invalid; carries every diagnostic found in one pass."""

    exit_code = ExitCode.DATA

    def __init__(self, diagnostics: Iterable[Diagnostic], message: str | None = None) -> None:
        self.diagnostics = sorted(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == Severity.ERROR]
        summary = message or f"{len(errors)} error(s) in the workspace definitions"
        super().__init__(summary, hint="run `campaignctl validate` to see every problem")

    def render(self) -> str:
        lines = [d.format() for d in self.diagnostics]
        lines.append(f"error: {self.message}")
        return "\n".join(lines)


class InputError(CampaignctlError):
    """Input data is unusable (a CSV that is not a CSV, an unknown encoding, a bad event file)."""

    exit_code = ExitCode.DATA


class StateError(CampaignctlError):
    """The store is not in a state that allows the operation (stale plan, frozen option)."""

    exit_code = ExitCode.DATA


class ServiceUnavailable(CampaignctlError):
    """A required service (SMTP, SMS provider, database) cannot be reached."""

    exit_code = ExitCode.UNAVAILABLE


class TemporaryFailure(CampaignctlError):
    """Retry later: a lease is held by someone else, or a rate limit applies."""

    exit_code = ExitCode.TEMPFAIL


class OperationFailed(CampaignctlError):
    """The operation ran but did not fully succeed (some messages could not be sent)."""

    exit_code = ExitCode.FAILED


class NoSpaceLeft(TemporaryFailure):
    """The disk (the store's, or the one a file goes to) is full. Every write is a
    transaction or a file moved into place, so nothing is half done: free some space and
    run the command again, it goes on from where it stopped."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"no space left on {where}",
            hint="free some space there, then run the command again: every write is whole "
            "or not at all, so what was recorded is kept and the command goes on from there",
        )


_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` (an OSError, or a SQLite or PostgreSQL error, wrapped by SQLAlchemy
    or not) says that the disk is full."""
    for error in (exc, getattr(exc, "orig", None), exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(error, "sqlstate", None) == _PG_DISK_FULL:
            return True
    return False


@contextmanager
def writing(path: object) -> Iterator[None]:
    """Around a file write: a full disk is a NoSpaceLeft naming the file (an OSError from
    `write` does not say which file it was)."""
    try:
        yield
    except OSError as exc:
        if disk_full(exc):
            raise NoSpaceLeft(str(path)) from exc
        raise
