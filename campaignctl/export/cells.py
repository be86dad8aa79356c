"""Which badge each cell carries to each system, from the campaign's `exports:`.

A locked record sits in one cell: its first segment in the campaign's order × the
channel it is reached by (the lock's `recipient.segment` and `.channel`). Each export of
the campaign gives its system a badge (entity, label, fields) for the cells its
`segments:` and `channels:` cover (all by default); `validate` refuses two exports giving
one system a badge for the same cell.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from campaignctl.errors import StateError, UsageError
from campaignctl.spec.models import Campaign


@dataclass(frozen=True)
class BadgeSpec:
    """What one system records for the records of one cell."""

    system: str
    segment: str
    channel: str
    entity: str
    label: str
    fields: dict[str, Any]

    @property
    def fields_hash(self) -> str:
        """A short hash of what the badge says: a badge sent with another is `changed`."""
        text = json.dumps([self.entity, self.label, self.fields], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "label": self.label, "fields": self.fields}


@dataclass(frozen=True)
class Selection:
    """`--segment`, `--channel`, `--system`: None is all."""

    segment: str | None = None
    channel: str | None = None
    system: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"segment": self.segment, "channel": self.channel, "system": self.system}

    def covers(self, system: str, segment: str | None, channel: str) -> bool:
        return (
            (self.system is None or self.system == system)
            and (self.segment is None or self.segment == segment)
            and (self.channel is None or self.channel == channel)
        )


def cells(campaign: Campaign) -> list[tuple[str, str]]:
    """Every (segment, channel) of the campaign, segments then channels in its order."""
    return [(s, str(c)) for s in campaign.audience.segments for c in campaign.channels]


def badge_specs(campaign: Campaign) -> dict[tuple[str, str, str], BadgeSpec]:
    """(system, segment, channel) -> the badge, in the campaign's cell order."""
    found: dict[tuple[str, str, str], BadgeSpec] = {}
    for export in campaign.exports:
        for segment, channel in cells(campaign):
            if export.segments is not None and segment not in export.segments:
                continue
            if export.channels is not None and channel not in export.channels:
                continue
            found.setdefault(
                (export.system, segment, channel),
                BadgeSpec(
                    export.system, segment, channel, export.entity, export.label, export.fields
                ),
            )
    return found


def systems_of(campaign: Campaign) -> list[str]:
    """The systems the campaign's exports name, in their order."""
    return list(dict.fromkeys(e.system for e in campaign.exports))


def check_selection(campaign: Campaign, selection: Selection) -> None:
    """A UsageError (64, with "did you mean") for a selector the campaign does not have;
    a StateError (65) for a campaign without `exports:`."""
    if not campaign.exports:
        raise StateError(
            f"campaign {campaign.name!r} has no `exports:`: it transfers nothing to a CRM",
            hint="add `exports: [{system: ..., entity: ..., label: ..., fields: {...}}]` to it "
            "(see README, CRM exports)",
        )
    for option, value, known in (
        ("--segment", selection.segment, campaign.audience.segments),
        ("--channel", selection.channel, [str(c) for c in campaign.channels]),
        ("--system", selection.system, systems_of(campaign)),
    ):
        if value is not None and value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            raise UsageError(
                f"{option} {value!r} is not one of campaign {campaign.name!r}'s "
                f"{option.removeprefix('--')}s ({', '.join(known)})",
                hint=f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(known)}",
            )
