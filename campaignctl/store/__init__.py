"""The store: tables, the `Store` connection object, migrations (DESIGN.md §9)."""

from campaignctl.store.store import SchemaStatus, Store, display_url, utcnow

__all__ = ["SchemaStatus", "Store", "display_url", "utcnow"]
