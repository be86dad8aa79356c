"""What each lazy import saves: cli/'s (each command imports the library it calls) and
the three kept below cli/: the modules and time a lazy target adds once its importer is
loaded (the commands that never reach it do not pay them).

Usage: python benchmarks/imports.py [RUNS]
Prints, for each (importer, lazy target), the modules the target adds and the fastest of
RUNS fresh interpreters (default 9), beside `import campaignctl.cli.main` (what
`campaignctl --help` loads)."""

from __future__ import annotations

import subprocess
import sys

# (importer, the module it imports inside a function, why it is lazy)
LAZY = [
    ("campaignctl.plan.plan", "campaignctl.render.renderer", "plan renders only with SMS"),
    ("campaignctl.schedule.scheduler", "campaignctl.delivery.engine", "a pass with nothing due"),
    ("campaignctl.spec.workspace", "campaignctl.spec.template_loader", "loading, no template"),
]

# what the commands import inside their bodies, were cli/ to import it at the top
LIBRARY = ",".join([
    "campaignctl.audience.importer", "campaignctl.delivery.engine", "campaignctl.events.record",
    "campaignctl.plan.apply", "campaignctl.report.figures", "campaignctl.report.mail",
    "campaignctl.report.render", "campaignctl.schedule.daemon", "campaignctl.render.preview",
    "campaignctl.spec.schema", "campaignctl.spec.validation", "campaignctl.scaffold",
])  # fmt: skip

PROBE = """
import importlib, sys, time
if {first!r}:
    importlib.import_module({first!r})
before = set(sys.modules)
start = time.perf_counter()
for name in {second!r}.split(","):
    importlib.import_module(name)
print(len(set(sys.modules) - before), time.perf_counter() - start)
"""


def delta(first: str, second: str, runs: int) -> tuple[int, float]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(first=first, second=second)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        samples.append((int(out[0]), float(out[1])))
    return samples[0][0], min(s[1] for s in samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    modules, seconds = delta("", "campaignctl.cli.main", runs)
    print(f"{'import campaignctl.cli.main':60} {modules:4} modules {seconds * 1000:7.1f} ms")
    modules, seconds = delta("campaignctl.cli.main", LIBRARY, runs)
    label = "campaignctl.cli.main -> the library its commands import"
    print(f"{label:60} {modules:4} modules {seconds * 1000:7.1f} ms  (cli/ imports it lazily)")
    for first, second, why in LAZY:
        modules, seconds = delta(first, second, runs)
        label = f"{first} -> {second}"
        print(f"{label:60} {modules:4} modules {seconds * 1000:7.1f} ms  ({why})")


if __name__ == "__main__":
    main()
