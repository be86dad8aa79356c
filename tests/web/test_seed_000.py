"""Seed 000 end to end on the demo: send the record update, three providers answer in the
browser, relaunch the non-responders (exactly the others get "Rappel"), report, accept."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import QUESTIONNAIRE, Server, cli
from tests.web.test_browser import CHROMIUM, browser  # noqa: F401 - the fixture
from tests.web.test_form import forms

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def test_answers_relaunch_report_and_accept(server: Server, browser) -> None:  # noqa: F811
    sent = server.sent
    answering = sorted(forms(sent).items())[:3]
    for i, (_key, path) in enumerate(answering):
        page = browser.new_page()
        page.goto(server.base + path)
        page.get_by_label("Capacité d'accueil").fill(str(100 + i))
        page.get_by_label("Téléphone de réservation").fill(f"04 65 71 00 1{i}")
        if not page.locator("#opening_periods-start-0").input_value():  # required
            page.locator("#opening_periods-start-0").fill("2027-05-01")
            page.locator("#opening_periods-end-0").fill("2027-09-30")
        page.get_by_role("button", name="Envoyer mes réponses").click()
        if page.locator("#errors").count():
            raise AssertionError(page.locator("#errors").inner_html())
        assert page.get_by_role("heading", level=1).inner_text() == (
            "Merci, vos réponses sont enregistrées"
        )
        page.close()
    answered = {key for key, _ in answering}
    locked = {
        key
        for (key,) in sent.query(
            "SELECT DISTINCT r.key FROM recipient rc JOIN record r ON r.id = rc.record_id "
            "JOIN campaign_lock l ON l.id = rc.lock_id JOIN campaign c ON c.id = l.campaign_id "
            "WHERE c.name = :c",
            c=QUESTIONNAIRE,
        )
    }

    # a process of its own: Playwright's sync API keeps an event loop running in this one
    relaunch = subprocess.run(
        [
            str(Path(sys.executable).with_name("campaignctl")),
            "--workspace",
            str(sent.root),
            "relaunch",
            QUESTIONNAIRE,
            "--to",
            "non_responders",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert relaunch.returncode == 0, relaunch.stderr
    assert "159 of 162 record(s) to relaunch; 3 not matching non_responders" in relaunch.stdout
    rows = sent.query(
        "SELECT r.key, o.channel, o.message_id, o.group_key FROM outbox o "
        "JOIN wave w ON w.id = o.wave_id JOIN campaign c ON c.id = o.campaign_id "
        "LEFT JOIN record r ON r.id = o.record_id WHERE c.name = :c AND w.number = 2",
        c=QUESTIONNAIRE,
    )
    reached = {
        key
        for (key,) in sent.query(
            "SELECT DISTINCT r.key FROM outbox o JOIN wave w ON w.id = o.wave_id "
            "JOIN recipient rc ON rc.record_id = o.record_id OR (o.group_key IS NOT NULL "
            "AND rc.group_key = o.group_key AND rc.channel = o.channel) "
            "JOIN record r ON r.id = rc.record_id WHERE w.number = 2 AND o.campaign_id = "
            "(SELECT id FROM campaign WHERE name = :c)",
            c=QUESTIONNAIRE,
        )
    }
    assert reached == locked - answered  # exactly the others
    folder = sent.root / ".campaignctl" / "outbox" / QUESTIONNAIRE
    for _key, channel, message_id, _group in rows:
        if channel != "email":
            continue
        parsed = email.message_from_bytes(
            (folder / f"{message_id}.eml").read_bytes(), policy=email.policy.default
        )
        assert str(parsed["Subject"]).startswith("Rappel — "), parsed["Subject"]

    report = cli(sent.root, "report", QUESTIONNAIRE, "--format", "json")
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    response = document["totals"]["rates"]["response"]
    assert (response["numerator"], response["denominator"]) == (3, len(locked))
    assert document["responses_to_process"] == 3

    accepted = cli(sent.root, "responses", "accept", "--all", "--yes")
    assert accepted.exit_code == 0, accepted.output
    capacities = dict(
        sent.query(
            "SELECT key, attributes FROM record WHERE key IN :keys".replace(
                ":keys", "(" + ", ".join(f"'{k}'" for k in sorted(answered)) + ")"
            )
        )
    )
    values = sorted(
        (json.loads(a) if isinstance(a, str) else a)["capacity"] for a in capacities.values()
    )
    assert values == [100, 101, 102]
