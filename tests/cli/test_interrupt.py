"""Ctrl-C ends every command with exit 130 and one line, "interrupted", whatever fails
while the command unwinds (DESIGN.md §2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A command of the real CLI's group, added for the test: it takes a store transaction
# and is interrupted in it; CLEAN_UP says what the clean-up then does.
SCRIPT = """
import os, sys, time
from campaignctl.cli import main as cli
from campaignctl.store import Store
import sqlalchemy as sa

@cli.app.command("zz-wait")
def wait() -> None:
    store = Store(os.environ["CAMPAIGNCTL_STORE"])
    with store.transaction() as conn:
        conn.execute(sa.text("SELECT 1"))
        print("ready", flush=True)
        try:
            time.sleep(60)
        finally:
            if os.environ["CLEAN_UP"] == "fails":
                # as psycopg does when a connection still runs the interrupted query
                raise RuntimeError("can't change 'autocommit' now: connection in "
                                   "transaction status ACTIVE")

cli.main()
"""


@pytest.mark.parametrize("clean_up", ["works", "fails"])
def test_ctrl_c_exits_130_and_says_interrupted_even_when_the_clean_up_fails(
    tmp_path: Path, clean_up: str
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "CAMPAIGNCTL_STORE": f"sqlite:///{tmp_path / 'store.db'}",
        "CLEAN_UP": clean_up,
    }
    process = subprocess.Popen(
        [sys.executable, str(script), "zz-wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", process.communicate()
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert (process.returncode, err) == (130, "interrupted\n")
