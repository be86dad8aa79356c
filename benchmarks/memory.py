"""Peak memory of a command and the processes it starts (workers included), from /proc.

`ru_maxrss` only gives the largest single process; a command that forks workers uses the
sum. Two sums are sampled every 0.1 s: RSS (pages the workers share with their parent,
such as the interpreter and the modules imported before the fork, counted once per
process) and PSS (each shared page split between the processes sharing it: what the
command costs the machine).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) of `pid` and its children (workers, render processes), in KiB."""
    from tests.delivery.sendkit import child_pids

    rss = pss = 0
    for each in [pid, *child_pids(pid)]:
        try:
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue  # gone meanwhile
        rss += int(rollup.split("\nRss:")[1].split()[0]) if "\nRss:" in rollup else 0
        pss += int(rollup.split("\nPss:")[1].split()[0]) if "\nPss:" in rollup else 0
    return rss, pss


class PeakMemory:
    """Samples a running process tree until it exits: `with PeakMemory(popen) as peak:`."""

    def __init__(self, process: subprocess.Popen, interval: float = 0.1) -> None:
        self.process = process
        self.interval = interval
        self.rss_kib = self.pss_kib = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.process.poll() is None:
            rss, pss = tree_memory_kib(self.process.pid)
            self.rss_kib, self.pss_kib = max(self.rss_kib, rss), max(self.pss_kib, pss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        if Path("/proc/self/smaps_rollup").exists():
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread.is_alive():
            self._thread.join()
