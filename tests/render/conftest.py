"""Fixtures of the render tests: a frozen clock, scaffold recipients, golden files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

GOLDEN = Path(__file__).parent / "golden"
# Regenerate with: CAMPAIGNCTL_UPDATE_GOLDEN=1 pytest tests/render (then review the diff)
UPDATE = os.environ.get("CAMPAIGNCTL_UPDATE_GOLDEN") == "1"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture
def frozen() -> Iterator[datetime]:
    """Time stands still at the campaign's send time (tokens and Date are reproducible)."""
    import time_machine

    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    def check(name: str, actual: str) -> None:
        path = GOLDEN / name
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        assert path.is_file(), f"{path} missing: run with CAMPAIGNCTL_UPDATE_GOLDEN=1"
        assert actual == path.read_text(encoding="utf-8"), f"differs from {path}"

    return check


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAMPAIGNCTL_SECRET", "DKIM_KEY"):
        monkeypatch.delenv(name, raising=False)
