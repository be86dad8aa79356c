"""An import killed with SIGKILL: its workers exit with it, and the next import removes
the staging folder it left (it holds contact data), never a live import's."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.gen_contacts import row
from campaignctl.audience.importer import (
    STAGING_PREFIX,
    ImportOptions,
    import_audiences,
    staging_folder,
)
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import Store
from tests.processes import running

HEADER = "id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n"
RUN_CLI = "import sys; from campaignctl.cli.main import main; sys.argv[0] = 'campaignctl'; main()"
DEADLINE = 120  # seconds: a loaded machine is slow, a process that never exits fails anyway


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (its workers, their resource tracker), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rpartition(")")[2].split()[1]
                )
            except (OSError, IndexError):
                continue
    found = [pid]
    for each in found:
        found.extend(child for child, parent in parents.items() if parent == each)
    return found[1:]


def _workers(pid: int) -> list[int]:
    found = []
    for child in _descendants(pid):
        with contextlib.suppress(OSError):
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                found.append(child)
    return found


def _poll(condition, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return value


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers in /proc")
def test_the_workers_of_an_import_killed_with_sigkill_exit_and_its_folder_goes_next_time(
    scaffold: Path,
) -> None:
    rng = random.Random(5)
    csv_file = scaffold / "audiences" / "contacts.csv"
    small = csv_file.read_text()
    lines = (";".join([*row(rng, i), ""]) + "\n" for i in range(150_000))
    csv_file.write_text(HEADER + "".join(lines))  # big enough for workers and a few seconds
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "--workspace", str(scaffold), "audience", "import"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _poll(lambda: _workers(process.pid)[1:], "no two workers")  # both started
        children = _descendants(process.pid)  # the workers and their resource tracker
    finally:
        process.send_signal(signal.SIGKILL)  # the importer alone, as `timeout -s KILL` does
        process.wait()
    _poll(lambda: not any(running(pid) for pid in children), f"still running: {children}")

    state = scaffold / ".campaignctl"
    left = [p.name for p in state.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(left) == 1, left  # the killed import's, with its contact data
    csv_file.write_text(small)
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, "--workspace", str(scaffold), "audience", "import"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in state.iterdir() if p.name.startswith(STAGING_PREFIX)] == []


def test_an_import_removes_the_staging_folders_of_dead_imports_only(
    scaffold: Path, store: Store, tmp_path: Path
) -> None:
    """Beside a SQLite store; in the system's temporary folder for PostgreSQL, which
    other imports share."""
    parent = Path(store.engine.url.database).parent if store.dialect == "sqlite" else None
    parent = parent or Path(tempfile.gettempdir())
    dead = parent / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    dead.mkdir()
    (dead / "owner").write_text("4242\n")  # nobody holds its lock: its import is gone
    (dead / "keys.db").write_bytes(b"contact data")
    ws = load_workspace(scaffold).require_valid()
    with staging_folder(str(parent)) as live:  # another import, running meanwhile
        assert import_audiences(store, ws, None, ImportOptions())[0].added == 7
        assert Path(live).is_dir() and not dead.exists()
    assert not Path(live).exists()
