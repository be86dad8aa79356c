"""The store: tables, the `Store` connection object, migrations (DESIGN.md §9)."""

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
