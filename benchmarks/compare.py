"""The four benchmarks' workloads and start-up, old code against new, interleaved in one run.

Issue 22's contract: `send`, `import`, `plan` (with `lock`) and `report` stay within 5 % of
the code before the store refactor (commit 82d0b00), measured in the same run: this
machine's speed drifts, so two separate runs compare the machine, not the code.

Usage:
    .venv/bin/python benchmarks/compare.py [--ref 82d0b00] [--new REF] [--rounds 5]
        [--recipients 20000] [--rows 200000] [--report-scale 0.2] [--only send,lock …]
        [--workdir DIR]

The ref is checked out into a temporary `git worktree` (removed at the end); the new side
is this working tree, edits included, or `--new REF` checked out the same way (so that
editing the tree during a long run cannot change what it measures). Both sides run with
this interpreter and its venv (the old code's dependencies are a subset of ours), each
with PYTHONPATH at its own tree, as `python -c 'campaignctl.cli.entry.main()'`: the same
interpreter, flags and start-up path for both. Both trees are byte-compiled first, as an
installed package is. Each side builds its own data with its own code (its demo, its
migrations, its `benchmarks/report.py` store); the plan, lock and import workspace is the
same text for both (`benchmarks/plan.py`'s campaign over `benchmarks/gen_contacts.py`'s
CSV). A workload that changes its store runs on a fresh copy of it, restored before each
run (untimed).

Each round times every workload once per side (`--help` ten times), the sides' order
alternating between rounds (old new, new old …). Printed per workload: the median wall and
CPU seconds (user + system of the command and the processes it waited for, from
`os.wait4`) of each side, and new/old of the medians (the contract: ≤ 1.05).

Workloads: `--help` (start-up); `send` of the demo campaign locked to N recipients, to
the file transport (benchmarks/send.py (d)); `audience import` of the CSV into an empty
store (benchmarks/import.py); `plan` and `lock` of plan.py's campaign over the imported
store (benchmarks/plan.py); `report` (the list) and `report mise-a-jour-2027` on
benchmarks/report.py's store at a reduced scale, its summary up to date.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "benchmarks"
sys.path.insert(0, str(HERE))
_plan_bench = __import__("plan")  # benchmarks/plan.py: the campaign, segments and config
_import_bench = __import__("import")  # benchmarks/import.py: the audience for the CSV's header

RUN_CLI = "import sys; from campaignctl.cli.entry import main; sys.argv[0] = 'campaignctl'; main()"
SEND_NOW = "2026-11-23T10:00:00+01:00"  # benchmarks/send.py's clock
PLAN_NOW = "2030-01-06T08:00:00+01:00"  # benchmarks/plan.py's clock
WORKLOADS = ["help", "send", "import", "plan", "lock", "report-list", "report"]
# runs per side and round: a tenth of a second moves with every hiccup of a shared machine
REPEAT = {"help": 10}


@dataclass
class Side:
    """One version of the code: its tree, and the data it built for the workloads."""

    name: str
    tree: Path
    work: Path
    data: dict[str, Path] = field(default_factory=dict)

    def env(self, now: str | None = None) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(self.tree), "CAMPAIGNCTL_SECRET": "benchmark"}
        env.pop("CAMPAIGNCTL_WORKSPACE", None)
        env.pop("CAMPAIGNCTL_STORE", None)
        if now:
            env["CAMPAIGNCTL_NOW"] = now
        return env

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-c", RUN_CLI, *args]

    def check(self, argv: list[str], cwd: Path, now: str | None = None) -> None:
        """Run a set-up step; stop with its output if it fails."""
        done = subprocess.run(argv, cwd=cwd, env=self.env(now), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"[{self.name}] {argv[3:]} failed:\n{done.stdout}\n{done.stderr}")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one command; CPU = user + system of it and its reaped children."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            log.seek(0)
            raise SystemExit(f"{argv[3:]} failed ({proc.returncode}):\n{log.read()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def restore(pristine: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(pristine, target)


# --- set-up, per side (untimed) ---------------------------------------------------------


def bench_workspace(root: Path, csv_path: Path) -> Path:
    """benchmarks/plan.py's workspace: its config, segments, campaign and templates."""
    ws = root / "ws"
    for folder in ("audiences/segments", "campaigns", "templates"):
        (ws / folder).mkdir(parents=True)
    (ws / "campaignctl.yaml").write_text(_plan_bench.CONFIG)
    (ws / "audiences" / "contacts.audience.yaml").write_text(_import_bench.audience(csv_path)[0])
    for name, where in _plan_bench.SEGMENTS.items():
        (ws / "audiences" / "segments" / f"{name}.yaml").write_text(
            f"kind: Segment\nname: {name}\naudience: contacts\nwhere:\n  {where}\n"
        )
    (ws / "campaigns" / "bench.yaml").write_text(_plan_bench.CAMPAIGN)
    (ws / "templates" / "bench.html.j2").write_text(
        '<p>Bonjour {{ record.nom }}</p>\n<a href="{{ links.unsubscribe }}">Se désinscrire</a>\n'
    )
    (ws / "templates" / "bench.txt.j2").write_text(
        "Bonjour {{ record.nom }}\nSe désinscrire : {{ links.unsubscribe }}\n"
    )
    (ws / "templates" / "bench.sms.j2").write_text("Bonjour {{ record.nom }}\n")
    try:  # a source stays inside audiences/: a hard link, else a copy
        os.link(csv_path, ws / "audiences" / "contacts.csv")
    except OSError:
        shutil.copy2(csv_path, ws / "audiences" / "contacts.csv")
    return ws


def set_up_import(side: Side, csv_path: Path) -> None:
    """The plan workspace of the side, imported and applied; a copy of its state."""
    ws = bench_workspace(side.work / "plan", csv_path)
    side.check(side.cli("audience", "import"), ws, PLAN_NOW)
    side.check(side.cli("apply", "--auto-approve"), ws, PLAN_NOW)
    shutil.copytree(ws / ".campaignctl", side.work / "plan" / "applied")
    side.data["plan"] = ws
    side.data["import"] = bench_workspace(side.work / "import", csv_path)


SEND_SET_UP = """
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
import send
root = send.workspace(Path(sys.argv[1]), int(sys.argv[2]), None)
send.lock(root)
"""


def set_up_send(side: Side, recipients: int) -> None:
    """The side's own demo locked to `recipients` hotels, by its own benchmarks/send.py."""
    base = side.work / "send"
    base.mkdir()
    argv = [sys.executable, "-c", SEND_SET_UP, str(base), str(recipients)]
    side.check(argv, side.tree, SEND_NOW)
    (ws,) = base.glob("ws-*")
    shutil.copytree(ws, base / "locked", symlinks=True)
    side.data["send"] = ws


REPORT_SET_UP = """
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
import report
report.build(Path(sys.argv[1]), float(sys.argv[2]))
"""


def set_up_report(side: Side, scale: float) -> None:
    """benchmarks/report.py's store, by the side's own build; the summary built once."""
    ws = side.work / "report"
    ws.mkdir()
    store = ws / "store.db"
    side.check([sys.executable, "-c", REPORT_SET_UP, str(store), str(scale)], side.tree)
    (ws / "campaignctl.yaml").write_text(
        f"store: sqlite:///{store}\ntimezone: Europe/Paris\norganization: {{name: Bench}}\n"
    )
    side.check(side.cli("report"), ws)  # the first report builds the summary: untimed
    side.data["report"] = ws


# --- the timed runs ---------------------------------------------------------------------


def run_workload(side: Side, workload: str) -> tuple[float, float]:
    if workload == "help":
        return timed(side.cli("--help"), side.work, side.env())
    if workload == "send":
        ws = side.data["send"]
        restore(ws.parent / "locked", ws)
        argv = side.cli("send", "mise-a-jour-2027", "--now", "--json")
        return timed(argv, ws, side.env(SEND_NOW))
    if workload == "import":
        ws = side.data["import"]
        shutil.rmtree(ws / ".campaignctl", ignore_errors=True)
        return timed(side.cli("audience", "import"), ws, side.env(PLAN_NOW))
    if workload == "plan":
        return timed(side.cli("plan", "bench"), side.data["plan"], side.env(PLAN_NOW))
    if workload == "lock":
        ws = side.data["plan"]
        restore(ws.parent / "applied", ws / ".campaignctl")
        return timed(side.cli("lock", "bench"), ws, side.env(PLAN_NOW))
    if workload == "report-list":
        return timed(side.cli("report"), side.data["report"], side.env())
    if workload == "report":
        return timed(side.cli("report", "mise-a-jour-2027"), side.data["report"], side.env())
    raise ValueError(workload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="82d0b00", help="the old code (default: 82d0b00)")
    parser.add_argument("--new", help="the new code (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=20_000, help="send's recipients")
    parser.add_argument("--rows", type=int, default=200_000, help="the CSV of import, plan, lock")
    parser.add_argument("--report-scale", type=float, default=0.2, help="report.py's --scale")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed")
    parser.add_argument("--samples", action="store_true", help="also print every run's figures")
    args = parser.parse_args()
    workloads = [w for w in args.only.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose among {WORKLOADS}")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="campaignctl-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    trees = {"old": work / "old-tree", "new": work / "new-tree" if args.new else REPO}
    try:
        for name, ref in (("old", args.ref), ("new", args.new)):
            if ref:
                git = ["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees[name]), ref]
                subprocess.run(git, check=True, capture_output=True)
        sides = [Side(name, tree, work / name) for name, tree in trees.items()]
        for side in sides:
            side.work.mkdir()
            # bytecode, as an installed package has it: without it every run compiles what it
            # imports (PYTHONDONTWRITEBYTECODE keeps it from being cached), and the bigger
            # tree pays more for it
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(side.tree / "campaignctl")],
                check=True,
            )
        print(f"old: {args.ref} in {trees['old']}; new: {args.new or 'the working tree'} in "
              f"{trees['new']}")  # fmt: skip
        steps: list[tuple[str, Callable[[Side], None]]] = []
        if "send" in workloads:
            steps.append(("send", lambda s: set_up_send(s, args.recipients)))
        if {"import", "plan", "lock"} & set(workloads):
            csv_path = work / "contacts.csv"
            subprocess.run(
                [sys.executable, HERE / "gen_contacts.py", csv_path, str(args.rows)], check=True
            )
            steps.append(("import", lambda s: set_up_import(s, csv_path)))
        if {"report", "report-list"} & set(workloads):
            steps.append(("report", lambda s: set_up_report(s, args.report_scale)))
        for name, step in steps:
            for side in sides:
                started = time.perf_counter()
                step(side)
                print(f"set-up {name} ({side.name}): {time.perf_counter() - started:.1f} s")

        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            order = sides if round_ % 2 == 0 else sides[::-1]
            for workload in workloads:
                for _ in range(REPEAT.get(workload, 1)):
                    for side in order:
                        samples.setdefault((workload, side.name), []).append(
                            run_workload(side, workload)
                        )
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        report(samples, workloads, args)
    finally:
        for tree in trees.values():
            if tree != REPO and tree.exists():
                git = ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)]
                subprocess.run(git, check=False)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def report(
    samples: dict[tuple[str, str], list[tuple[float, float]]],
    workloads: list[str],
    args: argparse.Namespace,
) -> None:
    print(
        f"\n{args.rounds} rounds; send {args.recipients:,} recipients, import/plan/lock "
        f"{args.rows:,} rows, report scale {args.report_scale:g}; {os.cpu_count()} cores, "
        "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    )
    print(f"{'workload':12s} {'wall old':>9s} {'wall new':>9s} {'ratio':>6s}   "
          f"{'CPU old':>8s} {'CPU new':>8s} {'ratio':>6s}")  # fmt: skip
    for workload in workloads:
        old, new = samples[workload, "old"], samples[workload, "new"]
        wall_old, wall_new = (statistics.median(s[0] for s in x) for x in (old, new))
        cpu_old, cpu_new = (statistics.median(s[1] for s in x) for x in (old, new))
        flag = "" if max(wall_new / wall_old, cpu_new / cpu_old) <= 1.05 else "  > 1.05"
        print(
            f"{workload:12s} {wall_old:9.3f} {wall_new:9.3f} {wall_new / wall_old:6.3f}   "
            f"{cpu_old:8.3f} {cpu_new:8.3f} {cpu_new / cpu_old:6.3f}{flag}"
        )
        if args.samples:
            for name, runs in (("old", old), ("new", new)):
                figures = " ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in runs)
                print(f"    {name} wall/CPU: {figures}")


if __name__ == "__main__":
    main()
