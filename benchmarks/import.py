"""Time, on one CSV: sqlite3 `.import`, `sqlite-utils insert --csv`, and `campaignctl audience
import` (full normalisation), then the re-import of the unchanged file and a 3-condition
segment count with a relative date. Prints seconds, ratios and the peak memory of each
command with its worker processes: the peak RSS of each process (what `/usr/bin/time -v`
reports for one process), then their sum, the figure held to 300 MB; and the peaks of
the summed RSS and PSS.

The audience follows the file's header: the columns of `benchmarks/gen_contacts.py`
(`;`-separated, tags split on `,`) or of `../shared/bench/gen_contacts.py` (`,`-separated,
tags split on `;`); emails, phones, tags and dates are declared with their types, the
other columns are text without being listed.

Usage: python benchmarks/import.py [CSV] [--pairs N]   (default: generate 1,000,000 rows)
Needs sqlite-utils, the reference: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
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
TYPES = {
    "email": "{type: email}",
    "telephone": "{type: phone, region: FR}",
    "phone": "{type: phone, region: FR}",
    "tags": '{type: list, separator: "%s"}',
    "contract_end": "{type: date}",
}
SEGMENT = """kind: Segment
name: renewing
audience: contacts
where:
  all:
    - category: {in: [hotel, camping]}
    - commune: {in: [Val, Mont]}
    - contract_end: {between: [today, today+30d]}
"""


def audience(csv_path: Path) -> tuple[str, str]:
    """(the Audience YAML for the file's header, its delimiter)."""
    with csv_path.open(encoding="utf-8-sig") as handle:
        header = handle.readline().strip()
    delimiter = ";" if ";" in header else ","
    separator = "," if delimiter == ";" else ";"
    columns = [  # the others (the key among them) are text without being listed
        f"  {name}: {TYPES[name].replace('%s', separator)}"
        for name in header.split(delimiter)
        if name in TYPES
    ]
    document = "kind: Audience\nname: contacts\nsource: audiences/contacts.csv\nkey: id\ncolumns:\n"
    return document + "\n".join(columns) + "\n", delimiter


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
    memory = (
        f"{peak.peak_rss_kib // 1024:4d} MB ({peak.per_process_mb()}; "
        f"peak of sums: RSS {peak.rss_kib // 1024}, PSS {peak.pss_kib // 1024})"
    )
    lines = out.strip().splitlines()
    summary = [line for line in lines if line.startswith("contacts: ")]  # not its problems
    return elapsed, memory, (summary or lines or [""])[-1]


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
    document, delimiter = audience(csv_path)
    (ws / "audiences" / "contacts.audience.yaml").write_text(document)
    (ws / "audiences" / "segments" / "renewing.yaml").write_text(SEGMENT)
    # a copy: a source must lie inside audiences/, and a symlink out of the workspace is refused
    shutil.copyfile(csv_path, ws / "audiences" / "contacts.csv")
    rows = sum(1 for _ in csv_path.open(encoding="utf-8-sig")) - 1
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB, ~{rows:,} lines)")

    results = {}
    if shutil.which("sqlite3"):
        script = f".mode csv\n.separator {delimiter}\n.import {csv_path} contacts\n"
        results["sqlite3 .import"] = run(["sqlite3", str(work / "floor.db")], work, script)
    ctl = [str(BIN / "campaignctl"), "--workspace", str(ws)]
    ratios = []
    for pair in range(args.pairs):
        (work / "su.db").unlink(missing_ok=True)
        shutil.rmtree(ws / ".campaignctl", ignore_errors=True)
        su = run(
            [str(BIN / "sqlite-utils"), "insert", str(work / "su.db"), "contacts",
             str(csv_path), "--csv", "--delimiter", delimiter], work,
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
    print("peak memory: the peak RSS of each process, summed (the command's own + its children's)")
    for name, (seconds, memory, tail) in results.items():
        print(f"{name:44s} {seconds:7.2f} s  {memory}   {tail}")
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
        f"first import's peak memory: {results[f'campaignctl audience import{suffix}'][1]}"
        " (target <= 300 MB)"
    )
    print(
        f"segment show --count: {results['campaignctl segment show --count'][0]:.2f} s, best of 5"
        " after the first of the day (target <= 0.3 s)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
