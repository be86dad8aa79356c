"""Time `campaignctl plan` and `lock` of a 3-segment, 2-channel campaign with grouping and
exclusions over a 1,000,000-record store (the audience benchmark's CSV).
Targets (issue 6): plan <= 5 s and peak RSS <= 300 MB; lock <= 10 s.
Usage: python benchmarks/plan.py [CSV] [--workdir DIR]
  (default CSV: generate 1,000,000 rows in /tmp). With --workdir, the workspace and store are
  kept in DIR and reused by the next run with the same DIR (no re-import; the previous lock of
  the benchmark campaign is released first so that `lock` really locks again).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
_import_bench = __import__("import")  # benchmarks/import.py: the same audience and timer
audience, run = _import_bench.audience, _import_bench.run

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
    args = sys.argv[1:]
    workdir = None
    if "--workdir" in args:
        at = args.index("--workdir")
        workdir = Path(args[at + 1]).resolve()
        del args[at : at + 2]
    work = workdir or Path(tempfile.mkdtemp(prefix="campaignctl-plan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = Path(args[0]) if args else work / "contacts.csv"
    if not csv_path.exists():
        subprocess.run([sys.executable, HERE / "gen_contacts.py", csv_path], check=True)
    ws = work / "ws"
    cli = str(BIN / "campaignctl")
    os.environ.update({"CAMPAIGNCTL_NOW": "2030-01-06T08:00:00+01:00"})
    if (ws / ".campaignctl" / "store.db").exists() and (ws / ".campaignctl" / "imported").exists():
        print(f"reusing the workspace and store in {ws}")
        subprocess.run([cli, "unlock", "bench"], cwd=ws, capture_output=True)
        with sqlite3.connect(ws / ".campaignctl" / "store.db") as db:  # drop released snapshots
            db.execute(
                "DELETE FROM recipient WHERE lock_id IN "
                "(SELECT id FROM campaign_lock WHERE released_at IS NOT NULL)"
            )
        measure(cli, ws)
        return
    if ws.exists():
        shutil.rmtree(ws)
    for folder in ("audiences/segments", "campaigns", "templates"):
        (ws / folder).mkdir(parents=True)
    (ws / "campaignctl.yaml").write_text(CONFIG)
    document = audience(csv_path)[0].replace(
        "source: contacts.csv", "source: audiences/contacts.csv"
    )
    (ws / "audiences" / "contacts.audience.yaml").write_text(document)
    for name, where in SEGMENTS.items():
        (ws / "audiences" / "segments" / f"{name}.yaml").write_text(
            f"kind: Segment\nname: {name}\naudience: contacts\nwhere:\n  {where}\n"
        )
    (ws / "campaigns" / "bench.yaml").write_text(CAMPAIGN)
    (ws / "templates" / "bench.html.j2").write_text(
        '<p>Bonjour {{ record.nom }}</p>\n<a href="{{ links.unsubscribe }}">Se désinscrire</a>\n'
    )
    (ws / "templates" / "bench.txt.j2").write_text(
        "Bonjour {{ record.nom }}\nSe désinscrire : {{ links.unsubscribe }}\n"
    )
    (ws / "templates" / "bench.sms.j2").write_text("Bonjour {{ record.nom }}\n")
    try:  # a source stays inside audiences/ (no link from outside): a hard link, else a copy
        os.link(csv_path, ws / "audiences" / "contacts.csv")
    except OSError:
        shutil.copy2(csv_path, ws / "audiences" / "contacts.csv")
    seconds, rss, _ = run([cli, "audience", "import"], ws)
    print(f"import: {seconds:.1f} s, peak RSS {rss} MB")
    seconds, rss, _ = run([cli, "apply", "--auto-approve"], ws)
    (ws / ".campaignctl" / "imported").touch()
    measure(cli, ws)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Seconds, CPU seconds (user + system: what the load of a shared machine does not
    inflate much), peak RSS (MB) and the last output line of a command."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd} failed:\n{out}")
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, last


def measure(cli: str, ws: Path) -> None:
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    seconds, cpu, rss, last = timed([cli, "plan", "bench"], ws)
    print(
        f"plan: {seconds:.2f} s (CPU {cpu:.2f} s), peak RSS {rss} MB"
        f"  (target <= 5 s, <= 300 MB) — {last}"
    )
    seconds, cpu, rss, last = timed([cli, "lock", "bench"], ws)
    print(f"lock: {seconds:.2f} s (CPU {cpu:.2f} s), peak RSS {rss} MB  (target <= 10 s)")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    out = subprocess.run([cli, "plan", "bench"], cwd=ws, capture_output=True, text=True).stdout
    print(out)


if __name__ == "__main__":
    main()
