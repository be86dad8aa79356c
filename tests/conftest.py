"""Fixtures every test shares: a stable terminal, and workspaces built from real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the repository's demo workspace, safe to break."""
    root = tmp_path / "demo"
    root.mkdir()
    for name in ("campaignctl.yaml",):
        shutil.copy2(REPO / name, root / name)
    for folder in ("audiences", "questionnaires", "campaigns", "templates", "documents", "schemas"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    return root
