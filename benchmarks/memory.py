"""Peak memory of a command and the processes it starts (workers included), from /proc.

`ru_maxrss` (what `/usr/bin/time -v` prints) only gives the largest single process; a
command that forks workers uses more. Sampled every 0.1 s over the process tree:

- the peak RSS of each process (its kernel high-water mark, `VmHWM`, which is what
  `ru_maxrss` reads), summed over the processes: what `/usr/bin/time -v` would say of
  each process, added up. Pages a worker shares with its parent (the interpreter and the
  modules imported before a fork) count once per process. A child started with vfork
  shares its parent's memory until its exec: it is not counted until then (`ru_maxrss`
  would count its parent's memory in its own);
- the peak of the summed RSS and of the summed PSS (each shared page split between the
  processes sharing it: what the command costs the machine at its worst moment).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def tree(pid: int) -> list[tuple[int, int]]:
    """(process, its parent) for `pid` and its descendants (workers, render processes, their
    helpers), from /proc, parents first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        stat = _read(f"{entry}/stat") if entry.name.isdigit() else ""
        if stat:
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found = [(pid, parents.get(pid, 0))]
    for each, _parent in found:  # grows while it is walked: breadth first
        found.extend((child, each) for child, parent in parents.items() if parent == each)
    return found


def _status_kib(status: str, field: str) -> int:
    _, found, rest = status.partition(f"\n{field}:")
    return int(rest.split()[0]) if found else 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""  # gone meanwhile


def _label(pid: int) -> str:
    command = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    if "resource_tracker" in command:
        return "resource tracker"
    if "multiprocessing" in command:
        return "worker"
    return _read(f"/proc/{pid}/comm").strip() or "child"


class PeakMemory:
    """Samples a running process tree until it exits: `with PeakMemory(popen) as peak:`."""

    def __init__(self, process: subprocess.Popen, interval: float = 0.1) -> None:
        self.process = process
        self.interval = interval
        self.rss_kib = self.pss_kib = 0  # peaks of the sums
        self.peaks: dict[int, int] = {}  # pid -> its own peak RSS (VmHWM), KiB
        self.labels: dict[int, str] = {}  # pid -> what it is (worker, resource tracker…)
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @property
    def peak_rss_kib(self) -> int:
        """The peak RSS of each process, summed (the command's first, then its children)."""
        return sum(self.peaks.values())

    def per_process_mb(self) -> str:
        """Each process's peak RSS in MB: `121 + worker 52 + worker 51 + resource tracker 12`."""
        main, *children = list(self.peaks) or [0]
        parts = [f"{self.peaks.get(main, 0) // 1024}"]
        parts += [f"{self.labels[pid]} {self.peaks[pid] // 1024}" for pid in children]
        return " + ".join(parts)

    def _sample(self) -> None:
        while self.process.poll() is None:
            rss = pss = 0
            memory: dict[int, tuple[int, int]] = {}
            for each, parent in tree(self.process.pid):
                status = _read(f"/proc/{each}/status")
                memory[each] = (_status_kib(status, "VmRSS"), _status_kib(status, "VmHWM"))
                if parent in memory and memory[each] == memory[parent]:
                    # started with vfork and not exec'd yet: its parent's memory, not its own
                    continue
                rollup = _read(f"/proc/{each}/smaps_rollup")
                rss += _status_kib(rollup, "Rss")
                pss += _status_kib(rollup, "Pss")
                if memory[each][1]:
                    self.peaks[each] = max(self.peaks.get(each, 0), memory[each][1])
                    self.labels.setdefault(each, _label(each))
            self.rss_kib, self.pss_kib = max(self.rss_kib, rss), max(self.pss_kib, pss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        if Path("/proc/self/smaps_rollup").exists():
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread.is_alive():
            self._thread.join()
