"""The store: tables, the `Store` connection object, migrations (DESIGN.md §9), and the
domain queries every layer builds on, each rule written once:

- `campaigns`: an applied campaign by name (one error, one exit code), the lock in force;
- `suppressions`: `applies` (may this address be contacted?) and `add`;
- `outbox`: the per-contact cap, the claim of due rows, the outcome of a row;
- `events`: `record_once`, where every producer's events are written;
- `waves`: a new wave row, numbered after its campaign's last;
- `upsert`: insert-or-ignore / insert-or-update on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SchemaStatus", "Store", "display_url", "utcnow"]


def __getattr__(name: str) -> Any:
    # `from campaignctl.store import Store` works, but importing the package alone does not
    # pull in SQLAlchemy (the CLI imports light submodules at start-up).
    if name in __all__:
        from campaignctl.store import store

        return getattr(store, name)
    raise AttributeError(name)
