"""Planner statistics for tables a command has just filled.

PostgreSQL plans from statistics that autovacuum gathers later: a lock that has just
inserted 100,000 recipients, or a push that has just made 100,000 badges, still look
empty, and the planner then picks a nested loop that reads one table once per row of the
other (a push of 100,000 badges ran for a quarter of an hour). SQLite's planner does not
need them here.
"""

from __future__ import annotations

import sqlalchemy as sa


def refresh_statistics(conn: sa.Connection, *tables: str) -> None:
    """ANALYZE `tables` on PostgreSQL (inside the caller's transaction); nothing on SQLite."""
    if conn.dialect.name == "postgresql" and tables:
        conn.exec_driver_sql("ANALYZE " + ", ".join(tables))
