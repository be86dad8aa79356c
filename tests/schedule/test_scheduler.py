"""The scheduler through the real lock and send engine: a month of ticks creates every
wave once at the right local time; two ticks never work at once; a killed worker's wave
is finished by the next tick, and nothing is sent twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from storerows import open_store
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.schedule.scheduler import scheduler_pass
from campaignctl.spec.workspace import load_workspace
from campaignctl.store.tables import OUTBOX, WAVE
from campaignctl.waves.known import SchedulerOptions
from tests.delivery.conftest import SmtpServer

CAMPAIGNCTL = str(Path(sys.executable).parent / "campaignctl")  # the installed console script
PARIS = ZoneInfo("Europe/Paris")
CAMPAIGN = Path("campaigns") / "update-2027.yaml"
ONE_OFF = """schedule:
  send_at: 2027-03-01T09:00                 # workspace time zone unless given
  relaunch:
    - {after: 7d, to: non_responders}
    - {after: 14d, to: non_openers, channels: [sms]}
"""
DAILY = """schedule:
  send_at: 2027-03-01T09:00
  recurrence: {every: day, until: 2027-03-31}
  relaunch:
    - {after: 2d, to: non_responders}
"""
# the accommodation segment: 4 member hotels, campsites and gîtes, each with an email


def prepare(root: Path, *, schedule: str = ONE_OFF, smtp_port: int | None = None):  # type: ignore[no-untyped-def]
    """Import, apply and lock update-2027 with the real commands; returns the store."""
    text = (root / CAMPAIGN).read_text("utf-8")
    assert ONE_OFF in text
    text = text.replace(ONE_OFF, schedule)
    if schedule is DAILY:  # each occurrence reaches everybody again
        text = text.replace("  max_messages_per_contact: 3\n", "")
    (root / CAMPAIGN).write_text(text, "utf-8")
    if smtp_port is not None:
        config = root / "campaignctl.yaml"
        text = config.read_text("utf-8")
        text = text.replace(
            "    transport: file ",
            f"    smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, pool_size: 1,"
            " timeout: 5s}\n    transport: smtp ",
            1,
        ).replace(
            "delivery: {max_attempts: 5, retry_backoff: 5m}",
            "delivery: {max_attempts: 5, retry_backoff: 5m, batch_size: 1}",
        )  # one message in flight at a time: the kill leaves exactly one in doubt
        assert "transport: smtp" in text and "batch_size: 1" in text
        config.write_text(text, "utf-8")
    runner = CliRunner()
    for args in (["audience", "import"], ["apply", "update-2027", "--auto-approve"],
                 ["lock", "update-2027"]):  # fmt: skip
        result = runner.invoke(app, ["--workspace", str(root), *args])
        assert result.exit_code == 0, result.output
    store = open_store(root)
    store.ensure_schema()
    return store


def waves(store) -> list[tuple[str, str, str, str, int]]:
    wave, outbox = WAVE, OUTBOX
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
    scaffold: Path, backend: str
) -> None:
    store = prepare(scaffold, schedule=DAILY)
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
    # one message per address and wave, every one of them written by the file transport
    assert {sent for *_, sent in got} == {4}
    outbox = scaffold / ".campaignctl" / "outbox" / "update-2027"
    assert len(list(outbox.glob("*.eml"))) == 62 * 4


def test_a_wave_later_than_max_lateness_is_missed_and_its_relaunch_too(scaffold: Path) -> None:
    store = prepare(scaffold)
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


def tick(root: Path, now: str, *extra: str) -> subprocess.Popen:
    environment = {
        **os.environ, "CAMPAIGNCTL_NOW": now, "NO_COLOR": "1",
        "CAMPAIGNCTL_SECRET": "scheduler-test-secret",  # real SMTP: links must be signed
    }  # fmt: skip
    return subprocess.Popen(
        [CAMPAIGNCTL, "--workspace", str(root), "scheduler", "tick", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip


def test_two_ticks_started_together_exactly_one_works(
    scaffold: Path, smtp_server: SmtpServer, backend: str
) -> None:
    store = prepare(scaffold, smtp_port=smtp_server.port)
    smtp_server.faults.hold_nth = 0  # the worker's first message waits for the test
    now = "2027-03-01T09:00:30+01:00"
    first, second = tick(scaffold, now), tick(scaffold, now)
    done = {}
    while not done:
        for process in (first, second):
            if process.poll() is not None:
                done[process] = process.communicate()
        time.sleep(0.02)
    loser = next(iter(done))
    assert loser.returncode == 75, done[loser]
    assert done[loser][1].startswith("error: another scheduler holds the lease 'scheduler' since")
    assert smtp_server.handler.delivered_ids() == []
    smtp_server.faults.release.set()
    winner = second if loser is first else first
    out, err = winner.communicate(timeout=120)
    assert winner.returncode == 0, err
    assert out == ""  # text logs are talk: stderr
    assert err.splitlines() == [
        "scheduled: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1)",
        "sent: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): 4 sent, 0 failed",
        "pass at 2027-03-01 08:00:30 UTC: 1 scheduled, 0 missed, 1 sent, 0 waiting, 0 failed, 0 postponed",
    ]
    assert [w[:3] for w in waves(store)] == [("update-2027/0/0", "initial", "done")]
    assert (
        len(smtp_server.handler.delivered_ids())
        == len(set(smtp_server.handler.delivered_ids()))
        == 4
    )


def test_a_killed_worker_s_wave_is_finished_by_the_next_tick_and_nothing_is_sent_twice(
    scaffold: Path, smtp_server: SmtpServer, backend: str
) -> None:
    store = prepare(scaffold, smtp_port=smtp_server.port)
    smtp_server.faults.hold_nth = 2  # two emails go through, the third hangs in DATA
    worker = tick(scaffold, "2027-03-01T09:00:30+01:00")
    while not smtp_server.handler.holding:
        assert worker.poll() is None, worker.communicate()
        time.sleep(0.02)
    worker.kill()  # kill -9 in the middle of the wave, one message in doubt
    worker.communicate()
    before = smtp_server.handler.delivered_ids()
    assert len(before) == 2
    # its lease (ttl 60s) has not expired, but its holder is a dead process of this
    # machine: the next tick takes over at once (tests/store/test_lease.py covers expiry)
    late = tick(scaffold, "2027-03-01T09:00:40+01:00")
    _, err = late.communicate(timeout=120)
    assert late.returncode == 1, err  # uncertain messages: a person decides (cron says so)
    outbox = OUTBOX
    with store.read() as conn:
        rows = conn.execute(sa.select(outbox.c.message_id, outbox.c.state)).all()
    sent = {m for m, state in rows if str(state) == "sent"}
    uncertain = {m for m, state in rows if str(state) == "uncertain"}
    # in doubt: the message held in DATA, and the next one only if it had been handed to
    # another connection when the worker died (a claim not handed over went back to the
    # queue, and the late tick sent it): which of the two depends on that instant
    assert len(rows) == 4 and len(uncertain) in (1, 2) and len(sent) == 4 - len(uncertain)
    assert err.splitlines()[0] == (
        f"sent: update-2027/0/0 (due 2027-03-01 09:00 +0100, wave 1): {2 - len(uncertain)} "
        f"sent, 0 failed, {len(uncertain)} uncertain (maybe delivered before a crash: "
        "`campaignctl send update-2027` lists them, --retry-uncertain resends them)"
    )
    delivered = smtp_server.handler.delivered_ids()
    assert set(before) <= sent and sorted(delivered) == sorted(sent)  # each once, none in doubt
    assert [w[2:] for w in waves(open_store(scaffold))] == [("done", "03-01 09:00 +0100", 4)]


def test_a_send_at_a_year_early_is_warned_planned_missed_and_recorded_as_missed(
    scaffold: Path, monkeypatch
) -> None:
    prepare(scaffold, schedule=ONE_OFF.replace("send_at: 2027-03-01", "send_at: 2026-03-01"))
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T09:00:30+01:00")
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--workspace", str(scaffold), *args])

    checked = run("validate")
    assert checked.exit_code == 0, checked.output  # a warning, not an error
    assert (
        "campaigns/update-2027.yaml:26:12: warning[schedule]: campaign 'update-2027': send_at "
        "2026-03-01 09:00 (Europe/Paris) is in the past: unless it was sent already, the "
        "scheduler records it as missed (later than max_lateness 6h)\n"
        "  hint: check the date (a mistyped year?); `campaignctl plan` shows what the scheduler "
        "will do; `campaignctl send update-2027` sends it by hand\n"
    ) in checked.stdout
    planned = run("plan", "update-2027")
    assert planned.exit_code == 0, planned.output
    missed = [
        "2026-03-01 09:00 CET (+01:00)  first send: will be missed: 365 d late (max_lateness 6h)",
        "2026-03-08 09:00 CET (+01:00)  relaunch 1 (non_responders): will be missed: "
        "358 d late (max_lateness 6h)",
        "2026-03-15 09:00 CET (+01:00)  relaunch 2 (non_openers): will be missed: "
        "351 d late (max_lateness 6h)",
    ]
    assert [line.strip() for line in planned.stdout.splitlines() if "will be" in line] == missed

    ticked = run("scheduler", "tick")

    assert ticked.exit_code == 1, ticked.output  # waves lost: cron must say so
    assert ticked.stderr.splitlines()[:3] == [
        "missed: update-2027/0/0 (due 2026-03-01 09:00 +0100, wave 1): missed: 365 d late "
        "(max_lateness 6h)",
        "missed: update-2027/0/1 (due 2026-03-08 09:00 +0100, wave 2): missed: 358 d late "
        "(max_lateness 6h)",
        "missed: update-2027/0/2 (due 2026-03-15 09:00 +0100, wave 3): missed: 351 d late "
        "(max_lateness 6h)",
    ]
    # recorded: the plan no longer calls them to come, and the next tick says nothing new
    assert "will be" not in run("plan", "update-2027").stdout
    again = run("scheduler", "tick")
    assert again.exit_code == 0, again.output
    assert "0 scheduled, 0 missed, 0 sent" in again.stderr
