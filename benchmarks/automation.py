"""Time the automation pass of `campaignctl scheduler tick` (issue 20), beside bare SQL.

Usage: python benchmarks/automation.py [--records 100000] [--events 10000] [--skip-due] [--keep DIR]

The issue's sizes take two runs: `--records 1000000 --skip-due` (enrolment and idle tick
of 1M) and `--records 100000` (the due tick of 100k; at 1M it would send 1M emails).

Builds a copy of the demo workspace holding one automation, `segment_entered` on a segment
of every record, whose steps are `wait: 30d`, then `if: {opened: any}` into a `send` either
way (file transport), and a store with RECORDS records written by a bare executemany (the
import is not what is measured). Then runs, as a user does (subprocesses, the clock pinned
by CAMPAIGNCTL_NOW), and prints wall time and peak RSS of each:

1. the enrolment tick: every record enrolled and moved to the wait (goal for 1M: ≤ 60 s,
   ≤ 300 MB);
2. after EVENTS opened events written into the store, a tick with nothing due (goal: ≤ 2 s
   for the whole command), beside the same tick with the automation deactivated (the
   command's start-up and an empty pass: what the automation adds is the difference);
3. thirty days later, the tick where every wait ends: the `if:` on opens, then the send of
   one email per record through the file transport (goal: ≥ 2,000 records/s).

References, measured in the same run: for the enrolment, what storing the enrolments
costs with nothing else done (the same rows inserted by one bare `INSERT … SELECT` of
sqlite3 into an emptied copy of the table); for the due tick, `campaignctl send` of a
plain campaign to the same records with the same template through the same file
transport (the floor: the due tick sends that many emails too). Peak RSS comes from
`/usr/bin/time -v` when it exists (else getrusage of the children). The machine is
shared: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "campaignctl"
NOW = "2027-01-05T10:00:00+01:00"
CAMPAIGN = """kind: Campaign
name: bench-auto
category: marketing
type: message
audience: {segments: [everyone]}
channels: [email]
message: {subject: "Bienvenue", template: bienvenue}
trigger: {event: segment_entered, segment: everyone}
steps:
  - name: welcome-wait
    wait: 30d
  - if: {opened: any}
    then: [{send: bienvenue-relance}]
    else: [{send: bienvenue}]
"""
PLAIN = """kind: Campaign
name: bench-send
category: marketing
type: message
audience: {segments: [everyone]}
channels: [email]
message: {subject: "Bienvenue", template: bienvenue}
"""
SEGMENT = "kind: Segment\nname: everyone\naudience: providers\nwhere: {all: []}\n"


def workspace(root: Path) -> Path:
    ws = root / "ws"
    ws.mkdir()
    shutil.copy2(REPO / "campaignctl.yaml", ws / "campaignctl.yaml")
    for folder in ("audiences", "questionnaires", "templates", "documents"):
        shutil.copytree(REPO / folder, ws / folder)
    (ws / "campaigns").mkdir()
    (ws / "campaigns" / "bench-auto.yaml").write_text(CAMPAIGN)
    (ws / "audiences" / "segments" / "everyone.yaml").write_text(SEGMENT)
    return ws


TIME = Path("/usr/bin/time")


def run(ws: Path, *args: str, now: str = NOW) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the child and its descendants, and its last line."""
    env = {**os.environ, "CAMPAIGNCTL_NOW": now, "CI": "1", "NO_COLOR": "1"}
    command = [str(BIN), "--workspace", str(ws), *args]
    if TIME.exists():
        command = [str(TIME), "-v", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    stderr = done.stderr
    if TIME.exists():
        stderr, _, report = stderr.rpartition("\tCommand being timed:")
        for line in report.splitlines():
            if "Maximum resident set size (kbytes):" in line:
                peak = int(line.rsplit(":", 1)[1]) / 1024
    if done.returncode not in (0, 75):
        sys.exit(f"{' '.join(args)} exited {done.returncode}:\n{stderr}")
    lines = stderr.strip().splitlines() or [""]
    return wall, peak, lines[-1]


def fill_records(db: Path, count: int) -> None:
    conn = sqlite3.connect(db)
    stamp = "2027-01-01 00:00:00.000000"
    rows = (
        ("providers", f"B{i:07d}", f"b{i}@bench.example", f"b{i}@bench.example", "hotel",
         json.dumps({"name": f"Hôtel {i}"}), "active", stamp, stamp)
        for i in range(count)
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO record (audience, key, email, email_normalized, category, attributes, "
        "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


def fill_events(db: Path, count: int) -> None:
    conn = sqlite3.connect(db)
    ids = [r for (r,) in conn.execute(f"SELECT id FROM record ORDER BY id LIMIT {count}")]
    stamp = "2027-01-05 09:30:00.000000"
    conn.executemany(
        "INSERT INTO event (id, type, record_id, at, received_at) VALUES (?, ?, ?, ?, ?)",
        ((f"bench-{r}", "opened", r, stamp, stamp) for r in ids),
    )
    conn.commit()
    conn.close()


def reference(db: Path) -> float:
    """A bare INSERT … SELECT of the enrolments into an emptied copy of the table."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TEMP TABLE enrolment_copy AS SELECT * FROM enrolment WHERE 0")
    started = time.perf_counter()
    conn.execute(
        "INSERT INTO enrolment_copy (campaign_id, record_id, enrolled_at, step, due_at) "
        "SELECT 1, id, '2027-01-05', '1', '2027-02-04' FROM record"
    )
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--skip-due", action="store_true", help="no due tick (for 1M)")
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-automation-"))
    try:
        ws = workspace(root)
        run(ws, "db", "upgrade")
        db = ws / ".campaignctl" / "store.db"
        fill_records(db, args.records)
        run(ws, "apply", "--auto-approve")
        enrol, enrol_rss, enrol_line = run(ws, "scheduler", "tick")
        fill_events(db, args.events)
        idle, idle_rss, idle_line = run(ws, "scheduler", "tick", now="2027-01-05T11:00:00+01:00")
        # the floor of an idle tick: the same command and pass with the automation switched off
        run(ws, "campaign", "deactivate", "bench-auto", now="2027-01-05T11:01:00+01:00")
        floor, _, _ = run(ws, "scheduler", "tick", now="2027-01-05T11:02:00+01:00")
        run(ws, "campaign", "activate", "bench-auto", now="2027-01-05T11:03:00+01:00")
        bare = reference(db)
        report = {
            "records": args.records,
            "enrolment_tick": {"seconds": round(enrol, 2), "peak_rss_mib": round(enrol_rss),
                               "line": enrol_line},
            "idle_tick_after_events": {"events": args.events, "seconds": round(idle, 2),
                                       "peak_rss_mib": round(idle_rss), "line": idle_line},
            "reference_tick_without_automation_s": round(floor, 2),
            "idle_tick_automation_share_s": round(idle - floor, 2),
            "reference_bare_insert_select_s": round(bare, 3),
            "ratio_enrolment_to_reference": round(enrol / bare, 1) if bare else None,
        }  # fmt: skip
        if not args.skip_due:
            due_now = "2027-02-04T10:00:00+01:00"
            due, due_rss, due_line = run(ws, "scheduler", "tick", now=due_now)
            (ws / "campaigns" / "bench-send.yaml").write_text(PLAIN)
            run(ws, "apply", "bench-send", "--auto-approve", now=due_now)
            run(ws, "lock", "bench-send", now=due_now)
            plain, plain_rss, plain_line = run(ws, "send", "bench-send", now=due_now)
            report["due_tick"] = {"seconds": round(due, 2),
                                  "records_per_s": round(args.records / due),
                                  "peak_rss_mib": round(due_rss), "line": due_line}  # fmt: skip
            report["reference_plain_send"] = {"seconds": round(plain, 2),
                                              "records_per_s": round(args.records / plain),
                                              "peak_rss_mib": round(plain_rss),
                                              "line": plain_line}  # fmt: skip
            report["ratio_due_tick_to_plain_send"] = round(due / plain, 2)
        print(json.dumps(report, indent=2))
    finally:
        if args.keep:
            shutil.move(str(root), str(args.keep))
        else:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
