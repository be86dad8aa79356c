"""Start-up time: `campaignctl --help` beside `python -c pass` (goal: under 0.35 s).

Usage: python benchmarks/startup.py [RUNS]
Prints the median wall time of each over RUNS runs (default 15) and their difference.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_wall(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True, check=False)  # warm the file cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    cli = str(Path(sys.executable).with_name("campaignctl"))
    help_time = median_wall([cli, "--help"], runs)
    bare = median_wall([sys.executable, "-c", "pass"], runs)
    validate = median_wall(
        [cli, "--workspace", str(Path(__file__).resolve().parent.parent), "validate"], runs
    )
    print(f"python -c pass          {bare:.3f} s (median of {runs})")
    print(
        f"campaignctl --help      {help_time:.3f} s  (goal < 0.350 s; "
        f"{help_time - bare:.3f} s over bare python)"
    )
    print(f"campaignctl validate    {validate:.3f} s  (the demo workspace)")


if __name__ == "__main__":
    main()
