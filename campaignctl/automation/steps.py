"""The step tree of an automation, flattened into addressed nodes.

Every step has a path: `1`, `2`… at the top, `3.then.1` or `3.else.2` inside an
`if:`. A record's enrolment holds the path of the step it is at; `next` says
where it goes when that step is done (the step after an `if:` once a branch
ends; None at the end of the tree). A send step's wave carries its path in
`wave.target`, so that whoever runs the wave (the automation pass, or the
scheduler resuming held SMS) renders it with that step's template and subject:
content is bound at send time, from the workspace's files as they are then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from campaignctl.errors import UsageError
from campaignctl.spec.models import Campaign, MessageSpec, Step

AUTOMATION_KEY = "auto"  # occurrence keys of automation waves: CAMPAIGN/auto/PATH/N


@dataclass(frozen=True)
class Node:
    path: str
    step: Step
    next: str | None  # where a record goes when this step is done
    then: str | None = None  # if: first step of each branch (or `next` when empty)
    else_: str | None = None

    @property
    def action(self) -> str:
        return self.step.action

    @property
    def label(self) -> str:
        """What `report` shows: the step's name, or its action and argument."""
        step = self.step
        if step.name:
            return step.name
        if step.send is not None:
            return f"send {step.send.template or ''}".strip()
        if step.wait is not None:
            return f"wait {_duration(step.wait)}"
        if step.if_ is not None:
            return "if"
        if step.add_to_list:
            return f"add_to_list {step.add_to_list}"
        return f"remove_from_list {step.remove_from_list}"


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def flatten(steps: list[Step]) -> dict[str, Node]:
    """Every step of the tree by path, in the order a record meets them."""
    nodes: dict[str, Node] = {}

    def walk(items: list[Step], prefix: str, after: str | None) -> str | None:
        paths = [f"{prefix}{i + 1}" for i in range(len(items))]
        for i, step in enumerate(items):
            following = paths[i + 1] if i + 1 < len(paths) else after
            if step.if_ is not None:
                # the node goes in first so that the tree reads in order
                nodes[paths[i]] = Node(paths[i], step, following)
                then = walk(step.then, f"{paths[i]}.then.", following)
                else_ = walk(step.else_, f"{paths[i]}.else.", following)
                nodes[paths[i]] = Node(paths[i], step, following, then, else_)
            else:
                nodes[paths[i]] = Node(paths[i], step, following)
        return paths[0] if paths else after

    walk(steps, "", None)
    return nodes


def first_path(steps: list[Step]) -> str | None:
    return "1" if steps else None


def campaign_steps(campaign: Campaign) -> list[Step]:
    """The steps an automation runs: its `steps:`, or, without any, one send of its
    `message:` on its channels (an information campaign's notice; a campaign that just
    sends its message once to each record its trigger selects). An information campaign
    without channels runs no step: enrolled, it shows in the record's space."""
    if campaign.steps:
        return list(campaign.steps)
    if campaign.channels and campaign.message is not None:
        return [Step.model_validate({"send": {}})]
    return []


def step_paths(campaign: Campaign) -> dict[str, str]:
    """Send steps that `opened: STEP` / `clicked: STEP` may name: by name and by path."""
    names: dict[str, str] = {}
    for path, node in flatten(campaign_steps(campaign)).items():
        if node.step.send is not None:
            names[path] = path
            if node.step.name:
                names[node.step.name] = path
    return names


def content_hash(workspace: Any, campaign: Campaign) -> str:
    """SHA-256 of the automation's definition and of the template files its messages are
    made of (layouts and signature included): a failed send is tried again once it
    changes."""
    root = workspace.root / "templates"
    names = {campaign.message.template} if campaign.message else set()
    names |= {
        n.step.send.template
        for n in flatten(campaign_steps(campaign)).values()
        if n.step.send is not None and n.step.send.template
    }
    files = [p for n in sorted(names) for p in sorted(root.glob(f"{n}.*.j2"))]
    if (root / "layouts").is_dir():
        files += sorted(p for p in (root / "layouts").rglob("*") if p.is_file())
    signature = workspace.config.organization.signature if workspace.config else None
    if signature and (workspace.root / signature).is_file():
        files.append(workspace.root / signature)
    digest = hashlib.sha256(campaign.model_dump_json().encode())
    for path in files:
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def step_spec(campaign: Campaign, path: str) -> Campaign:
    """The campaign as its send step at `path` sends: the step's template, subject and
    channels over the campaign's `message:` (sender, blocks)."""
    node = flatten(campaign_steps(campaign)).get(path)
    if node is None or node.step.send is None:
        raise UsageError(
            f"campaign {campaign.name!r} has no send step at {path!r} any more",
            hint="a step removed while records waited on it: apply the previous definition, "
            "or let the records go on from where they are",
        )
    send = node.step.send
    base = campaign.message
    updates: dict[str, Any] = {}
    if send.template:
        updates["template"] = send.template
    if send.subject:
        updates["subject"] = send.subject
    if base is None:
        message = MessageSpec(template=send.template or "", subject=send.subject)
    else:
        message = base.model_copy(update=updates)
    channels = list(send.channels or campaign.channels)
    return campaign.model_copy(update={"message": message, "channels": channels})
