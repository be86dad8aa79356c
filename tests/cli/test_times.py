"""Every time printed for a person is local to the workspace's time zone and names the zone
(`clock.local_text`); JSON keeps ISO 8601 instants."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--workspace", str(root), *args])
    assert result.exit_code == 0, result.output
    return result


def tick(root: Path) -> None:
    """A scheduler pass; the demo has waves the clock jumps over (its weekly reminder, its
    membership call), which the pass records as missed (exit 1): only they may make it fail."""
    result = CliRunner().invoke(app, ["--workspace", str(root), "scheduler", "tick"])
    failed = [line for line in result.stderr.splitlines() if line.startswith(("failed", "missed"))]
    assert result.exit_code == (1 if failed else 0), result.output
    assert all(line.startswith("missed: ") for line in failed), failed


@pytest.fixture
def applied(demo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-01-05T07:00:00+00:00")
    run(demo, "audience", "import")
    return demo


def _set_timezone(root: Path, tz: str) -> None:
    config = root / "campaignctl.yaml"
    config.write_text(config.read_text().replace("timezone: Europe/Paris", f"timezone: {tz}", 1))


@pytest.mark.parametrize(
    ("tz", "shown"),
    [
        ("Europe/Paris", "2027-01-05 08:00 CET (+01:00)"),
        ("America/New_York", "2027-01-05 02:00 EST (-05:00)"),
    ],
)
def test_lock_shows_when_in_the_workspace_time_zone_with_the_zone(
    applied: Path, tz: str, shown: str
) -> None:
    _set_timezone(applied, tz)
    run(applied, "apply", "--auto-approve")
    first = run(applied, "lock", "medias-2027")
    assert first.stdout.splitlines()[0] == f"medias-2027: locked {shown} at no git commit (lock 1)"
    again = run(applied, "lock", "medias-2027")  # read back from the store
    assert again.stdout.splitlines()[0] == (
        f"medias-2027: locked since {shown} at no git commit (lock 1)"
    )


def test_scheduler_status_shows_local_times_with_the_zone(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(applied, "apply", "--auto-approve")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T08:00:30+00:00")
    tick(applied)
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-02T09:00:00+00:00")
    monkeypatch.setenv("COLUMNS", "160")  # one line per row
    lines = run(applied, "scheduler", "status", "--days", "7").stdout.splitlines()
    assert lines[0].startswith("scheduler: idle; last pass by ")
    assert lines[0].endswith(" (scheduler tick) ended 2027-03-01 09:00 CET (+01:00)")
    (recent,) = [line for line in lines if "mise-a-jour-2027/0/0" in line]
    assert [c.strip() for c in recent.split("|")][4:6] == ["done", "2027-03-01 09:00 CET (+01:00)"]
    (upcoming,) = [line for line in lines if "relaunch 1 (non_responders)" in line]
    assert upcoming.startswith("| Mon 2027-03-08 09:00 CET (+01:00) | mise-a-jour-2027 ")


def test_a_time_that_does_not_exist_shows_as_03_00_with_its_offset_everywhere(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 02:30 on 2027-03-28 does not exist in Europe/Paris: clocks go from 02:00 to 03:00
    path = applied / "campaigns" / "medias-2027.yaml"
    text = path.read_text().replace("send_at: 2027-03-08T10:00", "send_at: 2027-03-28T02:30")
    path.write_text(text.replace("  relaunch:\n    - {after: 10d, to: non_responders}\n", ""))
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-20T08:00:00+01:00")
    moved = "2027-03-28 02:30 does not exist in Europe/Paris (clock change): runs at 03:00"
    plan = run(applied, "plan", "medias-2027").stdout
    assert f"    2027-03-28 03:00 CEST (+02:00)  first send ({moved})\n" in plan
    calendar = run(applied, "calendar", "--from", "2027-03-28", "--to", "2027-03-28").stdout
    (row,) = [line for line in calendar.splitlines() if "medias-2027" in line]
    assert row.startswith("| Sun 2027-03-28 03:00 CEST (+02:00) | medias-2027 ")
    # the scheduler agrees: not due at 02:59 local (00:59 UTC), due at 03:00 (01:00 UTC)
    run(applied, "apply", "--auto-approve")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-28T00:59:00+00:00")
    tick(applied)
    assert "medias-2027/0/0" not in run(applied, "scheduler", "status").stdout.split("Next")[0]
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-28T01:00:30+00:00")
    tick(applied)
    (recent,) = [
        line
        for line in run(applied, "scheduler", "status").stdout.splitlines()
        if "medias-2027/0/0" in line
    ]
    assert [c.strip() for c in recent.split("|")][4:6] == ["done", "2027-03-28 03:00 CEST (+02:00)"]
