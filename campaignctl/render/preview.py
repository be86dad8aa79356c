"""`preview`: render what one recipient would get, as terminal text, HTML or an .eml file."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes, policy

from campaignctl.render.context import Wave, WaveKind
from campaignctl.render.records import recipients_for_preview
from campaignctl.render.renderer import (
    CampaignRenderer,
    RenderedEmail,
    RenderedSms,
    RenderOptions,
)
from campaignctl.spec.models import Channel
from campaignctl.spec.workspace import Workspace

PREVIEW_OPTIONS = RenderOptions(allow_development_secret=True, require_dkim_key=False)
SHOWN_HEADERS = (
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
)


@dataclass
class PreviewItem:
    label: str
    email: RenderedEmail | None = None
    sms: RenderedSms | None = None


@dataclass
class Preview:
    renderer: CampaignRenderer
    items: list[PreviewItem]
    notes: list[str] = field(default_factory=list)


def wave_of(campaign_has_recurrence: bool, number: int) -> Wave:
    if number <= 1:
        return Wave(1, WaveKind.INITIAL)
    return Wave(number, WaveKind.RECURRENCE if campaign_has_recurrence else WaveKind.RELAUNCH)


def build_preview(
    workspace: Workspace,
    campaign_name: str,
    *,
    channel: Channel | None = None,
    contact: str | None = None,
    category: str | None = None,
    wave: int = 1,
) -> Preview:
    """Render the messages of the previewed recipient(s) for one channel."""
    renderer = CampaignRenderer(workspace, campaign_name, PREVIEW_OPTIONS)
    campaign = renderer.campaign
    channel = channel or (campaign.channels[0] if campaign.channels else Channel.EMAIL)
    selection = recipients_for_preview(workspace, campaign, channel, contact, category)
    recurrence = bool(campaign.schedule and campaign.schedule.recurrence)
    the_wave = wave_of(recurrence, wave)
    items = []
    for recipient in selection.recipients:
        first = recipient.records[0]
        label = " + ".join(r.key for r in recipient.records)
        if first.category:
            label += f" ({first.category})"
        if channel == Channel.EMAIL:
            items.append(PreviewItem(label, email=renderer.render_email(recipient, the_wave)))
        else:
            items.append(PreviewItem(label, sms=renderer.render_sms(recipient, the_wave)))
    return Preview(renderer, items, [*renderer.warnings, *selection.notes])


def email_as_text(rendered: RenderedEmail) -> str:
    """Headers, the text part, attachments and links, for a terminal."""
    message = message_from_bytes(rendered.data, policy=policy.default)
    lines = [f"{name}: {message[name]}" for name in SHOWN_HEADERS if message[name] is not None]
    parts = list(message.walk())
    attachments = [
        p.get_filename() or "" for p in parts if p.get_content_disposition() == "attachment"
    ]
    inline = [p.get_filename() or "" for p in parts if p.get("Content-ID")]
    if attachments:
        lines.append(f"Attachments: {', '.join(attachments)}")
    if inline:
        lines.append(f"Inline images: {', '.join(inline)}")
    lines += ["", rendered.text.rstrip(), ""]
    lines += _links(rendered.links)
    return "\n".join(lines)


def _links(links: dict[str, object]) -> list[str]:
    if not links:
        return []
    out = ["Links:"]
    for name, value in links.items():
        if isinstance(value, dict):
            out += [f"  {name}[{key}]: {url}" for key, url in value.items()]
        elif isinstance(value, list):
            out += [f"  {name}: {getattr(v, 'label', '')} {getattr(v, 'url', v)}" for v in value]
        else:
            out.append(f"  {name}: {value}")
    return [*out, ""]


def sms_as_text(rendered: RenderedSms) -> str:
    lines = [
        f"To: {rendered.to}",
        f"From: {rendered.sender_id}",
        f"Encoding: {rendered.info.describe()}",
        "",
        rendered.text,
        "",
    ]
    return "\n".join(lines + _links(rendered.links))
