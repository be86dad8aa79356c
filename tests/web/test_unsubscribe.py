"""`/u/` unsubscribe (GET asks, POST opts out, RFC 8058 one-click) and `/p/` preferences."""

from __future__ import annotations

import re

import httpx

from tests.web.conftest import MARKETING, Server


def csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match.group(1)


def suppressions(server: Server) -> list[tuple]:
    return server.sent.query(
        "SELECT channel, address, category, reason FROM suppression ORDER BY address, category"
    )


def unsubscribed(server: Server) -> list[tuple]:
    return server.sent.query(
        "SELECT e.record_key, e.address, o.message_id IS NOT NULL FROM event e "
        "LEFT JOIN outbox o ON o.id = e.outbox_id WHERE e.type = 'unsubscribed' "
        "ORDER BY e.received_at"
    )


def test_a_get_only_asks_and_the_post_of_its_form_opts_out(server: Server) -> None:
    message = server.sent.messages[MARKETING][0]
    path = server.sent.local(message.link("u"))
    with server.client() as client:
        page = client.get(path)
        assert page.status_code == 200
        assert "Confirmer ma désinscription" in page.text
        assert suppressions(server) == [] and unsubscribed(server) == []  # a GET changes nothing
        done = client.post(path, data={"csrf_token": csrf(page)})
    assert done.status_code == 200, done.text
    assert "Vous êtes désinscrit" in done.text
    assert suppressions(server) == [("email", message.to.lower(), "marketing", "unsubscribed")]
    key = unsubscribed(server)[0][0]
    assert unsubscribed(server) == [(key, message.to.lower(), True)]


def test_the_one_click_post_opts_out_at_once_without_cookie_or_csrf(server: Server) -> None:
    message = server.sent.messages[MARKETING][1]
    header = message.headers["List-Unsubscribe"]
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.search(r"<(https://[^>]+)>", header).group(1)  # type: ignore[union-attr]
    assert url == message.link("u")
    # what a mail provider sends (RFC 8058 §3.1): no cookie, no token, nothing else
    answer = httpx.post(
        server.base + server.sent.local(url),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert suppressions(server) == [("email", message.to.lower(), "marketing", "unsubscribed")]


def test_a_cross_site_post_without_the_pages_csrf_token_changes_nothing(server: Server) -> None:
    first, second = server.sent.messages[MARKETING][:2]
    with server.client() as client:
        other_page = client.get(server.sent.local(second.link("u")))  # a token of another page
        attacks = [
            httpx.post(server.base + server.sent.local(first.link("u")), data={"x": "1"}),
            client.post(server.sent.local(first.link("u")), data={"csrf_token": "0" * 64}),
            client.post(server.sent.local(first.link("u")), data={"csrf_token": csrf(other_page)}),
            # the one-click body among other fields is a form post, not RFC 8058
            httpx.post(
                server.base + server.sent.local(first.link("u")),
                data={"List-Unsubscribe": "One-Click", "y": "2"},
            ),
        ]
    assert [a.status_code for a in attacks] == [403, 403, 403, 403]
    assert suppressions(server) == [] and unsubscribed(server) == []


def test_the_preference_centre_opts_out_per_category_and_back_in(server: Server) -> None:
    message = server.sent.messages[MARKETING][2]
    path = server.sent.local(message.link("p"))
    with server.client() as client:
        page = client.get(path)
        assert page.status_code == 200
        assert 'value="marketing" checked' in page.text
        saved = client.post(path, data={"csrf_token": csrf(page)})  # every box unticked
        assert "Vos choix sont enregistrés" in saved.text
        assert 'value="marketing">' in saved.text
        assert suppressions(server) == [("email", message.to.lower(), "marketing", "unsubscribed")]
        back = client.post(path, data={"csrf_token": csrf(saved), "category": "marketing"})
        assert 'value="marketing" checked' in back.text
    assert suppressions(server) == []
    assert server.sent.query("SELECT action FROM audit_log WHERE action = 'resubscribe'") == [
        ("resubscribe",)
    ]


def test_posts_are_rate_limited_per_client_ip(limited_server: Server) -> None:
    server = limited_server
    message = server.sent.messages[MARKETING][0]
    path = server.sent.local(message.link("u"))
    with server.client() as client:
        codes = [client.post(path, data={"csrf_token": "0" * 64}).status_code for _ in range(4)]
        limited = client.post(path, data={"csrf_token": "0" * 64})
    assert codes == [403, 403, 403, 429]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "20"
    assert "Trop de demandes" in limited.text
