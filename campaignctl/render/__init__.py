"""Rendering: the exact email and SMS each recipient gets (DESIGN.md §3).

Build one `CampaignRenderer` per campaign and run (templates are compiled once),
then call `render_email` / `render_sms` for each recipient. Nothing here imports
typer or rich: the CLI and the send engine both call this library.
"""

from __future__ import annotations

from campaignctl.render.context import Recipient, RecordData, Wave, WaveKind
from campaignctl.render.renderer import (
    CampaignRenderer,
    RenderedEmail,
    RenderedSms,
    RenderOptions,
)
from campaignctl.render.sms import SmsEncoding, SmsInfo, sms_info

__all__ = [
    "CampaignRenderer",
    "Recipient",
    "RecordData",
    "RenderOptions",
    "RenderedEmail",
    "RenderedSms",
    "SmsEncoding",
    "SmsInfo",
    "Wave",
    "WaveKind",
    "sms_info",
]
