"""`/f/` questionnaire form, `/s/` space and `/q/` short links, over HTTP (the browser
tests are in test_browser.py)."""

from __future__ import annotations

import json
import re

import httpx

from campaignctl.render.links import LinkPurpose, LinkSigner
from campaignctl.spec.models import Tracking
from tests.web.conftest import QUESTIONNAIRE, SECRET, Sent, Server, cli

BASE = "https://campagnes.val-des-aiguilles.example"
SIGNER = LinkSigner(Tracking(base_url=BASE), SECRET)


def forms(sent: Sent) -> dict[str, str]:
    """Record key -> the form path its (ungrouped) email carries."""
    out = {}
    for message in sent.messages[QUESTIONNAIRE]:
        for url in message.links:
            if "/f/" in url:
                out[SIGNER.load(LinkPurpose.FORM, url.rsplit("/", 1)[1])["r"]] = sent.local(url)
    return out


def spaces(sent: Sent) -> dict[tuple[str, ...], str]:
    out = {}
    for message in sent.messages[QUESTIONNAIRE]:
        for url in message.links:
            if "/s/" in url:
                keys = SIGNER.load(LinkPurpose.SPACE, url.rsplit("/", 1)[1])["r"]
                out[tuple(keys)] = sent.local(url)
    return out


def csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]


def inputs(page: httpx.Response) -> dict[str, str]:
    """name -> value of the page's text-like inputs, checked boxes and textareas."""
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", page.text):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or (kind and kind.group(1) in ("checkbox", "radio") and "checked" not in tag):
            continue
        fields[name.group(1)] = value.group(1) if value else ""
    for name, text in re.findall(r'<textarea id="[^"]+" name="([^"]+)"[^>]*>([^<]*)<', page.text):
        fields[name] = text
    return fields


def responses(sent: Sent) -> list[tuple]:
    rows = sent.query(
        "SELECT r.key, p.status, p.changes FROM response p JOIN record r ON r.id = p.record_id "
        "ORDER BY p.id"
    )
    return [(k, s, json.loads(c) if isinstance(c, str) else c) for k, s, c in rows]


def test_the_form_shows_the_records_fields_prefilled_with_next_years_periods(
    server: Server,
) -> None:
    key, path = next(iter(sorted(forms(server.sent).items())))
    with server.client() as client:
        page = client.get(path)
    assert page.status_code == 200
    record = server.sent.query("SELECT category, attributes FROM record WHERE key = :k", k=key)[0]
    attributes = json.loads(record[1]) if isinstance(record[1], str) else record[1]
    values = inputs(page)
    assert values["name"] == attributes["name"]
    periods = attributes.get("opening_periods") or []
    for i, (start, end) in enumerate(periods):  # next_year: one year later
        assert values[f"opening_periods-start-{i}"] == str(int(start[:4]) + 1) + start[4:]
        assert values[f"opening_periods-end-{i}"] == str(int(end[:4]) + 1) + end[4:]
    # labels tied to inputs; help read with the field
    assert '<label for="phone">Téléphone de réservation' in page.text
    assert 'aria-describedby="phone-help"' in page.text
    assert server.sent.query("SELECT record_key FROM event WHERE type = 'form_opened'") == [(key,)]


def test_only_for_shows_a_field_to_its_categories_only(server: Server) -> None:
    paths = forms(server.sent)
    categories = dict(server.sent.query("SELECT key, category FROM record"))
    restaurant = next(k for k in sorted(paths) if categories[k] == "restaurant")
    lodging = next(k for k in sorted(paths) if categories[k] in ("hotel", "gite", "camping"))
    with server.client() as client:
        food = client.get(paths[restaurant]).text
        beds = client.get(paths[lodging]).text
    assert 'name="cuisine"' in food and 'id="tarifs"' not in food
    assert 'id="tarifs"' in beds and 'name="cuisine"' not in beds


def test_errors_are_shown_next_to_their_field_and_nothing_is_stored(server: Server) -> None:
    _key, path = next(iter(sorted(forms(server.sent).items())))
    with server.client() as client:
        page = client.get(path)
        values = inputs(page)
        values.update({"email": "not-an-address", "name": "", "opening_periods-end-0": ""})
        answer = client.post(path, data=values)
    assert answer.status_code == 400
    text = answer.text
    assert '<span class="error" id="email-error">Cette adresse email n&#39;est pas valide' in text
    assert 'aria-describedby="email-error email-help" aria-invalid="true"' in text
    assert '<span class="error" id="name-error">Ce champ est obligatoire.</span>' in text
    assert "Indiquez le début et la fin de chaque période." in text
    assert 'value="not-an-address"' in text  # what was typed is kept
    assert "3 champs à corriger" in text
    assert server.sent.query("SELECT COUNT(*) FROM event WHERE type = 'form_submitted'") == [(0,)]
    assert responses(server.sent) == []


def test_a_submit_makes_a_response_that_can_be_corrected_until_processed(
    server: Server,
) -> None:
    key, path = next(iter(sorted(forms(server.sent).items())))
    with server.client() as client:
        values = inputs(client.get(path))
        values["phone"] = "04 65 71 00 01"
        thanks = client.post(path, data=values)
        assert thanks.status_code == 200
        assert "Merci, vos réponses sont enregistrées" in thanks.text
        [(rkey, status, changes)] = responses(server.sent)
        assert (rkey, status) == (key, "to_process")
        assert changes["phone"]["new"] == "+33465710001"
        # corrected: the same response, new answers
        again = client.get(path)
        assert "Vous avez déjà répondu" in again.text
        values = inputs(again)
        assert values["phone"] == "+33465710001"
        values["phone"] = "04 65 71 00 02"
        client.post(path, data=values)
    [(rkey, status, changes)] = responses(server.sent)
    assert changes["phone"]["new"] == "+33465710002"
    result = cli(server.sent.root, "responses", "accept", "--all", "--yes")
    assert result.exit_code == 0, result.output
    with server.client() as client:
        processed = client.get(path)
    assert processed.status_code == 409  # processed: no more corrections


def test_a_form_post_without_its_csrf_token_is_refused(server: Server) -> None:
    _key, path = next(iter(sorted(forms(server.sent).items())))
    with server.client() as client:
        values = inputs(client.get(path))
        del values["csrf_token"]
        refused = client.post(path, data=values)
    cross_site = httpx.post(server.base + path, data={**values, "csrf_token": "0" * 64})
    assert (refused.status_code, cross_site.status_code) == (403, 403)
    assert responses(server.sent) == []


def test_the_space_lists_every_record_of_the_address_with_its_state(server: Server) -> None:
    grouped = spaces(server.sent)
    _keys, path = next((k, p) for k, p in sorted(grouped.items()) if len(k) == 3)
    with server.client() as client:
        page = client.get(path)
        assert page.status_code == 200
        assert page.text.count("À compléter") == 3
        first = re.findall(r'<a href="(/f/[^"]+)">', page.text)
        assert len(first) == 3
        values = inputs(client.get(first[0]))
        assert client.post(first[0], data=values).status_code == 200
        after = client.get(path).text
    assert after.count("À compléter") == 2 and after.count("Répondu") == 1


def sent_sms(server: Server) -> list[dict]:
    """The questionnaire campaign's SMS, as the file transport wrote them."""
    path = server.sent.root / ".campaignctl/outbox" / QUESTIONNAIRE / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_short_link_redirects_to_its_form(server: Server) -> None:
    sms = sent_sms(server)
    code = sms[0]["text"].split("/q/", 1)[1].split()[0]
    with server.client() as client:
        answer = client.get(f"/q/{code}")
        tampered = client.get(f"/q/{code[:-2]}AA")
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(f"{BASE}/f/") or location.startswith(f"{BASE}/s/")
        assert client.get(server.sent.local(location)).status_code == 200
    assert tampered.status_code == 404


def test_documents_are_listed_and_downloaded_only_as_the_campaign_offers_them(
    server: Server,
) -> None:
    def url(**payload) -> str:
        return SIGNER.url(LinkPurpose.DOCUMENT, payload).removeprefix(BASE)

    listing = url(c="taxe-sejour-guide", r=["HOT-001"])
    with server.client() as client:
        page = client.get(listing)
        assert page.status_code == 200
        assert "Comment lire votre relevé de taxe de séjour" in page.text
        assert "Barème de la taxe de séjour 2027" in page.text
        link = re.search(r'<a href="(/d/[^"]+)">Barème', page.text).group(1)  # type: ignore[union-attr]
        download = client.get(link)
        foreign = client.get(url(c="taxe-sejour-guide", r=["HOT-001"], d="../campaignctl.yaml"))
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        'attachment; filename="bareme-taxe-sejour-2027.txt"'
    )
    assert (
        download.content
        == (server.sent.root / "documents/bareme-taxe-sejour-2027.txt").read_bytes()
    )
    assert foreign.status_code == 404  # signed, but not a document the campaign offers
    assert server.sent.query("SELECT record_key, type FROM event WHERE type = 'clicked'") == [
        ("HOT-001", "clicked")
    ]


def test_a_space_visit_is_a_space_visited_event_of_each_of_its_records(server: Server) -> None:
    keys, path = next((k, p) for k, p in sorted(spaces(server.sent).items()) if len(k) == 3)
    with server.client() as client:
        assert client.get(path).status_code == 200
        assert client.get(path[:-3] + "AAA").status_code == 404  # tampered: no visit
    rows = server.sent.query(
        "SELECT r.key, e.record_key, e.campaign_id, e.outbox_id, e.data FROM event e "
        "JOIN record r ON r.id = e.record_id WHERE e.type = 'space_visited' ORDER BY r.key"
    )
    assert [row[:4] for row in rows] == [(key, key, None, None) for key in sorted(keys)]
    assert [json.loads(r[4]) if isinstance(r[4], str) else r[4] for r in rows] == [
        {"campaign": QUESTIONNAIRE}
    ] * len(keys)
    [(count,)] = server.sent.query("SELECT COUNT(*) FROM event WHERE type = 'space_visited'")
    assert count == 3


def test_a_short_link_hit_is_a_click_on_the_sms_that_carried_it(server: Server) -> None:
    sms = sent_sms(server)
    code = sms[1]["text"].split("/q/", 1)[1].split()[0]
    purpose, payload = SIGNER.load_short(code)
    keys = payload["r"] if isinstance(payload["r"], list) else [payload["r"]]
    with server.client() as client:
        assert client.get(f"/q/{code}").status_code == 302
        assert client.get(f"/q/{code[:-2]}AA").status_code == 404  # tampered: no click
    rows = server.sent.query(
        "SELECT e.record_key, o.message_id, o.channel, c.name, e.data FROM event e "
        "JOIN outbox o ON o.id = e.outbox_id JOIN campaign c ON c.id = e.campaign_id "
        "WHERE e.type = 'clicked' ORDER BY e.record_key"
    )
    assert [row[:4] for row in rows] == [
        (key, sms[1]["client_ref"], "sms", QUESTIONNAIRE) for key in sorted(keys)
    ]
    data = rows[0][4] if isinstance(rows[0][4], dict) else json.loads(rows[0][4])
    assert data == {"link": str(purpose), "short": True}


def test_a_client_leaving_in_the_middle_of_a_post_leaves_no_traceback(
    server: Server, caplog
) -> None:
    import logging
    import socket
    from urllib.parse import urlsplit

    path = next(iter(forms(server.sent).values()))
    address = urlsplit(server.base)
    caplog.set_level(logging.ERROR)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 5000\r\n\r\nname=half".encode()
        )
    with server.client() as client:  # the server goes on, and answers the next one
        assert client.get(path).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_space_visit_through_serve_is_the_trigger_of_an_information_campaign(
    server: Server, monkeypatch
) -> None:
    """charte-qualite-2027 (seed 003) starts at a partner's next visit to the space."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-01-10T10:00:00+01:00")  # its active window
    applied = cli(server.sent.root, "apply", "charte-qualite-2027", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    keys, path = next((k, p) for k, p in sorted(spaces(server.sent).items()) if len(k) == 3)
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-01-11T10:00:00+01:00")
    with server.client() as client:
        assert client.get(path).status_code == 200
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-01-12T10:00:00+01:00")
    plan = cli(server.sent.root, "plan", "charte-qualite-2027")
    assert plan.exit_code == 0, plan.output
    assert f"trigger space_visited; {len(keys)} record(s) affected" in plan.output
