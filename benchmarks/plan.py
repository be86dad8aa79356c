"""Time `campaignctl plan` and `lock` of a 3-segment, 2-channel campaign with grouping and
exclusions over a 1,000,000-record store (the audience benchmark's CSV).
Targets (issue 6): plan <= 5 s and peak RSS <= 300 MB; lock <= 10 s.
Usage: python benchmarks/plan.py [CSV]   (default: generate 1,000,000 rows in /tmp)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
_import_bench = __import__("import")  # benchmarks/import.py: the same audience and timer
AUDIENCE, run = _import_bench.AUDIENCE, _import_bench.run

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONFIG = """store: sqlite:///.campaignctl/store.db
timezone: Europe/Paris
phone_region: FR
organization: {name: Bench}
senders:
  default: {from: "Bench <bench@example.org>", transport: file}
sms: {transport: file, sender_id: BENCH, price_per_part: 0.045}
tracking: {base_url: "https://bench.example"}
categories:
  marketing: {unsubscribe: true}
"""
SEGMENTS = {
    "hotels": "category: {in: [hotel, camping]}",
    "val": "commune: {in: [Val, Mont]}",
    "renewing": "contract_end: {between: [today, today+90d]}",
    "commerce": "category: commerce",
}
CAMPAIGN = """kind: Campaign
name: bench
category: marketing
audience:
  segments: [hotels, val, renewing]
  exclude_segments: [commerce]
channels: [email, sms]
message: {subject: "Bonjour", template: bench}
options: {group_by_email: true, max_messages_per_contact: 3}
schedule: {send_at: 2030-03-01T09:00, relaunch: [{after: 7d, to: non_responders}]}
"""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="campaignctl-plan-bench-"))
    csv_path = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "contacts.csv"
    if not csv_path.exists():
        subprocess.run([sys.executable, HERE / "gen_contacts.py", csv_path], check=True)
    ws = work / "ws"
    for folder in ("audiences/segments", "campaigns", "templates"):
        (ws / folder).mkdir(parents=True)
    (ws / "campaignctl.yaml").write_text(CONFIG)
    (ws / "audiences" / "contacts.audience.yaml").write_text(AUDIENCE)
    for name, where in SEGMENTS.items():
        (ws / "audiences" / "segments" / f"{name}.yaml").write_text(
            f"kind: Segment\nname: {name}\naudience: contacts\nwhere:\n  {where}\n"
        )
    (ws / "campaigns" / "bench.yaml").write_text(CAMPAIGN)
    (ws / "templates" / "bench.html.j2").write_text("<p>Bonjour {{ record.nom }}</p>\n")
    (ws / "templates" / "bench.txt.j2").write_text("Bonjour {{ record.nom }}\n")
    (ws / "templates" / "bench.sms.j2").write_text("Bonjour {{ record.nom }}\n")
    os.symlink(csv_path.resolve(), ws / "contacts.csv")
    cli = str(BIN / "campaignctl")
    env_now = {"CAMPAIGNCTL_NOW": "2030-01-06T08:00:00+01:00"}
    os.environ.update(env_now)
    seconds, rss, _ = run([cli, "audience", "import"], ws)
    print(f"import: {seconds:.1f} s, peak RSS {rss} MB")
    seconds, rss, _ = run([cli, "apply", "--auto-approve"], ws)
    seconds, rss, last = run([cli, "plan", "bench"], ws)
    print(f"plan:   {seconds:.2f} s, peak RSS {rss} MB  (target <= 5 s, <= 300 MB) — {last}")
    seconds, rss, last = run([cli, "lock", "bench"], ws)
    print(f"lock:   {seconds:.2f} s, peak RSS {rss} MB  (target <= 10 s)")
    out = subprocess.run([cli, "plan", "bench"], cwd=ws, capture_output=True, text=True).stdout
    print(out)


if __name__ == "__main__":
    main()
