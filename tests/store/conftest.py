"""The store fixture: every store test runs on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_engine() -> sa.Engine:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({exc.orig})")
    finally:
        admin.dispose()
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    engine.info_schema = schema  # type: ignore[attr-defined]
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    from campaignctl.store import Store

    if request.param == "sqlite":
        s = Store("sqlite:///store.db", root=tmp_path)
        yield s
        s.close()
        return
    engine = _postgres_engine()
    s = Store(engine)
    yield s
    s.close()
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{engine.info_schema}" CASCADE'))  # type: ignore[attr-defined]
    admin.dispose()
