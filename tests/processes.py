"""Processes as /proc shows them (Linux): the tests that kill a command check its children."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first, then parent)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(entry.name)[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for whoever adopted it to reap it."""
    try:
        return _stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
