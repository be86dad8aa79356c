"""The demo workspace with its CRM systems pointed at a real local receiver and a real
CSV folder, imported, applied (and locked where a test wants it), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.export.receiver import Receiver

NOW = "2026-12-06T10:00:00+01:00"
CAMPAIGN = "appel-cotisation-2027"
DEMO_URL = "https://crm.val-des-aiguilles.example/api/v1/campaign-badges"


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def point_at(root: Path, url: str, extra: str = "    backoff: 0s\n    batch_size: 10\n") -> None:
    config = root / "campaignctl.yaml"
    text = config.read_text(encoding="utf-8")
    assert DEMO_URL in text
    text = text.replace(f"url: {DEMO_URL}", f"url: {url}\n{extra.rstrip()}")
    config.write_text(text, encoding="utf-8")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.url = found.start()  # type: ignore[attr-defined]
    yield found
    found.stop()


@pytest.fixture
def crm(demo: Path, backend: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo, applied, its webhook system at the receiver (no backoff, batches of 10)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("CRM_TOKEN", receiver.token)
    point_at(demo, receiver.url)  # type: ignore[attr-defined]
    for args in (("audience", "import"), ("apply", "--auto-approve")):
        result = run(demo, *args)
        assert result.exit_code == 0, result.output
    return demo


@pytest.fixture
def locked(crm: Path) -> Path:
    result = run(crm, "lock", CAMPAIGN)
    assert result.exit_code == 0, result.output
    return crm
