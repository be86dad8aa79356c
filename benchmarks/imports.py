"""What each lazy import below cli/ saves: the modules and time its target adds once its
importer is loaded (the commands that never reach it do not pay them).

Usage: python benchmarks/imports.py [RUNS]
Prints, for each (importer, lazy target), the modules the target adds and the fastest of
RUNS fresh interpreters (default 9), beside the cost of `import campaignctl.cli.main`.
"""

from __future__ import annotations

import subprocess
import sys

# (importer, the module it imports inside a function, why it is lazy)
LAZY = [
    ("campaignctl.plan.plan", "campaignctl.render.renderer", "plan renders only with SMS"),
    ("campaignctl.schedule.scheduler", "campaignctl.delivery.engine", "a pass with nothing due"),
    ("campaignctl.spec.workspace", "campaignctl.spec.template_loader", "loading, no template"),
]

PROBE = """
import importlib, sys, time
if {first!r}:
    importlib.import_module({first!r})
before = set(sys.modules)
start = time.perf_counter()
importlib.import_module({second!r})
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
    for first, second, why in LAZY:
        modules, seconds = delta(first, second, runs)
        label = f"{first} -> {second}"
        print(f"{label:60} {modules:4} modules {seconds * 1000:7.1f} ms  ({why})")


if __name__ == "__main__":
    main()
