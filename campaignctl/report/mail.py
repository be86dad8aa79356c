"""`report --email`: the report as an email (HTML with its text version) through a sender.

Built with the lean MIME writer (render/mime.py) and handed to the sender's own
transport, so the file transport of a dry workspace writes the `.eml` into
`.campaignctl/outbox/reports/` and SMTP sends it for real (a Monday cron job).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from campaignctl.delivery.transport import OutgoingEmail, TransportSettings, create_transport
from campaignctl.errors import OperationFailed, UsageError
from campaignctl.render import mime
from campaignctl.report.model import CampaignList, CampaignReport
from campaignctl.report.render import html_page, text_page
from campaignctl.spec.models import Channel


@dataclass(frozen=True)
class ReportEmail:
    message_id: str
    sender: str  # envelope address
    recipients: tuple[str, ...]
    subject: str
    data: bytes


def parse_recipients(value: str) -> tuple[str, ...]:
    """`TO[,TO]` from the command line: addresses, checked for an @ each."""
    addresses = tuple(a.strip() for a in value.split(",") if a.strip())
    bad = [a for a in addresses if "@" not in parseaddr(a)[1]]
    if not addresses or bad:
        raise UsageError(
            f"--email: {', '.join(bad) or repr(value)} is not an email address",
            hint="write --email alice@example.org,bob@example.org",
        )
    return addresses


def report_email(
    report: CampaignReport | CampaignList,
    *,
    organization: str,
    from_: str,
    to: tuple[str, ...],
    now: datetime,
) -> ReportEmail:
    """The report as a multipart/alternative email (text first, then the HTML page)."""
    what = "campaigns" if isinstance(report, CampaignList) else f"campaign {report.name}"
    day = now.astimezone(ZoneInfo(report.timezone)).date()  # the reader's day, not UTC's
    subject = f"{organization}: report on {what}, {day.isoformat()}"
    envelope = parseaddr(from_)[1]
    domain = envelope.rpartition("@")[2] or "campaignctl.invalid"
    digest = hashlib.sha256(f"{what}|{now.isoformat()}|{','.join(to)}".encode()).hexdigest()
    mid = f"report.{digest[:24]}@{domain}"
    head = [
        mime.address_header("From", [mime.format_mailbox(from_)]),
        mime.address_header("To", [mime.format_mailbox(a) for a in to]),
        mime.header("Subject", subject),
        b"Date: " + format_datetime(now).encode("ascii") + b"\r\n",
        b"Message-ID: <" + mid.encode("ascii") + b">\r\n",
        b"Auto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
    ]
    _, alternative, _ = mime.boundaries(digest[:16])
    body = mime.multipart(
        "alternative",
        alternative,
        [
            mime.text_part("plain", text_page(report, organization)),
            mime.text_part("html", html_page(report, organization)),
        ],
    )
    return ReportEmail(mid, envelope, to, subject, b"".join(head) + body)


def send_report_email(
    email: ReportEmail, *, sender: Any, sender_name: str, outbox_dir: Path
) -> str:
    """Hand the email to the sender's transport; returns what the transport answered."""
    settings = TransportSettings(outbox_dir=outbox_dir, sender=sender, sender_name=sender_name)
    transport = create_transport(Channel.EMAIL, str(sender.transport), settings)
    message = OutgoingEmail(email.sender, email.recipients, email.data, email.message_id)

    async def deliver() -> Any:
        async with transport:
            return await transport.send(message)

    outcome = asyncio.run(deliver())
    if not outcome.ok:
        raise OperationFailed(
            f"the report email was not sent: {outcome.reply or outcome.status}",
            hint=f"check senders.{sender_name} in campaignctl.yaml",
        )
    return outcome.reply
