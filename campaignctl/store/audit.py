"""The audit log: what changed the store, by whom (`audit_log` table)."""

from __future__ import annotations

import getpass
import socket
from typing import Any

from sqlalchemy.engine import Connection

from campaignctl.store.store import utcnow
from campaignctl.store.tables import AUDIT_LOG


def actor() -> str:
    """Who runs this process: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def audit(
    conn: Connection,
    action: str,
    object_: str | None,
    data: dict[str, Any] | None = None,
    *,
    by: str | None = None,
) -> None:
    """Add one line to the audit log, in the caller's transaction."""
    conn.execute(
        AUDIT_LOG.insert().values(
            at=utcnow(), actor=by or actor(), action=action, object=object_, data=data
        )
    )
