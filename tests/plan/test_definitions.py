"""Definition diffs (terraform-style), hashes, frozen options and git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from campaignctl.plan.definitions import (
    ChangeAction,
    canonical,
    content_hash,
    diff_definition,
    git_state,
)
from campaignctl.spec.workspace import load_workspace


def test_canonical_definitions_hash_stably(scaffold: Path) -> None:
    campaign = load_workspace(scaffold).campaigns["update-2027"]
    data = canonical(campaign)
    assert data["schedule"]["relaunch"][0] == {
        "after": "7d",
        "to": "non_responders",
        "channels": None,
        "template": None,
    }
    assert content_hash(data) == content_hash(
        canonical(load_workspace(scaffold).campaigns["update-2027"])
    )
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


def test_a_field_added_later_moves_no_applied_campaign_s_hash(scaffold: Path) -> None:
    """`logo:` came after campaigns were applied: unset, it is left out of the canonical form,
    so every hash stays what the previous version stored (no campaign shows as changed, no
    lock goes stale); set, it counts like any field."""
    campaign = load_workspace(scaffold).campaigns["update-2027"]
    every_field = campaign.model_dump(mode="json", by_alias=True)
    assert every_field.pop("logo") is None
    assert canonical(campaign) == every_field
    with_logo = canonical(campaign.model_copy(update={"logo": "logo-2027.png"}))
    assert with_logo == {**every_field, "logo": "logo-2027.png"}


def test_new_changed_and_removed(scaffold: Path) -> None:
    before = canonical(load_workspace(scaffold).campaigns["update-2027"])
    path = scaffold / "campaigns" / "update-2027.yaml"
    path.write_text(
        path.read_text()
        .replace("after: 7d", "after: 10d")
        .replace("max_messages_per_contact: 3", "max_messages_per_contact: 2")
    )
    after = canonical(load_workspace(scaffold).campaigns["update-2027"])

    assert diff_definition("x", None, after, sent=False).action == ChangeAction.CREATE
    assert diff_definition("x", before, None, sent=False).action == ChangeAction.DELETE
    assert diff_definition("x", before, before, sent=True) is None

    change = diff_definition("update-2027", before, after, sent=False)
    assert change.action == ChangeAction.UPDATE
    assert [f.describe() for f in change.fields] == [
        "options.max_messages_per_contact: 3 → 2",
        'schedule.relaunch[0].after: "7d" → "10d"',
    ]
    assert change.frozen == ()
    sent = diff_definition("update-2027", before, after, sent=True)
    assert [f.path for f in sent.frozen] == ["options.max_messages_per_contact"]


def test_git_state(tmp_path: Path) -> None:
    assert git_state(tmp_path).commit is None
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    state = git_state(tmp_path)
    assert len(state.commit) == 40 and state.dirty is False
    (tmp_path / ".campaignctl").mkdir()
    (tmp_path / ".campaignctl" / "store.db").write_text("x")
    assert git_state(tmp_path).dirty is False  # local state does not make the tree dirty
    (tmp_path / "campaigns.yaml").write_text("x")
    assert git_state(tmp_path).dirty is True
    assert git_state(tmp_path).describe().endswith("(uncommitted changes)")


def test_every_demo_definition_survives_the_round_trip_through_the_store() -> None:
    """The scheduler re-reads applied definitions: canonical JSON must validate again."""
    from backends import REPO

    from campaignctl.spec.models import Campaign

    for name, campaign in load_workspace(REPO).campaigns.items():
        assert Campaign.model_validate(canonical(campaign)) == campaign, name
