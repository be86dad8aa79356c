"""A full disk is a temporary failure (exit 75) that names where space ran out, and the next
run, once there is room, goes on: a real 5 MB tmpfs holds the workspace and its store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2027-03-01T10:00:00+01:00"  # a Monday morning: no quiet hours


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 5 MB tmpfs, mounted for the test (as root) and unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 5 MB tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; returns the file to delete to give them back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):  # big blocks, then the last bytes one by one
            try:
                while os.write(fd, b"\0" * size) == size:
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args], env={"CAMPAIGNCTL_NOW": NOW})


@pytest.fixture
def locked(disk: Path, scaffold: Path) -> Path:
    root = disk / "ws"
    shutil.copytree(scaffold, root)
    for step in (["audience", "import"], ["apply", "--auto-approve"], ["lock", "update-2027"]):
        result = run(root, *step)
        assert result.exit_code == 0, result.output
    return root


def test_a_send_on_a_full_disk_exits_75_naming_the_store_and_the_next_one_sends_all(
    disk: Path, locked: Path
) -> None:
    filler = fill(disk)
    result = run(locked, "send", "update-2027", "--now")
    assert result.exit_code == 75, result.output
    store = locked / ".campaignctl" / "store.db"
    assert result.stderr.splitlines()[-2:] == [
        f"error: no space left on {store}",
        "  hint: free some space there, then run the command again: every write is whole or "
        "not at all, so what was recorded is kept and the command goes on from there",
    ]
    filler.unlink()
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    again = run(locked, "send", "update-2027", "--now")
    assert again.exit_code == 0, again.output
    assert again.stderr.splitlines()[-1].startswith(
        "update-2027 wave 1: 4 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain"
    )
    assert len(list((locked / ".campaignctl" / "outbox" / "update-2027").glob("*.eml"))) == 4


def test_an_output_file_on_a_full_disk_is_named(disk: Path, scaffold: Path) -> None:
    fill(disk)  # the workspace is elsewhere: only the file goes to the full disk
    ics = disk / "calendar.ics"
    result = run(scaffold, "calendar", "--from", "2027-03-01", "--ics", str(ics))
    assert result.exit_code == 75, result.output
    assert result.stderr.splitlines()[0] == f"error: no space left on {ics}"
