"""The recipient's side in a real browser: Debian's Chromium driven by Playwright.

A form opened from a sent .eml, corrected and submitted; the response reviewed and
accepted with the CLI; a grouped address's space; unsubscribe by GET then POST; the
form at a phone's size; the whole form with the keyboard only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.web.conftest import MARKETING, QUESTIONNAIRE, Server, cli
from tests.web.test_form import forms, spaces

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_a_form_from_a_sent_email_is_corrected_submitted_and_accepted(
    server: Server, browser
) -> None:
    key, path = next(iter(sorted(forms(server.sent).items())))
    message = next(
        m for m in server.sent.messages[QUESTIONNAIRE] if server.sent.local(m.link("f")) == path
    )
    page = browser.new_page()
    page.goto(server.base + server.sent.local(message.link("f")))
    assert page.title().startswith("Mise à jour de votre fiche établissement")
    page.get_by_label("Capacité d'accueil").fill("77")
    page.get_by_role("button", name="Envoyer mes réponses").click()
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Merci, vos réponses sont enregistrées"
    )

    listed = cli(server.sent.root, "responses", "list", "--json")
    [response] = json.loads(listed.stdout)["responses"]
    assert (response["record"], response["status"]) == (key, "to_process")
    changes = {c["field"]: (c["old"], c["new"]) for c in response["changes"]}
    old = server.sent.query("SELECT attributes FROM record WHERE key = :k", k=key)[0][0]
    old = json.loads(old) if isinstance(old, str) else old
    assert changes["capacity"] == (old["capacity"], 77)
    # periods_mode next_year: the dates suggested, sent unchanged, are next year's
    assert changes["opening_periods"][1] == [
        [str(int(s[:4]) + 1) + s[4:], str(int(e[:4]) + 1) + e[4:]]
        for s, e in old["opening_periods"]
    ]
    accepted = cli(server.sent.root, "responses", "accept", str(response["id"]))
    assert accepted.exit_code == 0, accepted.output
    [attributes] = server.sent.query("SELECT attributes FROM record WHERE key = :k", k=key)[0]
    if isinstance(attributes, str):
        attributes = json.loads(attributes)
    assert attributes["capacity"] == 77


def test_a_grouped_address_sees_its_three_records_in_its_space(server: Server, browser) -> None:
    _keys, path = next((k, p) for k, p in sorted(spaces(server.sent).items()) if len(k) == 3)
    page = browser.new_page()
    page.goto(server.base + path)
    rows = page.locator("table.records tbody tr")
    assert rows.count() == 3
    for i in range(3):
        assert "À compléter" in rows.nth(i).inner_text()
    rows.nth(1).get_by_role("link").click()
    assert page.url.startswith(server.base + "/f/")
    page.get_by_role("button", name="Envoyer mes réponses").click()
    page.goto(server.base + path)
    states = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)]
    assert states == ["À compléter", "Répondu", "À compléter"]


def test_unsubscribe_asks_on_get_and_opts_out_on_the_post(server: Server, browser) -> None:
    message = server.sent.messages[MARKETING][0]
    page = browser.new_page()
    page.goto(server.base + server.sent.local(message.link("u")))
    assert page.get_by_role("heading", level=1).inner_text() == "Se désinscrire"
    assert server.sent.query("SELECT COUNT(*) FROM suppression") == [(0,)]
    page.get_by_role("button", name="Confirmer ma désinscription").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Vous êtes désinscrit"
    assert server.sent.query("SELECT category, reason FROM suppression") == [
        ("marketing", "unsubscribed")
    ]


def test_the_form_fits_a_phone_screen(server: Server, browser) -> None:
    _key, path = next(iter(sorted(forms(server.sent).items())))
    page = browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True)
    page.goto(server.base + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    button = page.get_by_role("button", name="Envoyer mes réponses").bounding_box()
    assert button is not None and button["x"] >= 0 and button["x"] + button["width"] <= 360
    assert button["height"] >= 44  # a finger-sized target
    phone = page.get_by_label("Téléphone de réservation").bounding_box()
    assert phone is not None and phone["x"] + phone["width"] <= 360


def test_the_form_can_be_filled_and_sent_with_the_keyboard_only(server: Server, browser) -> None:
    _key, path = next(iter(sorted(forms(server.sent).items())))
    page = browser.new_page()
    page.goto(server.base + path)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "name"
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")  # a required field emptied: the error must be reachable
    for _ in range(200):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
    else:
        raise AssertionError("the submit button is not reachable with Tab")
    with page.expect_navigation():  # a key press, unlike a click, waits for no navigation
        page.keyboard.press("Enter")
    summary = page.locator("#errors")
    assert "Nom de l'établissement : Ce champ est obligatoire." in summary.inner_text()
    # the summary has the focus; its first link takes the keyboard to the field
    assert page.evaluate("document.activeElement.id") == "errors"
    page.keyboard.press("Tab")
    link = page.evaluate("document.activeElement.getAttribute('href')")
    assert link == "#name"
    page.keyboard.press("Tab")  # then the form's first field, the one in error
    assert page.evaluate("document.activeElement.id") == "name"
    assert page.evaluate("document.activeElement.getAttribute('aria-invalid')") == "true"
    page.keyboard.type("Gîte corrigé au clavier")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter in a text input submits the form
    assert (
        page.get_by_role("heading", level=1).inner_text() == "Merci, vos réponses sont enregistrées"
    )
    [(changes,)] = server.sent.query("SELECT changes FROM response")
    if isinstance(changes, str):
        changes = json.loads(changes)
    assert changes["name"]["new"] == "Gîte corrigé au clavier"
