"""Messages rendered and serialised to bytes per second, beside the stdlib EmailMessage figure.

The message is the scaffold's questionnaire email (update-2027: html layout + text part +
headers, a signed form link, the questionnaire's fields). All figures come from the same
run on the same 500 recipients (three categories, fifty opening-period patterns):

- campaignctl: CampaignRenderer (templates compiled once, per-recipient context, CSS
  inlined once per message shape, quoted-printable by cached lines, lean MIME writer);
- the same with `reuse_inlined_shapes=False` (css-inline run on every message);
- the same rendered html/text assembled with `email.message.EmailMessage` and
  serialised with `as_bytes()` (the stdlib reference).

Each line gives messages per second of wall-clock time and per second of CPU time of
this process (the machine may be shared: the CPU figure is the one-core rate).

    python benchmarks/render.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from campaignctl.render import CampaignRenderer, Recipient, RecordData, RenderOptions
from campaignctl.scaffold import create_workspace
from campaignctl.spec.workspace import load_workspace

REPO = Path(__file__).resolve().parent.parent  # the repository is the demo workspace


def recipients(n: int) -> list[Recipient]:
    out = []
    for i in range(n):
        month = 3 + i % 5
        attributes = {
            "id": f"H{i:05d}",
            "nom": f"Hôtel n°{i} du Lac",
            "email": f"contact{i}@hotel{i}.example",
            "telephone": f"+334501{i % 1000:05d}",
            "category": ("hotel", "camping", "gite")[i % 3],
            "commune": "Val",
            "tags": ["adherent"],
            "opening_periods": [[f"2026-{month:02d}-{1 + i % 10:02d}", "2026-10-31"]],
        }
        record = RecordData(attributes["id"], attributes, attributes["category"])
        out.append(Recipient([record], email=attributes["email"]))
    return out


def rate(function: Callable[[Recipient], object], items: list[Recipient], seconds: float) -> str:
    done = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        for item in items:
            function(item)
        done += len(items)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return f"{done / wall:8,.0f} messages/s wall, {done / cpu:8,.0f} per CPU second ({done:,})"


def demo_recipients(workspace, campaign: str) -> list[Recipient]:  # type: ignore[no-untyped-def]
    """The demo's own contacts that have an email, read from its CSV as `preview` reads it."""
    from campaignctl.render.records import _rows, campaign_audience

    audience = campaign_audience(workspace, workspace.campaigns[campaign])
    return [
        Recipient([record], email=email) for record, email, _ in _rows(workspace, audience) if email
    ]


def measure(label: str, workspace, campaign: str, people: list[Recipient], seconds: float) -> None:  # type: ignore[no-untyped-def]
    renderer = CampaignRenderer(workspace, campaign, RenderOptions())
    per_message = CampaignRenderer(workspace, campaign, RenderOptions(reuse_inlined_shapes=False))
    sample = renderer.render_email(people[0])

    def stdlib(recipient: Recipient) -> bytes:
        rendered = renderer.render_email(recipient)  # same rendering, stdlib MIME
        message = EmailMessage()
        message["From"] = renderer.sender.from_
        message["To"] = rendered.to
        message["Reply-To"] = renderer.sender.reply_to
        message["Subject"] = rendered.subject
        message["Date"] = "Mon, 01 Mar 2027 09:00:00 +0100"
        message["Message-ID"] = f"<{rendered.message_id}>"
        message["Feedback-ID"] = f"{campaign}:campaignctl"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes(policy=SMTP)

    print(f"message: {label}, {len(sample.data):,} bytes (html + text + headers), "
          f"{len(people)} recipients")  # fmt: skip
    ours = rate(lambda r: renderer.render_email(r).data, people, seconds)
    print(f"  campaignctl (render + lean MIME):       {ours}")
    plain = rate(lambda r: per_message.render_email(r).data, people, seconds)
    print(f"    the same, css-inline on every message: {plain}")
    theirs = rate(stdlib, people, seconds)
    print(f"  render + stdlib EmailMessage:           {theirs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("CAMPAIGNCTL_SECRET", "benchmark-secret")
    root = Path(tempfile.mkdtemp()) / "ws"
    create_workspace(root)
    scaffold = load_workspace(root)
    measure("scaffold update-2027", scaffold, "update-2027", recipients(500), args.seconds)
    demo = load_workspace(REPO)
    people = demo_recipients(demo, "mise-a-jour-2027")
    measure("demo mise-a-jour-2027", demo, "mise-a-jour-2027", people, args.seconds)
    print("target: >= 5,000 messages/s on one core")


if __name__ == "__main__":
    main()
