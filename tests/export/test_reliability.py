"""A webhook that fails, rate-limits, is slow, or is gone; a push killed mid-way; the
refusals that protect the token and the spreadsheet. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaignctl.store import Store
from tests.export.conftest import CAMPAIGN, DEMO_URL, run
from tests.export.receiver import Answer, Receiver

TOTAL = 87  # locked records of the demo's appeal, each with a badge for crm-adherents


def store_of(root: Path) -> Store:
    return Store(
        os.environ.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db", root=root
    )


def badges(root: Path) -> dict[str, tuple[str, str]]:
    """record key -> (state, idempotency key) of crm-adherents' badges."""
    with store_of(root).read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.key, b.state, b.idempotency_key FROM export_badge b "
                "JOIN record r ON r.id = b.record_id WHERE b.system = 'crm-adherents'"
            )
        ).all()
    return {key: (state, ikey) for key, state, ikey in rows}


def assert_each_badge_once_under_its_one_key(root: Path, receiver: Receiver) -> None:
    stored = badges(root)
    assert len(stored) == TOTAL
    assert {state for state, _ in stored.values()} == {"sent"}
    assert {record: {key} for record, (_, key) in stored.items()} == dict(receiver.offered)
    assert sorted(b["record"] for b in receiver.pushed.values()) == sorted(stored)


def test_500s_429s_and_a_slow_receiver_lose_no_badge_and_change_no_key(
    locked: Path, receiver: Receiver
) -> None:
    receiver.delay = 0.05  # 20 requests a second at most
    receiver.script = [
        Answer(200), Answer(500), Answer(429, retry_after="1"), Answer(200), Answer(502),
        Answer(500), Answer(200), Answer(429, retry_after="0"), Answer(503),
    ]  # fmt: skip

    result = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["systems"][0]
    assert (summary["sent"], summary["failed"], summary["retries"]) == (TOTAL, 0, 6)
    statuses = [status for _, status, _ in receiver.requests]
    assert statuses.count(200) == 9 and len(statuses) == 15
    assert_each_badge_once_under_its_one_key(locked, receiver)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_system_exits_69_naming_it_and_the_next_push_resumes(
    crm: Path, receiver: Receiver, closed_port: int
) -> None:
    config = crm / "campaignctl.yaml"
    config.write_text(
        config.read_text().replace(
            receiver.url,  # type: ignore[attr-defined]
            f"http://127.0.0.1:{closed_port}/badges\n    max_attempts: 2",
        )
    )
    assert run(crm, "lock", CAMPAIGN).exit_code == 0

    result = run(crm, "export", "push", CAMPAIGN, "--system", "crm-adherents")

    assert result.exit_code == 69
    assert result.stderr.startswith(
        f"error: export system 'crm-adherents' (http://127.0.0.1:{closed_port}/badges) is "
        "unreachable: "
    )
    assert "(2 tries)\n  hint: check that it is up" in result.stderr
    kept = badges(crm)
    assert len(kept) == TOTAL and {s for s, _ in kept.values()} == {"pending"}

    config.write_text(
        config.read_text().replace(f"http://127.0.0.1:{closed_port}/badges", receiver.url)  # type: ignore[attr-defined]
    )
    again = run(crm, "export", "push", CAMPAIGN, "--system", "crm-adherents")
    assert again.exit_code == 0, again.output
    assert {k: v[1] for k, v in badges(crm).items()} == {k: v[1] for k, v in kept.items()}
    status = json.loads(run(crm, "export", "status", CAMPAIGN, "--json").stdout)
    assert [(t["id"], t["outcome"]) for t in status["transfers"]] == [(2, "done"), (1, "stopped")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_push_killed_mid_way_resumes_without_a_second_key_for_any_badge(
    locked: Path, receiver: Receiver, sig: signal.Signals
) -> None:
    config = locked / "campaignctl.yaml"
    config.write_text(config.read_text().replace("batch_size: 10", "batch_size: 5"))
    receiver.delay = 0.2  # 18 batches: about four seconds
    receiver.script = [Answer(200), Answer(500), Answer(429, retry_after="0")]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "campaignctl"), "--workspace", str(locked),
         "export", "push", CAMPAIGN, "--system", "crm-adherents"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 6:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the push never got going"
            time.sleep(0.02)
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if sig == signal.SIGINT:
        assert process.returncode == 130, err
    else:
        assert process.returncode == -signal.SIGKILL
    interrupted = badges(locked)
    assert 0 < sum(state == "sent" for state, _ in interrupted.values()) < TOTAL

    receiver.delay = 0.0
    resumed = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents")

    assert resumed.exit_code == 0, resumed.output
    assert {k: v[1] for k, v in badges(locked).items()} == {k: v[1] for k, v in interrupted.items()}
    assert_each_badge_once_under_its_one_key(locked, receiver)
    done = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents")
    assert (done.exit_code, done.stdout) == (
        0,
        f"Nothing to transfer: {TOTAL} badge(s) already transferred.\n",
    )
    status = json.loads(run(locked, "export", "status", CAMPAIGN, "--json").stdout)
    first = status["transfers"][-1]
    expected = "stopped" if sig == signal.SIGINT else "running or killed"
    assert (first["id"], first["outcome"]) == (1, expected)


def test_a_webhook_in_clear_is_refused_unless_it_is_localhost(demo: Path) -> None:
    config = demo / "campaignctl.yaml"
    text = config.read_text()
    config.write_text(text.replace(DEMO_URL, "http://crm.val-des-aiguilles.example/badges"))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if DEMO_URL in t)

    result = run(demo, "validate")

    assert result.exit_code == 65
    assert (
        f"campaignctl.yaml:{line}:10: error[invalid-value]: systems.crm-adherents.url: "
        "webhook URL 'http://crm.val-des-aiguilles.example/badges' is not https: badges and "
        "the token would travel in clear\n"
        "  hint: use https://; plain http is accepted only for localhost\n"
    ) in result.stdout


def test_a_missing_token_is_named_never_shown(
    locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_TOKEN")

    result = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents")

    assert (result.exit_code, result.stderr) == (
        64,
        "error: environment variable CRM_TOKEN is not set (systems.crm-adherents.token_env "
        "in campaignctl.yaml names it)\n  hint: export CRM_TOKEN=... in the environment that "
        "runs campaignctl\n",
    )


def test_the_csv_drop_is_formula_safe(locked: Path) -> None:
    campaign = locked / "campaigns" / f"{CAMPAIGN}.yaml"
    campaign.write_text(
        campaign.read_text().replace("package: COT27-EMAIL", 'package: "=HYPERLINK(1)"')
    )

    result = run(locked, "export", "push", CAMPAIGN, "--system", "crm-fichier", "--json")

    assert result.exit_code == 0, result.output
    drop = locked / json.loads(result.stdout)["systems"][0]["file"]
    lines = drop.read_text(encoding="utf-8").splitlines()
    email = [line for line in lines if ",email," in line]
    assert email and all(",'=HYPERLINK(1)," in line for line in email)
    assert not [p.name for p in drop.parent.iterdir() if p.name.startswith(".")]


def test_a_refused_token_stops_the_push_with_69_and_fails_no_badge(
    locked: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "an-old-token")

    result = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents")

    assert result.exit_code == 69
    assert result.stderr == (
        f"error: export system 'crm-adherents' ({receiver.url}) answered 401 (the token is "  # type: ignore[attr-defined]
        'refused): {"error": "bad token"}\n'
        "  hint: check its `url:` and the token its `token_env:` names; no badge was marked: "
        "they keep their keys, and `export push` again resumes\n"
    )
    assert "an-old-token" not in result.output
    assert receiver.requests == [("?", 401, 0)]
    assert {state for state, _ in badges(locked).values()} == {"pending"}


def test_two_exports_giving_one_system_a_badge_for_the_same_cell_are_refused(demo: Path) -> None:
    campaign = demo / "campaigns" / f"{CAMPAIGN}.yaml"
    text = campaign.read_text()
    campaign.write_text(text.replace("    segments: [members-loyal, members-new]\n", ""))
    line = (
        next(
            i for i, t in enumerate(campaign.read_text().splitlines(), 1) if "label: Fidélité" in t
        )
        - 2
    )

    result = run(demo, "validate")

    assert result.exit_code == 65
    assert (
        f"campaigns/{CAMPAIGN}.yaml:{line}:5: error[invalid-value]: exports 3 and 4 both give "
        "system 'crm-adherents' a badge for the cell renewing-soon × email\n"
        "  hint: a cell has one badge per system: narrow `segments:` or `channels:` of one of "
        "them\n"
    ) in result.stdout


def test_an_export_lacking_a_field_its_system_requires_is_refused_where_it_is(
    demo: Path,
) -> None:
    config = demo / "campaignctl.yaml"
    config.write_text(
        config.read_text().replace(
            "    path: exports/crm ",
            "    required_fields: [appeal, package]\n    path: exports/crm ",
        )
    )
    campaign = demo / "campaigns" / f"{CAMPAIGN}.yaml"
    text = campaign.read_text()
    assert text.count("package: COT27-SMS, ") == 1
    campaign.write_text(text.replace("package: COT27-SMS, ", "").replace("COT27-EMAIL", "''"))
    lines = campaign.read_text().splitlines()
    sms = next(i for i, t in enumerate(lines, 1) if "COT27, date" in t)
    email = next(i for i, t in enumerate(lines, 1) if "package: ''" in t)

    result = run(demo, "validate")

    assert result.exit_code == 65, result.output
    column = lines[email - 1].index("''") + 1
    assert (
        f"campaigns/{CAMPAIGN}.yaml:{email}:{column}: error[missing-field]: export 1 gives "
        "system 'crm-fichier' no 'package' value; that system requires 'appeal', 'package' "
        "(`required_fields:` in campaignctl.yaml)\n"
        "  hint: add `package: ...` to the export's `fields:`\n"
    ) in result.stdout
    assert (
        f"campaigns/{CAMPAIGN}.yaml:{sms}:13: error[missing-field]: export 2 gives system "
        "'crm-fichier' no 'package' field; that system requires 'appeal', 'package' "
        "(`required_fields:` in campaignctl.yaml)\n"
    ) in result.stdout
    assert "export 3" not in result.stdout  # crm-adherents requires nothing

    pushed = run(demo, "export", "push", CAMPAIGN)
    assert pushed.exit_code == 65
    assert "error[missing-field]: export 2 gives system 'crm-fichier'" in pushed.stderr
