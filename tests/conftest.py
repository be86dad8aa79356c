"""Fixtures every test shares: a stable terminal, and workspaces built from real files."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable output: no colour, fixed width, no CI/GitHub or user settings leaking in."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    for name in (
        "GITHUB_ACTIONS",
        "CAMPAIGNCTL_WORKSPACE",
        "CAMPAIGNCTL_STORE",
        "CAMPAIGNCTL_DEBUG",
        "CAMPAIGNCTL_COLOR",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scaffold(tmp_path: Path) -> Path:
    """A fresh `campaignctl init` workspace in a temporary directory."""
    from campaignctl.scaffold import create_workspace

    root = tmp_path / "ws"
    create_workspace(root)
    return root


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


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the repository's demo workspace, safe to break."""
    return copy_demo(tmp_path)


# Store tests run on a real SQLite file and on PostgreSQL (skipped, saying why, only
# where no server answers).
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


@contextmanager
def postgres_store_url() -> Iterator[str]:
    """A `CAMPAIGNCTL_STORE` URL of a fresh PostgreSQL schema, dropped afterwards."""
    engine = _postgres_engine()
    schema = engine.info_schema  # type: ignore[attr-defined]
    engine.dispose()
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a command-level test on the workspace's SQLite store, then on PostgreSQL:
    CAMPAIGNCTL_STORE points every command (and child process) at a fresh schema."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with postgres_store_url() as url:
        monkeypatch.setenv("CAMPAIGNCTL_STORE", url)
        yield "postgresql"
