"""Fixtures of the render tests: a frozen clock, scaffold recipients, golden files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from golden import Goldens

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture
def frozen() -> Iterator[datetime]:
    """Time stands still at the campaign's send time (tokens and Date are reproducible)."""
    import time_machine

    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def golden() -> Goldens:
    """Golden files of tests/render/golden (see tests/golden.py)."""
    return Goldens(Path(__file__).parent / "golden")


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAMPAIGNCTL_SECRET", "DKIM_KEY"):
        monkeypatch.delenv(name, raising=False)
