"""The scheduler: a month of ticks creates every wave once at the right local time;
two ticks never work at once; a killed worker's wave is completed by the next tick."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from storerows import apply_campaign, import_records, lock_campaign, open_store

from campaignctl.schedule.scheduler import SchedulerOptions, scheduler_pass
from campaignctl.spec.workspace import load_workspace
from campaignctl.store.tables import Outbox, Wave

REPO = Path(__file__).resolve().parents[2]
FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fake_engine"
CAMPAIGNCTL = str(Path(sys.executable).parent / "campaignctl")  # the installed console script
PARIS = ZoneInfo("Europe/Paris")
DAILY = {
    "send_at": "2027-03-01T09:00",
    "recurrence": {"every": "day", "until": "2027-03-31"},
    "relaunch": [{"after": "2d", "to": "non_responders"}],
}


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(FAKE_ENGINE))
    try:
        import sitecustomize as fake
    finally:
        sys.path.remove(str(FAKE_ENGINE))
    from campaignctl.schedule import runner

    monkeypatch.setattr(runner, "lock_for_wave", fake.lock_for_wave)
    monkeypatch.setattr(runner, "send_wave", fake.send_wave)


def waves(store) -> list[tuple[str, str, str, str, int]]:
    wave, outbox = Wave.__table__, Outbox.__table__
    with store.read() as conn:
        rows = conn.execute(
            sa.select(wave.c.occurrence_key, wave.c.kind, wave.c.status, wave.c.scheduled_for,
                      sa.select(sa.func.count()).where(outbox.c.wave_id == wave.c.id)
                      .scalar_subquery())
            .order_by(wave.c.number)
        ).all()  # fmt: skip
    return [
        (key, str(kind), str(status),
         f"{when.replace(tzinfo=UTC).astimezone(PARIS):%m-%d %H:%M %z}", sent)
        for key, kind, status, when, sent in rows
    ]  # fmt: skip


def test_a_month_of_daily_sends_and_relaunches_creates_every_wave_once(
    scaffold: Path, fake_engine: None
) -> None:
    store = import_records(scaffold)
    campaign_id = apply_campaign(
        store, scaffold, "update-2027", schedule=DAILY,
        options={"group_by_email": True, "max_messages_per_contact": None},
    )  # fmt: skip
    lock_campaign(store, campaign_id)
    ws = load_workspace(scaffold).require_valid()
    options = SchedulerOptions.from_workspace(ws)
    now = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)
    while now < datetime(2027, 4, 4, tzinfo=UTC):  # a tick every two hours
        scheduler_pass(store, ws, options, now=now)
        now += timedelta(hours=2)
    got = waves(store)
    expected = []
    for day in range(31):
        date = datetime(2027, 3, 1 + day, 9, tzinfo=PARIS)
        expected.append((f"update-2027/{day}/0", "initial" if day == 0 else "recurrence", date))
        expected.append((f"update-2027/{day}/1", "relaunch", date + timedelta(days=2)))
    expected.sort(key=lambda w: (w[2], w[0]))
    assert [(k, kind, status, when) for k, kind, status, when, _ in got] == [
        (key, kind, "done", f"{when:%m-%d %H:%M %z}") for key, kind, when in expected
    ]
    # 09:00 local on both sides of the clock change (2027-03-28)
    assert got[0][3] == "03-01 09:00 +0100" and got[-1][3] == "04-02 09:00 +0200"
    # 7 records, 6 addresses (two gîtes share one): one message per address and wave
    assert {sent for *_, sent in got} == {6}


def test_a_wave_later_than_max_lateness_is_missed_and_its_relaunch_too(
    scaffold: Path, fake_engine: None
) -> None:
    store = import_records(scaffold)
    campaign_id = apply_campaign(store, scaffold, "update-2027")
    lock_campaign(store, campaign_id)
    ws = load_workspace(scaffold).require_valid()
    options = SchedulerOptions.from_workspace(ws)
    result = scheduler_pass(store, ws, options, now=datetime(2027, 3, 9, 8, 0, tzinfo=UTC))
    assert [a.text() for a in result.actions] == [
        "missed: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): missed: 8 d late "
        "(max_lateness 6h)",
        "missed: update-2027/0/1 (due 2027-03-08 09:00 +0100, wave 2): missed: 24 h late "
        "(max_lateness 6h)",
    ]
    again = scheduler_pass(store, ws, options, now=datetime(2027, 3, 9, 8, 1, tzinfo=UTC))
    assert again.actions == []


def tick(root: Path, now: str, *extra: str, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ, "CAMPAIGNCTL_NOW": now, "NO_COLOR": "1",
        "PYTHONPATH": str(FAKE_ENGINE), "FAKE_ENGINE": "1", **env,
    }  # fmt: skip
    return subprocess.Popen(
        [CAMPAIGNCTL, "--workspace", str(root), "scheduler", "tick", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip


def test_two_ticks_started_together_exactly_one_works(scaffold: Path, tmp_path: Path) -> None:
    store = import_records(scaffold)
    lock_campaign(store, apply_campaign(store, scaffold, "update-2027"))
    store.ensure_schema()
    hold = tmp_path / "go"
    now = "2027-03-01T09:00:30+01:00"
    first, second = (tick(scaffold, now, FAKE_ENGINE_HOLD=str(hold)) for _ in range(2))
    # the worker waits inside its send until `go` exists: the other one must give up first
    done = {}
    while not done:
        for process in (first, second):
            if process.poll() is not None:
                done[process] = process.communicate()
    loser = next(iter(done))
    assert loser.returncode == 75, done[loser]
    assert done[loser][1].startswith("error: another scheduler holds the lease 'scheduler' since")
    hold.touch()
    winner = second if loser is first else first
    out, err = winner.communicate(timeout=120)
    assert winner.returncode == 0, err
    assert out == ""  # text logs are talk: stderr
    assert err.splitlines() == [
        "scheduled: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1)",
        "sent: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): 6 sent, 0 failed",
        "pass at 2027-03-01 08:00:30 UTC: 1 scheduled, 0 missed, 1 sent, 0 failed, 0 postponed",
    ]
    assert [w[:3] for w in waves(store)] == [("update-2027/0/0", "initial", "done")]


def test_a_killed_worker_s_wave_is_completed_after_lease_expiry_without_duplicates(
    scaffold: Path, tmp_path: Path
) -> None:
    store = import_records(scaffold)
    lock_campaign(store, apply_campaign(store, scaffold, "update-2027"))
    store.ensure_schema()
    log, stalled = tmp_path / "transport.log", tmp_path / "stalled"
    worker = tick(
        scaffold, "2027-03-01T09:00:30+01:00", FAKE_ENGINE_LOG=str(log),
        FAKE_ENGINE_STALL_AFTER="2", FAKE_ENGINE_STALLED=str(stalled),
    )  # fmt: skip
    while not stalled.exists():
        assert worker.poll() is None, worker.communicate()
        time.sleep(0.05)
    worker.kill()  # kill -9 in the middle of the wave
    worker.communicate()
    assert len(log.read_text().splitlines()) == 2
    early = tick(scaffold, "2027-03-01T09:01:00+01:00", FAKE_ENGINE_LOG=str(log))
    assert early.wait(timeout=120) == 75  # the lease (ttl 60s) has not expired yet
    late = tick(scaffold, "2027-03-01T09:01:31+01:00", FAKE_ENGINE_LOG=str(log))
    _, err = late.communicate(timeout=120)
    assert late.returncode == 0, err
    assert err.splitlines()[0] == (
        "sent: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): 4 sent, 0 failed"
    )
    lines = log.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 6  # every address once
    assert [w[2:] for w in waves(open_store(scaffold))] == [("done", "03-01 09:00 +0100", 6)]
