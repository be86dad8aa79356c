"""The stores and workspaces tests run on: a copy of the demo, and fresh PostgreSQL schemas.

Importable by any test module (`from backends import …`), unlike a conftest.py: pytest
keeps several modules named `conftest`, and which one `import conftest` finds depends on
the order the folders were collected.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Every test session on PostgreSQL runs in a time zone far from UTC, as on a server set up
# on a machine in Tokyo (initdb takes the system's zone): what is stored, compared and
# shown must not depend on it.
PG_SESSION_TIMEZONE = "Asia/Tokyo"


def copy_demo(parent: Path) -> Path:
    """A copy of the repository's demo workspace in `parent`/demo."""
    root = parent / "demo"
    root.mkdir()
    for name in ("campaignctl.yaml",):
        shutil.copy2(REPO / name, root / name)
    for folder in ("audiences", "questionnaires", "campaigns", "templates", "documents", "schemas"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    return root


def postgres_engine() -> sa.Engine:
    """An engine on a fresh schema (`engine.info_schema`); skips the test, saying why, when
    no PostgreSQL server answers."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({exc.orig})")
    finally:
        admin.dispose()
    options = f"-csearch_path={schema} -ctimezone={PG_SESSION_TIMEZONE}"
    engine = sa.create_engine(PG_URL, connect_args={"options": options})
    engine.info_schema = schema  # type: ignore[attr-defined]
    return engine


def drop_schema(schema: str) -> None:
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@contextmanager
def postgres_store_url() -> Iterator[str]:
    """A `CAMPAIGNCTL_STORE` URL of a fresh PostgreSQL schema, dropped afterwards."""
    engine = postgres_engine()
    schema = engine.info_schema  # type: ignore[attr-defined]
    engine.dispose()
    try:
        yield (f"{PG_URL}?options=-csearch_path%3D{schema}%20-ctimezone%3D{PG_SESSION_TIMEZONE}")
    finally:
        drop_schema(schema)
