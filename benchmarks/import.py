"""Time, on one CSV: sqlite3 `.import`, `sqlite-utils insert --csv`, and `campaignctl audience
import` (full normalisation), then the re-import of the unchanged file and a 3-condition
segment count with a relative date. Prints seconds, ratios and the peak memory of each
command with its worker processes (summed PSS, the issue's bound of 300 MB, and summed RSS,
which counts the pages the workers share with the importing process once per process).

Usage: python benchmarks/import.py [CSV] [--pairs N]   (default: generate 1,000,000 rows)
Needs sqlite-utils, the reference: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.memory import PeakMemory  # noqa: E402

BIN = Path(sys.executable).parent
CONFIG = """store: sqlite:///.campaignctl/store.db
timezone: Europe/Paris
phone_region: FR
organization: {name: Bench}
"""
AUDIENCE = """kind: Audience
name: contacts
source: contacts.csv
key: id
columns:
  id: {type: string, required: true}
  nom: {type: string}
  email: {type: email}
  telephone: {type: phone, region: FR}
  category: {type: string}
  commune: {type: string}
  tags: {type: list, separator: ","}
  contract_end: {type: date}
"""
SEGMENT = """kind: Segment
name: renewing
audience: contacts
where:
  all:
    - category: {in: [hotel, camping]}
    - commune: {in: [Val, Mont]}
    - contract_end: {between: [today, today+30d]}
"""


def run(cmd: list[str], cwd: Path, stdin: str | None = None) -> tuple[float, str, str]:
    """Seconds, peak memory (the command and its worker processes) and output tail."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.PIPE if stdin else None,
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        with PeakMemory(proc) as peak:
            if stdin:
                proc.stdin.write(stdin)  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            proc.wait()
            elapsed = time.perf_counter() - started  # not the sampler's last sleep
        log.seek(0)
        out = log.read()
    if proc.returncode:
        raise SystemExit(f"{cmd} failed:\n{out}")
    memory = f"PSS {peak.pss_kib // 1024:4d} MB, RSS {peak.rss_kib // 1024:4d} MB"
    return elapsed, memory, out.strip().splitlines()[-1] if out.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, help="default: generate 1M rows")
    parser.add_argument(
        "--pairs", type=int, default=1,
        help="time sqlite-utils and the first import N times in turn (A B A B…) and quote "
        "the median of the pair-by-pair ratios: this machine's speed drifts",
    )  # fmt: skip
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if not (BIN / "sqlite-utils").exists():
        parser.error("the reference is sqlite-utils: install it with `pip install -e '.[bench]'`")
    work = Path(tempfile.mkdtemp(prefix="campaignctl-bench-"))
    csv_path = args.csv or work / "contacts.csv"
    if not csv_path.exists():
        subprocess.run([sys.executable, HERE / "gen_contacts.py", csv_path], check=True)
    ws = work / "ws"
    (ws / "audiences" / "segments").mkdir(parents=True)
    (ws / "campaignctl.yaml").write_text(CONFIG)
    (ws / "audiences" / "contacts.audience.yaml").write_text(AUDIENCE)
    (ws / "audiences" / "segments" / "renewing.yaml").write_text(SEGMENT)
    os.symlink(csv_path.resolve(), ws / "contacts.csv")
    rows = sum(1 for _ in csv_path.open(encoding="utf-8-sig")) - 1
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB, ~{rows:,} lines)")

    results = {}
    if shutil.which("sqlite3"):
        script = f".mode csv\n.separator ;\n.import {csv_path} contacts\n"
        results["sqlite3 .import"] = run(["sqlite3", str(work / "floor.db")], work, script)
    ctl = [str(BIN / "campaignctl"), "--workspace", str(ws)]
    ratios = []
    for pair in range(args.pairs):
        (work / "su.db").unlink(missing_ok=True)
        shutil.rmtree(ws / ".campaignctl", ignore_errors=True)
        su = run(
            [str(BIN / "sqlite-utils"), "insert", str(work / "su.db"), "contacts",
             str(csv_path), "--csv", "--delimiter", ";"], work,
        )  # fmt: skip
        first = run([*ctl, "audience", "import"], ws)
        ratios.append(su[0] / first[0])
        suffix = f" ({pair + 1}/{args.pairs})" if args.pairs > 1 else ""
        results[f"sqlite-utils insert --csv{suffix}"] = su
        results[f"campaignctl audience import{suffix}"] = first
    results["campaignctl re-import (unchanged)"] = run([*ctl, "audience", "import"], ws)
    # the first count of a day compiles the segment; later ones rerun the remembered SQL
    count = [*ctl, "segment", "show", "renewing", "--count"]
    results["campaignctl segment show --count (1st)"] = run(count, ws)
    results["campaignctl segment show --count"] = min(run(count, ws) for _ in range(5))
    for name, (seconds, memory, tail) in results.items():
        print(f"{name:44s} {seconds:7.2f} s  peak {memory}   {tail}")
    print(
        f"sqlite-utils / campaignctl import: {statistics.median(ratios):.2f}x"
        + (f" median of {', '.join(f'{r:.2f}' for r in ratios)}" if len(ratios) > 1 else "")
        + " (target >= 2x, <= 25 s)"
    )
    first = results[f"campaignctl audience import{suffix}"][0]
    again = results["campaignctl re-import (unchanged)"][0]
    if "sqlite3 .import" in results:
        print(f"campaignctl import / sqlite3 .import: {first / results['sqlite3 .import'][0]:.2f}x")
    print(f"re-import / (last) first import: {again / first:.0%} (target <= 60%)")
    print(
        f"segment show --count: {results['campaignctl segment show --count'][0]:.2f} s, best of 5"
        " after the first of the day (target <= 0.3 s)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
