"""Messages rendered and serialised to bytes per second, beside the stdlib EmailMessage figure.

The message is the scaffold's questionnaire email (update-2027: html layout + text part +
headers, a signed form link, the questionnaire's fields). Both figures come from the same
run: campaignctl's CampaignRenderer (templates compiled once, per-recipient context,
CSS inlining, quoted-printable, lean MIME writer), then the same rendered html/text
assembled with `email.message.EmailMessage` and serialised with `as_bytes()`.

    python benchmarks/render.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from campaignctl.render import CampaignRenderer, Recipient, RecordData, RenderOptions
from campaignctl.scaffold import create_workspace
from campaignctl.spec.workspace import load_workspace


def recipients(n: int) -> list[Recipient]:
    out = []
    for i in range(n):
        attributes = {
            "id": f"H{i:05d}",
            "nom": f"Hôtel n°{i} du Lac",
            "email": f"contact{i}@hotel{i}.example",
            "telephone": "+33450123456",
            "category": "hotel",
            "commune": "Val",
            "tags": ["adherent"],
            "opening_periods": [["2026-04-01", "2026-10-31"]],
        }
        record = RecordData(attributes["id"], attributes, "hotel")
        out.append(Recipient([record], email=attributes["email"]))
    return out


def rate(function, items: list[Recipient], seconds: float) -> tuple[float, int]:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in items:
            function(item)
        done += len(items)
    return done / (time.perf_counter() - start), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("CAMPAIGNCTL_SECRET", "benchmark-secret")
    root = Path(tempfile.mkdtemp()) / "ws"
    create_workspace(root)
    renderer = CampaignRenderer(load_workspace(root), "update-2027", RenderOptions())
    people = recipients(500)
    sample = renderer.render_email(people[0])

    ours, n_ours = rate(lambda r: renderer.render_email(r).data, people, args.seconds)

    def stdlib(recipient: Recipient) -> bytes:
        rendered = renderer.render_email(recipient)  # same rendering, stdlib MIME
        message = EmailMessage()
        message["From"] = renderer.sender.from_
        message["To"] = rendered.to
        message["Reply-To"] = renderer.sender.reply_to
        message["Subject"] = rendered.subject
        message["Date"] = "Mon, 01 Mar 2027 09:00:00 +0100"
        message["Message-ID"] = f"<{rendered.message_id}>"
        message["Feedback-ID"] = "update-2027:administrative:campaignctl"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes(policy=SMTP)

    theirs, n_theirs = rate(stdlib, people, args.seconds)
    print(f"message: scaffold update-2027, {len(sample.data):,} bytes (html + text + headers)")
    print(f"campaignctl (render + lean MIME):  {ours:8,.0f} messages/s  ({n_ours:,} messages)")
    print(f"render + stdlib EmailMessage:      {theirs:8,.0f} messages/s  ({n_theirs:,} messages)")
    print(f"speed-up of the whole per-recipient path: {ours / theirs:.1f}x (target >= 5,000/s)")


if __name__ == "__main__":
    main()
