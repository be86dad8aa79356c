"""Fixtures every test shares: a stable terminal, and workspaces built from real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import copy_demo, drop_schema, postgres_engine, postgres_store_url


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


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the repository's demo workspace, safe to break."""
    return copy_demo(tmp_path)


# Store tests run on a real SQLite file and on PostgreSQL (skipped, saying why, only
# where no server answers).
@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    from campaignctl.store import Store

    if request.param == "sqlite":
        s = Store("sqlite:///store.db", root=tmp_path)
        yield s
        s.close()
        return
    engine = postgres_engine()
    s = Store(engine)
    yield s
    s.close()
    drop_schema(engine.info_schema)  # type: ignore[attr-defined]


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
