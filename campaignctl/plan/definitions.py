"""Campaign definitions as the store keeps them: canonical JSON, hashes, and diffs.

`plan` compares what the workspace says with what `apply` last recorded, the
way terraform compares configuration with state: a campaign is new (+),
changed (~, with each field's old → new), or gone from the files (-).
Options are frozen once a campaign has sent its first wave.
"""

from __future__ import annotations

import enum
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaignctl.spec.models import Campaign, Options

# Fields campaigns gained after definitions were first applied: left out of the canonical
# form while unset, so that an upgrade changes no applied campaign's hash (which would show
# every campaign as changed in `plan`, and make every lock stale).
ADDED_LATER = ("logo",)


def canonical(campaign: Campaign) -> dict[str, Any]:
    """The definition as JSON-ready data with YAML key names and every default filled in
    (but the unset ADDED_LATER fields)."""
    data = campaign.model_dump(mode="json", by_alias=True)
    for name in ADDED_LATER:
        if data.get(name) is None:
            del data[name]
    return data


def content_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of `data` (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ChangeAction(enum.StrEnum):
    CREATE = "+"
    UPDATE = "~"
    DELETE = "-"


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted, list items as [i]
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.path}: {_show(self.old)} → {_show(self.new)}"


@dataclass(frozen=True)
class DefinitionChange:
    campaign: str
    action: ChangeAction
    fields: tuple[FieldChange, ...] = ()
    frozen: tuple[FieldChange, ...] = ()  # option changes refused after the first send


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def diff_values(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values; lists of scalars compare whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            changes.extend(diff_values(old.get(key), new.get(key), sub))
        return changes
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and any(isinstance(item, dict) for item in old + new)
    ):
        changes = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            changes.extend(diff_values(a, b, f"{path}[{index}]"))
        return changes
    return [] if old == new else [FieldChange(path, old, new)]


def diff_definition(
    name: str, applied: dict[str, Any] | None, current: dict[str, Any] | None, *, sent: bool
) -> DefinitionChange | None:
    """What `apply` would change for one campaign; None when nothing differs.

    `sent` says whether the campaign already sent a wave: then option changes are frozen.
    """
    if applied is None and current is None:
        return None
    if applied is None:
        return DefinitionChange(name, ChangeAction.CREATE)
    if current is None:
        return DefinitionChange(name, ChangeAction.DELETE)
    fields = diff_values(applied, current)
    if not fields:
        return None
    frozen = tuple(
        f
        for f in fields
        if sent and f.path.startswith("options.") and not _default_turned_off(f, current)
    )
    return DefinitionChange(name, ChangeAction.UPDATE, tuple(fields), frozen)


def _default_turned_off(change: FieldChange, current: dict[str, Any]) -> bool:
    """`respect_other_campaigns` going from true to false on a message or information
    campaign is not refused as frozen: that is the default since it applies only between
    questionnaire campaigns, and a campaign applied before that change has `true`
    recorded without the user ever writing it. Turning it off only lets later waves
    reach records another campaign asks; it never withdraws a message already sent."""
    return (
        change.path == "options.respect_other_campaigns"
        and change.old is True
        and change.new is False
        and current.get("type") != "questionnaire"
    )


def option_names() -> list[str]:
    return list(Options.model_fields)


@dataclass(frozen=True)
class GitState:
    commit: str | None
    dirty: bool

    def describe(self) -> str:
        if self.commit is None:
            return "not a git repository"
        return f"{self.commit[:12]}{' (uncommitted changes)' if self.dirty else ''}"


def git_state(root: Path) -> GitState:
    """The commit checked out in the workspace and whether its tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return GitState(None, False)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=normal", "--", "."],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return GitState(None, False)
    dirty = any(
        line and not line[3:].startswith(".campaignctl") for line in status.stdout.splitlines()
    )
    return GitState(commit.stdout.strip(), dirty)
