"""The send engine against a real SMTP server: faults, rules that hold everywhere, crashes,
and two senders at once (SQLite and PostgreSQL), counted on the server's side."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.spec.workspace import load_workspace
from tests.delivery.conftest import SmsProvider, SmtpServer
from tests.delivery.locking import lock_campaign, locked_demo, open_store
from tests.delivery.sendkit import HEADER, cli, use_smtp, write_contacts
from tests.processes import child_pids, running

CAMPAIGN = "mise-a-jour-2027"
MORNING = "2026-11-23T10:00:00+01:00"
AN_HOUR_LATER = "2026-11-23T11:00:00+01:00"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"CAMPAIGNCTL_NOW": MORNING, "CAMPAIGNCTL_SECRET": "s3cret-for-tests"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _run(root: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def _rows(root: Path, sql: str, url: str | None = None) -> list[tuple]:
    store = open_store(root, url)
    with store.read() as conn:
        rows = [tuple(row) for row in conn.execute(sa.text(sql))]
    store.close()
    return rows


# --------------------------------------------------------------------------- faults


def test_smtp_faults_retry_fail_bounce_and_a_reply_lost_after_data_is_retried(
    demo: Path,
    smtp_server: SmtpServer,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    use_smtp(demo, smtp_server.port)
    write_contacts(demo, 30)
    locked_demo(demo, CAMPAIGN)
    faults = smtp_server.faults
    faults.tempfail_data["c1@d1.example"] = 1  # 451 once
    faults.unknown_users.add("c2@d2.example")  # 550 5.1.1
    faults.reject_data["c3@d3.example"] = "554 5.7.1 Message refused by policy"
    faults.drop_after_data["c4@d4.example"] = 1  # connection lost after the end of data
    faults.drop_at_rcpt["c5@d5.example"] = 1  # connection lost before DATA
    faults.data_delay = 0.01  # and slow

    first = _run(demo, "send", CAMPAIGN, "--now")

    assert first.exit_code == 1, first.output
    lines = first.stderr.splitlines()[1:]  # after the note that it goes before its schedule
    # the reply lost after DATA is a temporary failure, retried as Postfix does
    assert lines[1] == (
        "mise-a-jour-2027 wave 1: 25 sent, 1 failed, 1 bounced, 3 retrying, 0 uncertain, "
        "0 suppressed, 0 skipped (" + lines[1].split("(")[1]
    )
    assert lines[2] == (
        "3 retrying, next attempt Mon 23/11 10:01 (Europe/Paris): the scheduler's first pass "
        "after that sends them, or run `campaignctl send mise-a-jour-2027` again then."
    )
    errors = dict(_rows(demo, "SELECT address, error FROM outbox WHERE state = 'queued'"))
    assert errors["c4@d4.example"].startswith(
        f"connection to 127.0.0.1:{smtp_server.port} lost after the end of data: "
    )

    monkeypatch.setenv("CAMPAIGNCTL_NOW", AN_HOUR_LATER)
    second = _run(demo, "send", CAMPAIGN, "--now")

    assert second.exit_code == 0, second.output
    assert "3 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain" in second.stderr
    delivered = Counter(smtp_server.handler.delivered_ids())
    assert len(delivered) == 28 and set(delivered.values()) == {1}
    # the 451 and both lost connections arrived after one retry; the 5xx were tried once
    states = dict(_rows(demo, "SELECT address, state || ':' || attempts FROM outbox"))
    assert states["c1@d1.example"] == "sent:2"
    assert states["c4@d4.example"] == "sent:2"
    assert states["c5@d5.example"] == "sent:2"
    assert states["c2@d2.example"] == "bounced:1"
    assert states["c3@d3.example"] == "failed:1"
    # the server got c4's first copy without answering it: the duplicate Postfix accepts too
    assert Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)["c4@d4.example"] == 2
    errors = dict(_rows(demo, "SELECT address, error FROM outbox WHERE state = 'failed'"))
    assert errors == {"c3@d3.example": "554 5.7.1 Message refused by policy"}
    # the hard bounce is a suppression for everything, and an event
    assert _rows(demo, "SELECT channel, address, category, reason FROM suppression") == [
        ("email", "c2@d2.example", None, "bounced")
    ]
    events = _rows(demo, "SELECT id, type, address, data FROM event")
    data = [d if isinstance(d, dict) else json.loads(d) for *_, d in events]  # JSONB or text
    assert [(t, a, d["kind"], d["code"]) for (_, t, a, _), d in zip(events, data, strict=True)] == [
        ("bounced", "c2@d2.example", "hard", "5.1.1")
    ]
    # the message id (32 hex digits at the sender's domain) is too long for the key (64):
    # the bounce is named by its outbox row, one per message whoever records it
    outbox_id = _rows(demo, "SELECT id FROM outbox WHERE address = 'c2@d2.example'")[0][0]
    assert events[0][0] == f"send:{outbox_id}:bounced"


def test_a_reply_lost_after_data_on_the_last_attempt_leaves_the_message_uncertain(
    demo: Path,
    smtp_server: SmtpServer,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    use_smtp(demo, smtp_server.port)  # max_attempts: 3
    write_contacts(demo, 3)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.drop_after_data["c1@d1.example"] = 3
    results = []
    for now in (MORNING, AN_HOUR_LATER, "2026-11-23T12:00:00+01:00"):
        monkeypatch.setenv("CAMPAIGNCTL_NOW", now)
        results.append(_run(demo, "send", CAMPAIGN, "--now"))

    # 75 while the message waits for its retry, 1 once it is uncertain
    assert [r.exit_code for r in results] == [75, 75, 1], [r.output for r in results]
    assert _rows(demo, "SELECT state, attempts FROM outbox WHERE address = 'c1@d1.example'") == [
        ("uncertain", 3)
    ]
    lines = results[-1].stderr.splitlines()
    assert "0 sent, 0 failed, 0 bounced, 0 retrying, 1 uncertain" in lines[1]
    assert lines[3].startswith("  email c1@d1.example (record HOT-000001, message ")
    third = _run(demo, "send", CAMPAIGN, "--now", "--retry-uncertain")
    assert third.exit_code == 0, third.output
    assert Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)["c1@d1.example"] == 4


def test_a_hard_bounce_is_skipped_by_later_waves_and_campaigns(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str], backend: str
) -> None:
    use_smtp(demo, smtp_server.port)
    write_contacts(demo, 10)
    other_file = demo / "campaigns" / "merci-mise-a-jour.yaml"
    other_file.write_text(  # a campaign that may solicit the same records
        # sent by hand: without its trigger and steps (an automation is not sent by hand)
        other_file.read_text(encoding="utf-8").split("\ntrigger:")[0]
        + "\noptions: {respect_other_campaigns: false}\n",
        encoding="utf-8",
    )
    locked_demo(demo, CAMPAIGN)
    store = open_store(demo)
    lock_campaign(store, load_workspace(demo), "merci-mise-a-jour")  # locked before the bounce
    store.close()
    smtp_server.faults.unknown_users.add("c2@d2.example")
    assert _run(demo, "send", CAMPAIGN, "--now").exit_code == 1
    store = open_store(demo)
    with store.transaction() as conn:  # a relaunch wave, as the scheduler will create it
        conn.execute(
            sa.text(
                "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, lock_id, "
                "created_at) VALUES (1, 2, 'relaunch', 'relaunch-1', 'scheduled', 1, :now)"
            ),
            {"now": "2026-11-23 09:00:00"},
        )
    store.close()

    relaunch = _run(demo, "send", CAMPAIGN, "--now")
    other = _run(demo, "send", "merci-mise-a-jour", "--now")

    assert relaunch.exit_code == 0, relaunch.output
    assert other.exit_code == 0, other.output
    for result, name in ((relaunch, CAMPAIGN), (other, "merci-mise-a-jour")):
        assert f"{name} wave {2 if name == CAMPAIGN else 1}: 9 sent, 0 failed, 0 bounced, " in (
            result.stderr
        )
        assert "0 retrying, 0 uncertain, 1 suppressed, 0 skipped" in result.stderr
    assert _rows(demo, "SELECT wave_id, reason FROM outbox WHERE state = 'suppressed'") == [
        (2, "suppressed: bounced"),
        (3, "suppressed: bounced"),
    ]
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert copies["c2@d2.example"] == 0 and len(copies) == 9
    assert set(copies.values()) == {3}


def test_never_past_max_messages_per_contact(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str], backend: str
) -> None:
    use_smtp(demo, smtp_server.port)
    write_contacts(demo, 5)
    locked_demo(demo, CAMPAIGN)  # max_messages_per_contact: 3
    assert _run(demo, "send", CAMPAIGN, "--now").exit_code == 0
    store = open_store(demo)
    with store.transaction() as conn:  # two relaunches reached c0 (and c1 only once more)
        for number in (2, 3):
            conn.execute(
                sa.text(
                    "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, "
                    "lock_id, created_at) VALUES (1, :n, 'relaunch', :key, 'done', 1, :now)"
                ),
                {"n": number, "key": f"relaunch-{number}", "now": "2026-11-23 09:00:00"},
            )
            for address in ("c0@d0.example",) + (("c1@d1.example",) if number == 2 else ()):
                conn.execute(
                    sa.text(
                        "INSERT INTO outbox (campaign_id, wave_id, channel, address, state, "
                        "attempts, created_at, updated_at) VALUES (1, :w, 'email', :a, 'sent', "
                        "1, :now, :now)"
                    ),
                    {"w": number, "a": address, "now": "2026-11-23 09:00:00"},
                )
        conn.execute(
            sa.text(
                "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, lock_id, "
                "created_at) VALUES (1, 4, 'relaunch', 'relaunch-4', 'scheduled', 1, :now)"
            ),
            {"now": "2026-11-23 09:00:00"},
        )
    store.close()

    fourth = _run(demo, "send", CAMPAIGN, "--now")

    assert fourth.exit_code == 0, fourth.output
    assert "4 sent, 0 failed, 0 bounced, 0 retrying, 0 uncertain, 0 suppressed, 1 skipped" in (
        fourth.stderr
    )
    assert _rows(
        demo, "SELECT address, reason FROM outbox WHERE wave_id = 4 AND state = 'skipped'"
    ) == [("c0@d0.example", "max_messages_per_contact (3) reached")]


# --------------------------------------------------------------------------- crashes


def test_kill_9_leaves_uncertain_only_what_was_handed_over_and_the_rest_goes_out_once(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    # The scene: 10 connections to a server answering about 200 msg/s, 3,000
    # recipients, batches of 200, five kill -9 at random moments of the send.
    use_smtp(demo, smtp_server.port, batch_size=200, pool_size=10)
    addresses = write_contacts(demo, 3_000)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.05
    chance = random.Random(16)
    uncertain_at_start: list[int] = []
    claimed_at_kill: list[int] = []
    for _ in range(5):
        process = cli(demo, "send", CAMPAIGN, "--now", "--json")
        assert process.stdout is not None
        for line in process.stdout:
            event = json.loads(line)
            if event["type"] == "start":
                uncertain_at_start.append(event["uncertain"])
            if event["type"] in ("progress", "summary"):
                break
        assert process.poll() is None, process.communicate()
        time.sleep(chance.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)  # its render processes hold the pipes: they end too
        claimed_at_kill.append(
            _rows(demo, "SELECT count(*) FROM outbox WHERE state = 'sending'")[0][0]
        )
    final = cli(demo, "send", CAMPAIGN, "--now", "--json")
    out, err = final.communicate()
    events = [json.loads(line) for line in out.splitlines()]
    uncertain_at_start.append(next(e for e in events if e["type"] == "start")["uncertain"])
    summary = events[-1]

    # the kills hit whole claimed batches, yet each left at most 50 messages in doubt
    increases = [b - a for a, b in itertools.pairwise(uncertain_at_start)]
    figures = f"claimed at each kill {claimed_at_kill}, then uncertain {increases}"
    assert max(claimed_at_kill) > 200, figures
    assert all(0 <= n <= 50 for n in increases), figures
    assert final.returncode == (1 if summary["uncertain"] else 0), err
    uncertain = {row["address"] for row in summary["uncertain_rows"]}
    assert len(uncertain) == summary["uncertain"] == uncertain_at_start[-1]
    # the resumed send delivered every other message exactly once
    sent = {a for (a,) in _rows(demo, "SELECT address FROM outbox WHERE state = 'sent'")}
    assert sent | uncertain == set(addresses) and not sent & uncertain
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert {a: n for a, n in copies.items() if a in sent and n != 1} == {}
    assert all(copies[a] <= 1 for a in uncertain)

    retry = cli(demo, "send", CAMPAIGN, "--now", "--retry-uncertain")
    _, err = retry.communicate()
    assert retry.returncode == 0, err
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert set(copies) == set(addresses)  # nothing lost
    assert {a for a, n in copies.items() if n > 1} <= uncertain  # duplicates only there


def test_a_stopped_senders_claims_are_settled_by_what_it_had_handed_over(
    demo: Path, backend: str, env: dict[str, str]
) -> None:
    url = os.environ.get("CAMPAIGNCTL_STORE")
    write_contacts(demo, 100)  # the demo's file transport
    locked_demo(demo, CAMPAIGN, url)
    assert _run(demo, "send", CAMPAIGN, "--now", "--limit", "10").exit_code == 0
    # A sender on another machine claimed 60 rows and stopped (its claims' lease ran out
    # an hour ago). It had handed two slices to its transport: the first of 5 messages had
    # all its outcomes (sent, since nothing else was written), the second of 7 had not.
    store = open_store(demo, url)
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    with store.transaction() as conn:
        rows = conn.execute(
            sa.text("SELECT id, wave_id FROM outbox WHERE state = 'queued' ORDER BY id LIMIT 60")
        ).all()
        ids = [row_id for row_id, _ in rows]
        conn.execute(
            sa.text(
                "UPDATE outbox SET state = 'sending', claimed_by = 'far-host:4242', "
                "lease_expires_at = :at WHERE id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"at": at, "ids": ids},
        )
        for part, done in ((ids[:5], at), (ids[5:12], None)):
            conn.execute(
                sa.text(
                    "INSERT INTO outbox_handover (wave_id, holder, messages, handed_at, done_at) "
                    "VALUES (:wave, 'far-host:4242', :messages, :at, :done)"
                ),
                {
                    "wave": rows[0][1], "at": at, "done": done,
                    "messages": json.dumps([[i, f"far-{i}@example.org"] for i in part]),
                },
            )  # fmt: skip
    store.close()

    result = _run(demo, "send", CAMPAIGN, "--now", "--json")

    assert result.exit_code == 1, result.output  # 7 uncertain
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"type": "warning", "message": (
        "48 message(s) claimed by a sender that stopped (far-host:4242) before handing them "
        "over went back to the queue; 5 it had sent are recorded as sent"
    )} in events  # fmt: skip
    summary = events[-1]
    assert (summary["sent"], summary["uncertain"], summary["total"]) == (78, 7, 100)
    assert [row["id"] for row in summary["uncertain_rows"]] == ids[5:12]
    assert summary["uncertain_rows"][0]["message_id"] == f"far-{ids[5]}@example.org"
    assert summary["uncertain_rows"][0]["error"] == (
        "sender far-host:4242 stopped while sending (it may or may not have gone out)"
    )
    assert _rows(
        demo, f"SELECT state, attempts, message_id FROM outbox WHERE id = {ids[0]}", url
    ) == [("sent", 1, f"far-{ids[0]}@example.org")]
    assert _rows(demo, "SELECT count(*) FROM outbox WHERE state = 'sent'", url) == [(100 - 7,)]
    assert _rows(demo, "SELECT count(*) FROM outbox_handover", url) == [(0,)]


def test_sigterm_stops_claiming_finishes_in_flight_and_exits_143(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    use_smtp(demo, smtp_server.port, batch_size=20)
    write_contacts(demo, 600)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.005
    process = cli(demo, "send", CAMPAIGN, "--now", "--json")
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "progress":
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate()

    assert process.returncode == 143, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["stopped"] == "SIGTERM"
    assert summary["uncertain"] == 0 and summary["remaining"] > 0
    assert _rows(demo, "SELECT count(*) FROM outbox WHERE state = 'sending'") == [(0,)]
    sent = _rows(demo, "SELECT count(*) FROM outbox WHERE state = 'sent'")[0][0]
    assert len(smtp_server.handler.delivered_ids()) == sent


def test_a_stop_sends_what_was_handed_over_and_puts_the_other_claims_back_in_the_queue(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    from campaignctl.delivery.engine import SendOptions, StopRequest, send_campaign

    use_smtp(demo, smtp_server.port, batch_size=200, pool_size=4)  # 20 handed over at most
    write_contacts(demo, 600)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.002
    stop = StopRequest()
    sent_when_stopped: list[int] = []

    def progress(event: object) -> None:  # SIGTERM as the first batch is recorded
        if event.type == "progress" and not stop.requested:  # type: ignore[attr-defined]
            sent_when_stopped.append(event.data["sent"])  # type: ignore[attr-defined]
            stop.request("SIGTERM")

    store = open_store(demo)
    try:
        summary = send_campaign(
            store, load_workspace(demo), CAMPAIGN,
            SendOptions(progress=progress, stop=stop, render_processes=0),
        )  # fmt: skip
    finally:
        store.close()

    # Two batches of 200 were claimed; of the second, only what the window had handed
    # over (20, and at most 20 more finished while the first batch's last slice ran)
    # went out: the rest is queued again, not sent and not uncertain.
    assert summary.stopped == "SIGTERM"
    assert sent_when_stopped == [200]
    assert 200 <= summary.sent <= 240, summary
    assert (summary.uncertain, summary.remaining) == (0, 600 - summary.sent)
    assert _rows(demo, "SELECT count(*) FROM outbox WHERE state = 'sending'") == [(0,)]
    copies = smtp_server.handler.copies()
    assert len(copies) == summary.sent and set(copies.values()) == {1}


# --------------------------------------------------------------------------- two senders


WORKER = """
import sys
import time
from pathlib import Path
from campaignctl.delivery.engine import SendOptions, send_campaign
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import Store
root = Path(sys.argv[1])
store = Store(sys.argv[2], root=root)
workspace = load_workspace(root)
store.ensure_schema()
(root / sys.argv[4]).touch()  # ready; start together so that both really compete
while not (root / "go").exists():
    time.sleep(0.01)
summary = send_campaign(store, workspace, sys.argv[3],
                        SendOptions(hold_lease=False, batch_size=10, render_processes=0))
print(summary.sent)
"""


def _pg_url() -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({exc.orig})")
    finally:
        admin.dispose()
    return f"{base}?options=-csearch_path%3D{schema}", schema


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_senders_at_once_deliver_every_message_exactly_once(
    backend: str,
    demo: Path,
    smtp_server: SmtpServer,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, schema = ("sqlite:///.campaignctl/store.db", None)
    if backend == "postgresql":
        url, schema = _pg_url()
        monkeypatch.setenv("CAMPAIGNCTL_STORE", url)
    try:
        use_smtp(demo, smtp_server.port)
        write_contacts(demo, 600)
        locked_demo(demo, CAMPAIGN, url)
        smtp_server.faults.data_delay = 0.002
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(demo), url, CAMPAIGN, f"ready{number}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for number in range(2)
        ]
        while not all((demo / f"ready{n}").exists() for n in range(2)):
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.01)
        (demo / "go").touch()
        results = [worker.communicate() for worker in workers]
        assert [w.returncode for w in workers] == [0, 0], results
        sent = [int(out) for out, _ in results]

        copies = Counter(smtp_server.handler.copies())
        assert len(copies) == 600 and set(copies.values()) == {1}
        assert sum(sent) == 600 and min(sent) > 0  # both took part
        assert _rows(demo, "SELECT state, count(*) FROM outbox GROUP BY state", url) == [
            ("sent", 600)
        ]
    finally:
        if schema:
            admin = sa.create_engine(
                "postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def test_a_second_send_command_waits_for_the_first_with_lock_timeout(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    use_smtp(demo, smtp_server.port, batch_size=20)
    write_contacts(demo, 300)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.002
    first = cli(demo, "send", CAMPAIGN, "--now")
    # the first holds the lease once its first message reached the server: only then is
    # the second one sure to be the one that waits (a fixed sleep lost under load)
    deadline = time.monotonic() + 60
    while not smtp_server.handler.copies() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = cli(demo, "send", CAMPAIGN, "--now", "--lock-timeout", "2m")
    outputs = [first.communicate(), second.communicate()]

    assert (first.returncode, second.returncode) == (0, 0), outputs
    copies = smtp_server.handler.copies()
    assert len(copies) == 300 and set(copies.values()) == {1}


# --------------------------------------------------------------------------- render processes


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the render processes in /proc")
def test_a_render_process_killed_mid_send_leaves_no_uncertain_row(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    # 2,400 rows: enough for the engine to render in separate processes
    use_smtp(demo, smtp_server.port, batch_size=50)
    write_contacts(demo, 2_400)
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.002
    process = cli(demo, "send", CAMPAIGN, "--now", "--json")
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "progress":
            break
    renderers = child_pids(process.pid)
    assert renderers, "no render process"
    for pid in renderers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, err = process.communicate()
    assert process.returncode != 0, err

    # The batches that were being rendered went back to the queue: nothing is
    # uncertain, and the next send delivers every message exactly once.
    assert _rows(demo, "SELECT count(*) FROM outbox WHERE state IN ('sending', 'uncertain')") == [
        (0,)
    ]
    again = cli(demo, "send", CAMPAIGN, "--now", "--json")
    out, err = again.communicate()
    assert again.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["uncertain"] == 0 and summary["total"] == 2_400
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert len(copies) == 2_400 and set(copies.values()) == {1}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the render processes in /proc")
def test_a_kill_9_of_send_alone_ends_its_render_processes_and_resource_tracker(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    use_smtp(demo, smtp_server.port, batch_size=50)
    write_contacts(demo, 2_400)  # enough for the engine to render in separate processes
    locked_demo(demo, CAMPAIGN)
    smtp_server.faults.data_delay = 0.01
    process = cli(demo, "send", CAMPAIGN, "--now", "--json")
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "progress":
            break
    children = child_pids(process.pid)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
    assert any(b"resource_tracker" in c for c in commands), commands
    assert any(b"spawn_main" in c for c in commands), commands

    process.send_signal(signal.SIGKILL)  # the main process only, as `timeout` does
    process.wait()
    deadline = time.monotonic() + 30
    while (alive := [pid for pid in children if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:  # a failing run must not leave them behind either
        os.kill(pid, signal.SIGKILL)

    assert alive == []
    process.communicate(timeout=10)  # nothing holds its pipes any more


def _sms_demo(
    demo: Path, sms_provider: SmsProvider, monkeypatch: pytest.MonkeyPatch, *, count: int
) -> None:
    """The demo, its SMS through the provider, `count` contacts reached by SMS only, locked."""
    config = demo / "campaignctl.yaml"
    config.write_text(
        config.read_text("utf-8").replace(
            "  transport: file                             # file | http",
            f"  transport: http\n  http: {{url: '{sms_provider.url}', token_env: SMS_TOKEN}}",
        ),
        "utf-8",
    )
    monkeypatch.setenv("SMS_TOKEN", "sms-token-for-tests")
    lines = [HEADER] + [
        f"HOT-{n:06d};Hôtel {n};hotel;Val;;;06 12 34 {n // 100:02d} {n % 100:02d};adherent;;;;;;;actif"
        for n in range(count)
    ]
    (demo / "audiences" / "contacts.csv").write_text("\n".join(lines) + "\n", "utf-8")
    locked_demo(demo, CAMPAIGN)


def test_sms_through_the_http_provider_are_sent_once_each_with_their_provider_id(
    demo: Path,
    sms_provider: SmsProvider,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    _sms_demo(demo, sms_provider, monkeypatch, count=120)

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 0, result.output
    accepted = sms_provider.accepted()
    assert len(accepted) == 120 and set(accepted.values()) == {1}
    rows = _rows(demo, "SELECT state, message_id, provider_id FROM outbox")
    assert {state for state, _, _ in rows} == {"sent"} and len(rows) == 120
    assert {mid for _, mid, _ in rows} == set(accepted)  # our client_ref
    assert all(pid and pid.startswith("prov-") for _, _, pid in rows)
    assert _rows(demo, "SELECT count(*) FROM outbox_handover") == [(0,)]


def test_a_wrong_sms_token_stops_with_69_naming_its_variable_and_keeps_every_sms_queued(
    demo: Path,
    sms_provider: SmsProvider,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    _sms_demo(demo, sms_provider, monkeypatch, count=30)
    sms_provider.token = "the-token-the-provider-knows"
    monkeypatch.setenv("SMS_TOKEN", "an-expired-token")

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 69, result.output
    assert "the SMS provider refuses every request from these settings: 401" in result.stderr
    assert "check the token in $SMS_TOKEN (sms.http.token_env)" in result.stderr
    assert "an-expired-token" not in result.output + result.stderr
    assert _rows(demo, "SELECT state, attempts, count(*) FROM outbox GROUP BY state, attempts") == [
        ("queued", 0, 30)
    ]
    monkeypatch.setenv("SMS_TOKEN", "the-token-the-provider-knows")  # fixed: all go, once
    assert _run(demo, "send", CAMPAIGN, "--now").exit_code == 0
    assert len(sms_provider.accepted()) == 30 and set(sms_provider.accepted().values()) == {1}


# --------------------------------------------------------------------------- settings and addresses


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_530_authentication_required_stops_with_69_naming_the_settings_and_keeps_all_queued(
    demo: Path, auth_smtp_server: SmtpServer, env: dict[str, str], backend: str
) -> None:
    use_smtp(demo, auth_smtp_server.port)  # no username_env / password_env
    write_contacts(demo, 20)
    locked_demo(demo, CAMPAIGN)

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 69, result.output
    assert result.stderr.splitlines()[-2:] == [
        f"error: the SMTP server 127.0.0.1:{auth_smtp_server.port} requires authentication or "
        "TLS before it takes mail: 530 5.7.0 Authentication required",
        "  hint: set senders.default.smtp.username_env and senders.default.smtp.password_env "
        "to the environment variables that hold the login and set "
        "senders.default.smtp.starttls: true (or tls: true on port 465) in campaignctl.yaml; "
        "the messages stay queued: run send again once it is fixed",
    ]
    assert _rows(demo, "SELECT state, attempts, count(*) FROM outbox GROUP BY state, attempts") == [
        ("queued", 0, 20)
    ]
    assert auth_smtp_server.handler.received == []


IDN = "contact@bücher.example"  # given as punycode in the CSV, as the issue did
IDN_IN_CSV = "contact@xn--bcher-kva.example"
UTF8_LOCAL = "jösé@example.org"


def _international(demo: Path, port: int) -> None:
    use_smtp(demo, port)
    write_contacts(demo, 2, extra=(IDN_IN_CSV, UTF8_LOCAL))
    locked_demo(demo, CAMPAIGN)


def _to_header(data: bytes) -> bytes:
    return next(line for line in data.splitlines() if line.startswith(b"To: "))


def test_an_idn_domain_goes_as_punycode_without_smtputf8_and_a_utf8_local_part_fails_clearly(
    demo: Path, ascii_smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    _international(demo, ascii_smtp_server.port)

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 1, result.output
    assert "3 sent, 1 failed" in result.stderr
    received = {r.rcpt_tos[0]: r for r in ascii_smtp_server.handler.received}
    assert set(received) == {"c0@d0.example", "c1@d1.example", IDN_IN_CSV}
    assert received[IDN_IN_CSV].mail_options == []
    assert _to_header(received[IDN_IN_CSV].data) == b"To: " + IDN_IN_CSV.encode()
    assert _rows(demo, "SELECT address, state, error FROM outbox WHERE state != 'sent'") == [
        (
            UTF8_LOCAL,
            "failed",
            f"not sent: {UTF8_LOCAL} has non-ASCII characters before the @, which only a server "
            f"offering SMTPUTF8 (RFC 6531) accepts, and 127.0.0.1:{ascii_smtp_server.port} "
            "does not",
        )
    ]


def test_smtputf8_is_used_only_for_a_non_ascii_local_part_when_the_server_offers_it(
    demo: Path, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    _international(demo, smtp_server.port)

    result = _run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 0, result.output
    received = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    assert set(received) == {"c0@d0.example", "c1@d1.example", IDN_IN_CSV, UTF8_LOCAL}
    assert received[IDN_IN_CSV].mail_options == []
    assert "SMTPUTF8" in received[UTF8_LOCAL].mail_options
    assert _to_header(received[UTF8_LOCAL].data) == "To: jösé@example.org".encode()
    assert _rows(demo, "SELECT address FROM outbox WHERE address LIKE 'contact@%'") == [(IDN,)]
