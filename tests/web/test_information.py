"""Information campaigns in the partner space (seed 003) through `serve` on a real port, on
SQLite and PostgreSQL: the space shows a campaign triggered by the visit at once and one
triggered by a received document after the scheduler enrolled the record, with the
dashboard message, the logo and the documents by typology; a `to_sign` document is signed
from the space (a `document_signed` event with the file's hash, in `contacts export`);
a notice's space link opens the space."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.render.links import LinkPurpose
from tests.web.conftest import QUESTIONNAIRE, Sent, Server, cli, read_message
from tests.web.test_form import BASE, SIGNER

VISIT = "2027-01-05T10:00:00+01:00"  # inside both windows (charte from 2027-01-04)
CHARTE = "charte-qualite-2027"
GUIDE = "taxe-sejour-guide"


@pytest.fixture
def info_server(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", VISIT)
    for args in (["apply", CHARTE, GUIDE, "--auto-approve"],):
        result = cli(server.sent.root, *args)
        assert result.exit_code == 0, result.output
    return server


def space_path(key: str) -> str:
    """The space link of one record, as a questionnaire email carries it."""
    url = SIGNER.url(LinkPurpose.SPACE, {"c": QUESTIONNAIRE, "r": [key], "w": 1})
    return url.removeprefix(BASE)


def accommodation_space(sent: Sent) -> tuple[str, str]:
    return "HOT-003", space_path("HOT-003")


def ingest(sent: Sent, *events: dict[str, object]) -> None:
    lines = "".join(json.dumps(e) + "\n" for e in events)
    result = CliRunner().invoke(app, ["--workspace", str(sent.root), "events", "ingest", "-"],
                                input=lines)  # fmt: skip
    assert result.exit_code == 0, result.output


def sections(page: httpx.Response) -> list[str]:
    return re.findall(r'<article class="information-campaign" id="campaign-([^"]+)">', page.text)


def test_the_space_shows_information_campaigns_and_signs_a_to_sign_document(
    info_server: Server,
) -> None:
    sent = info_server.sent
    key, path = accommodation_space(sent)
    with info_server.client() as client:
        page = client.get(path)
        assert page.status_code == 200, page.text
        # the visit-triggered charter shows at this very visit; the guide waits for a document
        assert sections(page) == [CHARTE]
        assert (
            "La charte qualité 2027 est disponible : merci de la lire et de la signer" in page.text
        )
        assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="Logo', page.text)
        # the campaign's own logo (`logo:`), embedded as the file under documents/ is
        logo = (sent.root / "documents" / "charte-qualite-2027.png").read_bytes()
        inline = base64.b64encode(logo).decode()
        assert f'<h3><img class="campaign-logo" src="data:image/png;base64,{inline}"' in page.text
        assert "<h4>Charte</h4>" in page.text and "<h4>Guide</h4>" in page.text
        links = dict(re.findall(r'<li><a href="(/d/[^"]+)">([^<]+)</a>', page.text))
        assert sorted(links.values()) == [
            "Charte qualité des partenaires 2027",
            "Guide du partenaire 2027",
        ]
        charter = next(link for link, label in links.items() if label.startswith("Charte"))
        download = client.get(charter)
        assert download.status_code == 200
        pdf = (sent.root / "documents" / "charte-qualite-2027.pdf").read_bytes()
        assert download.content == pdf

        # a document of the tourist-tax type arrives: the next pass enrols the record
        received = {"type": "document_received", "record": key, "at": VISIT,
                    "data": {"document_type": "releve-taxe-sejour"}}  # fmt: skip
        ingest(sent, received)
        tick = cli(sent.root, "scheduler", "tick")
        assert tick.exit_code in (0, 1), tick.output
        assert GUIDE in sections(client.get(path)) and CHARTE in sections(client.get(path))

        # signing: the form posts with its CSRF token; a POST without it is refused
        page = client.get(path)
        form = re.search(
            r'<form method="post" action="([^"]+)" class="sign">\s*<input type="hidden" '
            r'name="csrf_token" value="([0-9a-f]+)">\s*<input type="hidden" name="campaign" '
            r'value="([^"]+)">\s*<input type="hidden" name="document" value="([^"]+)">',
            page.text,
        )
        assert form is not None, page.text
        action, token, campaign, document = form.groups()
        assert (campaign, document) == (CHARTE, "charte-qualite-2027.pdf")
        refused = client.post(action, data={"campaign": campaign, "document": document})
        assert refused.status_code == 403
        signed = client.post(
            action, data={"csrf_token": token, "campaign": campaign, "document": document}
        )
        assert signed.status_code == 200, signed.text
        assert "« Charte qualité des partenaires 2027 » est signé" in signed.text
        again = client.get(path)
        assert "Signé le 05/01/2027" in again.text
        assert 'name="document" value="charte-qualite-2027.pdf"' not in again.text
        # a document that is not to sign cannot be signed
        other = client.post(
            action,
            data={"csrf_token": token, "campaign": CHARTE, "document": "guide-partenaire-2027.txt"},
        )
        assert other.status_code == 404

    rows = sent.query(
        "SELECT r.key, e.data FROM event e JOIN record r ON r.id = e.record_id "
        "WHERE e.type = 'document_signed'"
    )
    assert len(rows) == 1
    data = rows[0][1] if isinstance(rows[0][1], dict) else json.loads(rows[0][1])
    assert (rows[0][0], data) == (
        key,
        {"document": "charte-qualite-2027.pdf", "sha256": hashlib.sha256(pdf).hexdigest()},
    )
    exported = cli(sent.root, "contacts", "export", key)
    assert exported.exit_code == 0, exported.output
    assert "document_signed" in exported.stdout


def test_an_organisation_logo_given_by_url_is_shown_and_allowed_by_the_pages_csp(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A logo by https:// URL is linked, not embedded: the pages' CSP names its origin (it
    allowed only their own images and data: URIs, so the browser showed no logo)."""
    from campaignctl.web.app import create_app
    from campaignctl.web.settings import ServeSettings
    from tests.web.conftest import run_app

    monkeypatch.setenv("CAMPAIGNCTL_NOW", VISIT)
    config = sent.root / "campaignctl.yaml"
    url = "https://cdn.example.org/office/logo.png"
    config.write_text(config.read_text().replace("logo: documents/logo.png", f"logo: {url}"))
    assert cli(sent.root, "apply", CHARTE, "--auto-approve").exit_code == 0
    application = create_app(ServeSettings(root=str(sent.root), store_url=sent.store_url))
    for base in run_app(application):
        with httpx.Client(base_url=base, timeout=30) as client:
            page = client.get(accommodation_space(sent)[1])
    assert page.status_code == 200, page.text
    assert f'<img src="{url}" alt="Logo' in page.text
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://cdn.example.org;" in policy
    assert "default-src 'none'" in policy


def test_a_restaurant_s_space_shows_no_information_campaign(info_server: Server) -> None:
    with info_server.client() as client:
        page = client.get(space_path("RES-001"))
    assert page.status_code == 200, page.text
    assert sections(page) == []


def test_a_notice_s_space_link_opens_the_space(info_server: Server) -> None:
    sent = info_server.sent
    key, _ = accommodation_space(sent)
    received = {"type": "document_received", "record": key, "at": VISIT,
                "data": {"document_type": "releve-taxe-sejour"}}  # fmt: skip
    ingest(sent, received)
    tick = cli(sent.root, "scheduler", "tick")
    assert tick.exit_code in (0, 1), tick.output
    [notice] = sorted((Path(sent.root) / ".campaignctl" / "outbox" / GUIDE).glob("*.eml"))
    link = sent.local(read_message(notice).link("s"))
    with info_server.client() as client:
        page = client.get(link)
    assert page.status_code == 200, page.text
    assert GUIDE in sections(page)
    assert "Compléter" not in page.text  # no form: the notice's campaign asks nothing


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_a_partner_signs_the_charter_in_a_real_browser(info_server: Server) -> None:
    from playwright.sync_api import sync_playwright

    key, path = accommodation_space(info_server.sent)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(info_server.base + path)
            charter = page.locator(f"#campaign-{CHARTE}")
            assert "merci de la lire et de la signer" in charter.inner_text()
            assert page.get_by_role(
                "img", name="Logo de Office de tourisme du Val des Aiguilles"
            ).is_visible()
            page.get_by_role("button", name="Signer Charte qualité des partenaires 2027").click()
            assert page.get_by_role("heading", level=1).inner_text() == "Document signé"
            page.get_by_role("link", name="Revenir à mon espace").click()
            assert "Signé le 05/01/2027" in page.locator(f"#campaign-{CHARTE}").inner_text()
        finally:
            browser.close()
    assert info_server.sent.query(
        "SELECT r.key FROM event e JOIN record r ON r.id = e.record_id "
        "WHERE e.type = 'document_signed'"
    ) == [(key,)]


@pytest.fixture
def signing_server(sent: Sent, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """serve on a workspace whose charter is signed by the organisation (`sign: true`),
    its key and certificate outside the workspace, the password in the environment."""
    from campaignctl.web.app import create_app
    from campaignctl.web.settings import ServeSettings
    from tests.render.test_signing import PASSWORD, make_certificate
    from tests.web.conftest import run_app

    keys = tmp_path / "keys"
    keys.mkdir()
    key, cert = make_certificate(keys)
    monkeypatch.setenv("ORG_SIGNING_PASSWORD", PASSWORD)
    monkeypatch.setenv("CAMPAIGNCTL_NOW", VISIT)
    config = sent.root / "campaignctl.yaml"
    config.write_text(
        config.read_text("utf-8") + f"\nsigning:\n  certificate: {cert}\n  key: {key}\n"
        "  password_env: ORG_SIGNING_PASSWORD\n",
        "utf-8",
    )
    spec = sent.root / "campaigns" / f"{CHARTE}.yaml"
    text = spec.read_text("utf-8").replace(
        "    to_sign: true\n", "    to_sign: true\n    sign: true\n"
    )
    spec.write_text(text, "utf-8")
    result = cli(sent.root, "apply", CHARTE, "--auto-approve")
    assert result.exit_code == 0, result.output
    application = create_app(ServeSettings(root=str(sent.root), store_url=sent.store_url))
    for base in run_app(application):
        yield Server(base, sent), cert


def test_a_sign_true_pdf_is_served_signed_by_the_organisation(signing_server) -> None:  # type: ignore[no-untyped-def]
    from tests.render.test_signing import validate

    server, cert = signing_server
    _, path = accommodation_space(server.sent)
    with server.client() as client:
        page = client.get(path)
        links = dict(re.findall(r'<li><a href="(/d/[^"]+)">([^<]+)</a>', page.text))
        charter = next(link for link, label in links.items() if label.startswith("Charte"))
        download = client.get(charter)
        assert download.status_code == 200
        form = re.search(r'action="([^"]+)" class="sign">\s*<input type="hidden" '
                         r'name="csrf_token" value="([0-9a-f]+)">', page.text)  # fmt: skip
        assert form is not None
        signed = client.post(form.group(1), data={"csrf_token": form.group(2),
                             "campaign": CHARTE, "document": "charte-qualite-2027.pdf"})  # fmt: skip
        assert signed.status_code == 200, signed.text
    copy = server.sent.root / "served.pdf"
    copy.write_bytes(download.content)
    assert validate(copy, cert) == (True, True, "Office de tourisme du Val")
    # the partner's signature holds the hash of the signed copy they downloaded
    [(data,)] = server.sent.query("SELECT data FROM event WHERE type = 'document_signed'")
    data = data if isinstance(data, dict) else json.loads(data)
    assert data["sha256"] == hashlib.sha256(download.content).hexdigest()
