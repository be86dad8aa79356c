"""Options shared by several commands, declared once so `--help` always names their variables."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer


class EnvVars:
    """Every environment variable campaignctl reads for its own settings."""

    WORKSPACE = "CAMPAIGNCTL_WORKSPACE"
    STORE = "CAMPAIGNCTL_STORE"
    DEBUG = "CAMPAIGNCTL_DEBUG"
    COLOR = "CAMPAIGNCTL_COLOR"


class ColorMode(enum.StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar=EnvVars.WORKSPACE,
        show_envvar=True,
        file_okay=False,
        help="Workspace directory: it must hold campaignctl.yaml itself (default: the "
        "nearest directory holding one, from the current directory upward).",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (see docs/json.md)."),
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (required without a terminal)."),
]
LockTimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        help="When another process holds the lease, wait up to this long (30s, 5m) "
        "instead of exiting 75 at once.",
    ),
]


def parse_lock_timeout(value: str | None):  # -> timedelta | None (datetime imported lazily)
    """The --lock-timeout value as a timedelta; a UsageError (exit 64) when it does not parse."""
    if value is None:
        return None
    from campaignctl.errors import UsageError
    from campaignctl.spec.types import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}", hint=getattr(exc, "hint", None)) from None
