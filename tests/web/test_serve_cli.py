"""`campaignctl serve` as users run it: the secret it needs, and a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.render.links import DEVELOPMENT_SECRET
from tests.web.conftest import MARKETING, Sent


def test_serve_refuses_to_start_without_the_link_secret(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)
    result = CliRunner().invoke(app, ["--workspace", str(demo), "serve"])
    assert result.exit_code == 64, result.output
    assert result.output.splitlines()[0] == (
        "error: the environment variable CAMPAIGNCTL_SECRET (tracking.secret_env) is not set, "
        "and the messages carry signed links"
    )


def test_serve_refuses_the_development_secret_unless_dev_is_given(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_SECRET", DEVELOPMENT_SECRET)
    result = CliRunner().invoke(app, ["--workspace", str(demo), "serve"])
    assert result.exit_code == 64, result.output
    assert "CAMPAIGNCTL_SECRET holds the development secret" in result.output
    assert "hint: export CAMPAIGNCTL_SECRET=<a long random string>" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(sent: Sent, port: int, workers: int, output: int) -> subprocess.Popen:
    """`campaignctl serve` on `port` as a real process group (its output to `output`),
    once /healthz answers."""
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("campaignctl")),
            "--workspace",
            str(sent.root),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=output,
        stderr=output,
        env=os.environ.copy(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"serve ended: {process.communicate()}")
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.2)


def test_a_served_hit_is_stored_and_no_token_reaches_the_logs(sent: Sent) -> None:
    port = free_port()
    process = start_serve(sent, port, 2, subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        messages = sent.messages[MARKETING][:5]
        answers = [httpx.get(base + sent.local(m.link("o"))) for m in messages]
        answers.append(httpx.get(base + "/o/tampered.token.value"))
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert [a.status_code for a in answers] == [200] * 5 + [404]
    stored = sent.query("SELECT COUNT(*) FROM event WHERE type = 'opened'")
    assert stored == [(5,)]
    logs = (out + err).decode()
    assert f"on http://127.0.0.1:{port} (2 workers)" in logs
    for message in messages:
        assert message.link("o").rsplit("/", 1)[1] not in logs
    assert "tampered" not in logs


@pytest.mark.parametrize("workers", [1, 2])
def test_after_a_kill_9_every_hit_answered_before_it_is_stored(sent: Sent, workers: int) -> None:
    """Opens and clicks under load, then SIGKILL of serve and its workers (a crash of the
    whole service): every hit answered before is in the store."""
    import threading

    port = free_port()
    # its own process group (start_new_session): the workers die with it
    process = start_serve(sent, port, workers, subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    messages = sent.messages[MARKETING]
    paths = [sent.local(m.link(kind)) for m in messages for kind in ("o", "c")]
    answered = [0] * 4
    started = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            i = 0
            while True:
                try:
                    if client.get(paths[i % len(paths)]).status_code in (200, 302):
                        answered[n] += 1
                        started.set()
                except httpx.TransportError:
                    return  # the server is gone
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    assert started.wait(60)
    while sum(answered) < 200:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # serve and its workers, under load
    process.wait(30)
    for thread in threads:
        thread.join(30)
    [(stored,)] = sent.query("SELECT COUNT(*) FROM event WHERE type IN ('opened', 'clicked')")
    assert stored >= sum(answered) >= 200
