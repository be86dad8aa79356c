"""The crontab line and systemd unit the README documents, run as written."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from storerows import apply_campaign, import_records, lock_campaign


def _readme_section() -> list[str]:
    """The README's "Running the scheduler" section: what users copy is what runs here."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Running the scheduler", 1)[1].split("\n## ", 1)[0]
    return [line[4:] for line in section.splitlines() if line.startswith("    ")]


_INDENTED = _readme_section()
CRONTAB = next(line for line in _INDENTED if line.startswith("* * * * *"))
SYSTEMD_UNIT = (
    "\n".join(
        _INDENTED[_INDENTED.index("[Unit]") : _INDENTED.index("WantedBy=multi-user.target") + 1]
    )
    + "\n"
)
BIN = str(Path(sys.executable).parent)


def _environment(now: str) -> dict[str, str]:
    return {
        **os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "NO_COLOR": "1",
        "CAMPAIGNCTL_NOW": now,
    }  # fmt: skip


def _workspace(scaffold: Path) -> None:
    store = import_records(scaffold)
    lock_campaign(store, apply_campaign(store, scaffold, "update-2027"))
    store.ensure_schema()


def test_the_crontab_line_runs_a_tick_every_minute(scaffold: Path) -> None:
    from croniter import croniter

    fields = CRONTAB.split(maxsplit=5)
    schedule, command = " ".join(fields[:5]), fields[5]
    runs = croniter(schedule, datetime(2027, 3, 1, 9, 0))
    assert [runs.get_next(datetime).minute for _ in range(3)] == [1, 2, 3]
    _workspace(scaffold)
    command = command.replace("/srv/campaigns", shlex.quote(str(scaffold)))
    command = command.replace("| logger -t campaignctl", "")  # syslog is not ours to test
    result = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True,
        env=_environment("2027-03-01T09:00:20+01:00"),
    )  # fmt: skip
    # the due wave is locked and sent through the scaffold's file transport
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "scheduled: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1)",
        "sent: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): 6 sent, 0 failed",
        "pass at 2027-03-01 08:00:20 UTC: 1 scheduled, 0 missed, 1 sent, 0 waiting, 0 failed, 0 postponed",
    ]


def test_the_systemd_unit_runs_the_daemon_and_sigterm_stops_it(scaffold: Path) -> None:
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read_string(SYSTEMD_UNIT)
    service = unit["Service"]
    assert service["Type"] == "simple"
    _workspace(scaffold)
    daemon = subprocess.Popen(
        shlex.split(service["ExecStart"]), cwd=scaffold, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=_environment("2027-03-01T09:00:20+01:00"),
    )  # fmt: skip
    lines = [daemon.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
    assert [line.split('"type": ')[1].split(",")[0] for line in lines] == [
        '"started"', '"scheduled"', '"sent"', '"pass"',
    ]  # fmt: skip
    tick = subprocess.run(
        ["campaignctl", "scheduler", "tick"], cwd=scaffold, capture_output=True, text=True,
        env=_environment("2027-03-01T09:00:30+01:00"),
    )  # fmt: skip
    assert tick.returncode == 75  # the daemon holds the lease
    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    assert out.splitlines() == [
        '{"type": "stopping", "message": "received signal 15: finishing the wave in flight"}',
        '{"type": "stopped", "message": "scheduler stopped"}',
    ]
