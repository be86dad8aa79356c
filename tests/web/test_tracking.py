"""`/o/` opens and `/c/` clicks: stored as events before the answer; no open redirect."""

from __future__ import annotations

import json
import time

import pytest
import time_machine

from campaignctl.render.links import LinkPurpose, LinkSigner
from campaignctl.spec.models import Tracking
from tests.web.conftest import MARKETING, QUESTIONNAIRE, SECRET, Server, cli

BASE = "https://campagnes.val-des-aiguilles.example"


def signer(secret: str = SECRET) -> LinkSigner:
    return LinkSigner(Tracking(base_url=BASE), secret)


def events(server: Server, type_: str) -> list[tuple]:
    rows = server.sent.query(
        "SELECT e.message_id, o.message_id, e.data FROM event e "
        "LEFT JOIN outbox o ON o.id = e.outbox_id WHERE e.type = :t ORDER BY e.received_at",
        t=type_,
    )
    return [(a, b, json.loads(c) if isinstance(c, str) else c) for a, b, c in rows]


def test_every_html_email_of_a_tracked_category_carries_one_open_pixel(server: Server) -> None:
    for message in server.sent.messages[QUESTIONNAIRE] + server.sent.messages[MARKETING]:
        pixels = [url for url in message.links if "/o/" in url]
        assert len(pixels) == 1, message.path.name
        payload = signer().load(LinkPurpose.OPEN, pixels[0].rsplit("/", 1)[1])
        assert payload == {"m": message.message_id}


def test_template_links_go_through_the_click_redirect_except_our_own(server: Server) -> None:
    message = server.sent.messages[MARKETING][0]
    kinds = sorted({url.removeprefix(BASE).split("/")[1] for url in message.links if BASE in url})
    assert kinds == ["c", "o", "p", "s", "u"]
    outside = [u for u in message.links if u.startswith("http") and not u.startswith(BASE)]
    assert outside == []  # the office's site link is a /c/ link now
    click = message.link("c")
    payload = signer().load(LinkPurpose.CLICK, click.rsplit("/", 1)[1])
    assert payload == {"m": message.message_id, "u": "https://www.val-des-aiguilles.example"}
    assert "https://www.val-des-aiguilles.example" in message.text  # the text part is readable


def test_an_open_is_stored_as_an_event_of_its_message(server: Server) -> None:
    message = server.sent.messages[MARKETING][1]
    with server.client() as client:
        answer = client.get(server.sent.local(message.link("o")))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.content.startswith(b"GIF89a")
    assert "no-store" in answer.headers["cache-control"]
    assert events(server, "opened") == [(message.message_id, message.message_id, None)]


def test_a_click_redirects_to_the_url_the_message_held_and_is_stored(server: Server) -> None:
    message = server.sent.messages[MARKETING][2]
    with server.client() as client:
        answer = client.get(server.sent.local(message.link("c")))
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://www.val-des-aiguilles.example"
    assert events(server, "clicked") == [
        (message.message_id, message.message_id, {"url": "https://www.val-des-aiguilles.example"})
    ]


def test_an_open_and_a_click_are_stored_as_events_ingest_stores_the_same_events(
    server: Server, tmp_path
) -> None:
    """serve inserts opens and clicks straight from their outbox rows: the rows are those
    `events ingest` makes of the same events (message, campaign, record, key, address,
    channel, time, data)."""
    message = server.sent.messages[MARKETING][3]
    with server.client() as client:
        assert client.get(server.sent.local(message.link("o"))).status_code == 200
        assert client.get(server.sent.local(message.link("c"))).status_code == 302
    lines = [
        {"id": "ingested-open", "type": "opened", "message_id": message.message_id},
        {
            "id": "ingested-click",
            "type": "clicked",
            "message_id": message.message_id,
            "data": {"url": "https://www.val-des-aiguilles.example"},
        },
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = cli(server.sent.root, "events", "ingest", str(path))
    assert result.exit_code == 0, result.output
    rows = server.sent.query(
        "SELECT type, id LIKE 'web-%', message_id, outbox_id, campaign_id, record_id, "
        "record_key, address, channel, at, data, received_at FROM event "
        "WHERE type IN ('opened', 'clicked') ORDER BY type, id"
    )
    assert len(rows) == 4
    by_origin = {(r[0], r[1]): r[2:] for r in rows}
    for type_ in ("clicked", "opened"):
        served, ingested = by_origin[(type_, True)], by_origin[(type_, False)]
        assert served == ingested
        assert served[1] is not None and served[5] == message.to.split("<")[-1].rstrip(">")


def test_an_open_of_a_message_the_outbox_does_not_hold_is_stored_without_one(
    server: Server,
) -> None:
    token = signer().token(LinkPurpose.OPEN, {"m": "gone@val-des-aiguilles.example"})
    known = server.sent.messages[MARKETING][0]
    with server.client() as client:
        assert client.get(f"/o/{token}").status_code == 200
        assert client.get(server.sent.local(known.link("o"))).status_code == 200
    assert sorted(events(server, "opened"), key=str) == sorted(
        [
            ("gone@val-des-aiguilles.example", None, None),
            (known.message_id, known.message_id, None),
        ],
        key=str,
    )


def test_while_another_program_holds_the_write_lock_a_hit_waits_and_the_rest_answers(
    server: Server,
) -> None:
    """An open arriving while `send` (here: a connection of the test) holds the store's
    write lock waits for it, and is stored once it is free; meanwhile serve answers."""
    import threading

    import sqlalchemy as sa

    message = server.sent.messages[MARKETING][4]
    store = server.sent.store()
    holder = store.engine.connect()
    answers: list[int] = []
    try:
        holder.begin()
        if store.dialect == "sqlite":
            holder.exec_driver_sql("DELETE FROM event WHERE id = 'none'")  # the write lock
        else:
            holder.execute(sa.text("LOCK TABLE event IN EXCLUSIVE MODE"))

        def open_it() -> None:
            with server.client() as client:
                answers.append(client.get(server.sent.local(message.link("o"))).status_code)

        thread = threading.Thread(target=open_it)
        thread.start()
        # a head start for the open, which waits for the lock (time.sleep: libfaketime,
        # which the tests run under to pin the day, makes a thread.join(timeout) wait
        # far longer, past the store's 10 s busy timeout)
        time.sleep(1.0)
        assert answers == []
        with server.client() as client:  # the event loop is not held by the wait
            assert client.get("/healthz", timeout=8).status_code == 200
        holder.rollback()
    finally:
        holder.close()
        store.close()
    thread.join(30)
    assert answers == [200]
    assert events(server, "opened") == [(message.message_id, message.message_id, None)]


@pytest.mark.parametrize(
    "forge",
    [
        # the payload changed, the signature kept
        lambda token: (
            signer()
            .token(LinkPurpose.CLICK, {"m": "x", "u": "https://evil.example"})
            .rsplit(".", 1)[0]
            + "."
            + token.rsplit(".", 1)[1]
        ),
        # signed with another secret
        lambda token: signer("not-our-secret").token(
            LinkPurpose.CLICK, {"m": "x", "u": "https://evil.example"}
        ),
        # a valid token of another purpose whose payload holds a URL
        lambda token: signer().token(LinkPurpose.DOCUMENT, {"m": "x", "u": "https://evil.example"}),
        # garbage
        lambda token: "https%3A%2F%2Fevil.example",
    ],
    ids=["tampered", "foreign-secret", "other-purpose", "garbage"],
)
def test_a_changed_click_target_never_leaves_for_another_site(server: Server, forge) -> None:
    message = server.sent.messages[MARKETING][0]
    token = message.link("c").rsplit("/", 1)[1]
    with server.client() as client:
        answer = client.get(f"/c/{forge(token)}")
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert "evil" not in answer.text
    assert events(server, "clicked") == []


def test_an_expired_or_tampered_token_gets_a_4xx_page_without_detail(server: Server) -> None:
    message = server.sent.messages[MARKETING][0]
    with time_machine.travel("2020-01-01T00:00:00Z", tick=False):
        expired = signer().token(LinkPurpose.OPEN, {"m": message.message_id})
    pixel = message.link("o").rsplit("/", 1)[1]
    tampered = pixel[:-3] + ("AAA" if not pixel.endswith("AAA") else "BBB")
    unsubscribe_as_form = message.link("u").rsplit("/", 1)[1]
    with server.client() as client:
        answers = [
            client.get(f"/o/{expired}"),
            client.get(f"/o/{tampered}"),
            client.get(f"/f/{unsubscribe_as_form}"),  # one purpose per token
            client.get(f"/s/{unsubscribe_as_form}"),
        ]
    bodies = {a.text for a in answers}
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert len(bodies) == 1  # the same page whatever went wrong
    body = bodies.pop()
    for detail in ("Signature", "expired", "Traceback", "itsdangerous", pixel[:20]):
        assert detail not in body
    assert events(server, "opened") == []


def test_html_pages_send_csp_nosniff_and_referrer_policy(server: Server) -> None:
    message = server.sent.messages[MARKETING][0]
    with server.client() as client:
        page = client.get(server.sent.local(message.link("u")))
        missing = client.get("/nothing-here")
    for answer in (page, missing):
        assert answer.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert page.status_code == 200 and missing.status_code == 404


def test_a_body_over_the_limit_is_refused_with_413(server: Server) -> None:
    message = server.sent.messages[MARKETING][0]
    path = server.sent.local(message.link("u"))
    with server.client() as client:
        declared = client.post(path, content=b"a=" + b"x" * 300_000)

        def chunks():
            for _ in range(40):
                yield b"x" * 10_000

        streamed = client.post(  # chunked: no Content-Length to refuse it by
            path,
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert server.sent.query("SELECT COUNT(*) FROM suppression") == [(0,)]


@pytest.mark.parametrize(
    "setting",
    [
        ("  token_max_age: 180d\n", "  token_max_age: 180d\n  opens: false\n  clicks: false\n"),
        (
            "    unsubscribe: true\n    label: Offres",
            "    unsubscribe: true\n    tracking: false\n    label: Offres",
        ),
    ],
    ids=["workspace", "category"],
)
def test_a_setting_turns_tracking_off(demo, monkeypatch, setting) -> None:
    from typer.testing import CliRunner

    from campaignctl.cli.main import app

    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-23T10:00:00+01:00")
    config = demo / "campaignctl.yaml"
    text = config.read_text(encoding="utf-8")
    assert setting[0] in text
    config.write_text(text.replace(setting[0], setting[1]), encoding="utf-8")

    def preview() -> str:
        result = CliRunner().invoke(
            app,
            [
                "--workspace",
                str(demo),
                "preview",
                MARKETING,
                "--contact",
                "HOT-002",
                "--format",
                "html",
            ],
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    html = preview()
    assert f"{BASE}/o/" not in html and f"{BASE}/c/" not in html
    assert 'href="https://www.val-des-aiguilles.example"' in html
    assert f"{BASE}/u/" in html  # the unsubscribe link stays
    config.write_text(text, encoding="utf-8")
    html = preview()
    assert f"{BASE}/o/" in html and f"{BASE}/c/" in html


def test_the_stylesheet_is_served_and_nothing_else_under_assets(server: Server) -> None:
    with server.client() as client:
        css = client.get("/assets/style.css")
        other = client.get("/assets/..%2F..%2Fsettings.py")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "box-sizing" in css.text
    assert other.status_code == 404
