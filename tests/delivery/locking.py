"""Test helpers: an applied and locked campaign, through the real `apply` and `lock`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.plan.apply import apply_definitions
from campaignctl.plan.lock import lock_campaign as lock
from campaignctl.spec.workspace import Workspace, load_workspace
from campaignctl.store import Store


def import_audience(root: Path) -> None:
    result = CliRunner().invoke(app, ["--workspace", str(root), "audience", "import"])
    assert result.exit_code == 0, result.output


def open_store(root: Path, url: str | None = None) -> Store:
    """The store the commands use: `url`, else CAMPAIGNCTL_STORE (PostgreSQL with the
    `backend` fixture), else the workspace's SQLite file."""
    url = url or os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db"
    return Store(url, root=root)


def lock_campaign(store: Store, workspace: Workspace, name: str) -> dict[str, Any]:
    """Apply and lock `name`: returns the campaign id, lock id and recipients made."""
    import sqlalchemy as sa

    from campaignctl.store.tables import CAMPAIGN

    apply_definitions(store, workspace, [name])
    view = lock(store, workspace, name)
    with store.read() as conn:
        campaign_id = conn.execute(
            sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == name)
        ).scalar_one()
    return {
        "campaign_id": campaign_id,
        "lock_id": view.lock_id,
        "recipients": view.counts.get("recipients", 0),
    }


def locked_demo(root: Path, name: str = "mise-a-jour-2027", url: str | None = None) -> dict:
    """Import the workspace's audience and lock `name`; returns the lock figures."""
    import_audience(root)
    store = open_store(root, url)
    try:
        return lock_campaign(store, load_workspace(root), name)
    finally:
        store.close()
