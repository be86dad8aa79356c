"""Where preview gets its recipients: today the audience CSV, later the store.

`preview` must work before any `audience import`, so a user can iterate on templates
with only the CSV. This module is the one place that knows where records come from:
when the store holds imported records, `recipients_for_preview` is the function to
switch to a store query (the segment's first member, the records of a key's address).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from campaignctl.audience.source import read_source
from campaignctl.errors import UsageError
from campaignctl.render.context import Recipient, RecordData
from campaignctl.spec.models import Audience, Campaign, Channel
from campaignctl.spec.workspace import Workspace

SCAN_LIMIT = 100_000  # rows read at most to find a contact's records (preview only)


@dataclass
class PreviewSelection:
    recipients: list[Recipient]
    notes: list[str] = field(default_factory=list)


def campaign_audience(workspace: Workspace, campaign: Campaign) -> Audience:
    for name in campaign.audience.segments:
        segment = workspace.segments.get(name)
        if segment is not None and segment.audience in workspace.audiences:
            return workspace.audiences[segment.audience]
    raise UsageError(f"campaign {campaign.name!r} has no audience to preview records from")


def _rows(workspace: Workspace, audience: Audience) -> Iterator[RecordData]:
    region = workspace.config.phone_region if workspace.config else "FR"
    path = workspace.audience_source(audience)
    for row in read_source(path, audience, region, SCAN_LIMIT):
        if not row.rejected:
            yield RecordData(row.key, row.attributes, row.category), row.email, row.phone


def _usable(email: str | None, phone: str | None, channel: Channel) -> bool:
    return bool(email) if channel == Channel.EMAIL else bool(phone)


def recipients_for_preview(
    workspace: Workspace,
    campaign: Campaign,
    channel: Channel,
    contact: str | None = None,
    category: str | None = None,
) -> PreviewSelection:
    """The recipients to preview: `contact`'s, one of `category`, or the first usable row."""
    audience = campaign_audience(workspace, campaign)
    group = campaign.options.group_by_email and channel == Channel.EMAIL
    notes: list[str] = []
    rows = list(_rows(workspace, audience)) if group or contact or category else None
    if rows is None:
        rows = []
        for item in _rows(workspace, audience):
            rows.append(item)
            if _usable(item[1], item[2], channel):
                break
    chosen = None
    if contact is not None:
        chosen = next((item for item in rows if item[0].key == contact), None)
        if chosen is None:
            raise UsageError(
                f"no record with key {contact!r} in {audience.source}",
                hint=f"keys come from the {audience.key!r} column of audience {audience.name!r}",
            )
    elif category is not None:
        chosen = next(
            (i for i in rows if i[0].category == category and _usable(i[1], i[2], channel)), None
        )
        if chosen is None:
            first = next((i for i in rows if _usable(i[1], i[2], channel)), None)
            if first is None:
                raise UsageError(f"no record of {audience.source} has an address for {channel}")
            record = first[0]
            attributes = dict(record.attributes)
            if "category" in attributes:
                attributes["category"] = category
            chosen = (RecordData(record.key, attributes, category), first[1], first[2])
            notes.append(
                f"no record of category {category!r} in {audience.source}: previewing "
                f"{record.key!r} as if it were one"
            )
    else:
        chosen = next((i for i in rows if _usable(i[1], i[2], channel)), None)
        if chosen is None:
            raise UsageError(
                f"no record of {audience.source} has an address for {channel}",
                hint="pass --contact KEY, or --channel for the other channel",
            )
        notes.append(
            f"previewing the first record of {audience.source} with an address for {channel} "
            f"({chosen[0].key}); segments are evaluated once the audience is imported — "
            "pass --contact KEY for another"
        )
    record, email, phone = chosen
    if not _usable(email, phone, channel):
        other = "sms" if channel == Channel.EMAIL else "email"
        raise UsageError(
            f"record {record.key!r} has no address for {channel}",
            hint=f"choose another --contact, or --channel {other}",
        )
    records = [record]
    if group and email:
        records += [i[0] for i in rows if i[1] == email and i[0].key != record.key]
    return PreviewSelection([Recipient(records, email=email, phone=phone)], notes)


def default_path(root: Path, name: str) -> Path:
    return root / ".campaignctl" / "preview" / name
