"""Alembic environment, run programmatically by `Store.upgrade()` with a live connection."""

from __future__ import annotations

from alembic import context

from campaignctl.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic revision --autogenerate` by devs
    import sqlalchemy as sa

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///:memory:"
    connection = sa.create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
