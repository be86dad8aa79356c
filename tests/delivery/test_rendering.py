"""Render processes: they render the campaign the send engine gives them."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

import pytest

from campaignctl.delivery.engine import SendOptions, outbox_dir, send_campaign
from campaignctl.spec.workspace import load_workspace
from tests.delivery.locking import locked_demo, open_store

CAMPAIGN = "mise-a-jour-2027"


def test_render_processes_render_the_spec_the_send_is_given_not_the_campaign_file(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an automation's send step is its campaign with the step's message: the render
    # processes of a large step wave send that, not the campaign's `message:`
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-23T10:00:00+01:00")
    monkeypatch.setenv("CAMPAIGNCTL_SECRET", "s3cret-for-tests")
    figures = locked_demo(demo, CAMPAIGN)
    workspace = load_workspace(demo)
    campaign = workspace.campaign(CAMPAIGN)
    assert campaign.message is not None
    step = campaign.model_copy(
        update={"message": campaign.message.model_copy(update={"subject": "Step subject"})}
    )
    store = open_store(demo)
    try:
        options = SendOptions(spec=step, render_processes=1, file_fsync=False)
        summary = send_campaign(store, workspace, CAMPAIGN, options)
    finally:
        store.close()
    files = sorted(outbox_dir(workspace, CAMPAIGN).glob("*.eml"))
    assert 0 < summary.sent <= figures["recipients"] and summary.failed == 0
    assert files  # and SMS: the demo's campaign sends both
    subjects = {message_from_bytes(path.read_bytes())["Subject"] for path in files}
    assert subjects == {"Step subject"}
