"""Rendering the scaffold's campaigns: golden output, context, escaping, sandbox, links, DKIM."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import date, datetime
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from campaignctl.errors import SpecError, UsageError
from campaignctl.render import (
    CampaignRenderer,
    Recipient,
    RecordData,
    RenderOptions,
    Wave,
    WaveKind,
)
from campaignctl.render.links import LinkPurpose
from campaignctl.render.questionnaire import Period, shift_one_year
from campaignctl.spec.workspace import load_workspace

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))  # as conftest's `frozen`

HOTEL = RecordData(
    "H001",
    {
        "id": "H001",
        "nom": "Hôtel du Lac",
        "email": "reservation@hotel-du-lac.example",
        "telephone": "+33450123456",
        "category": "hotel",
        "commune": "Val",
        "tags": ["adherent"],
        "contract_end": date(2027, 3, 10),
        "opening_periods": [["2026-04-01", "2026-10-31"], ["2024-02-29", "2024-03-31"]],
    },
    "hotel",
)
OPTIONS = RenderOptions(now=lambda: NOW)


def renderer(root: Path, campaign: str = "update-2027", **options: object) -> CampaignRenderer:
    return CampaignRenderer(
        load_workspace(root), campaign, RenderOptions(now=lambda: NOW, **options)
    )


def recipient(*records: RecordData) -> Recipient:
    records = records or (HOTEL,)
    return Recipient(list(records), email=str(records[0].attributes["email"]), phone="+33612345678")


def headers_of(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return head.replace("\r\n", "\n") + "\n"


def test_questionnaire_email_matches_golden_files(
    scaffold: Path, frozen: object, golden: Callable[[str, str], None]
) -> None:
    email = renderer(scaffold).render_email(recipient())
    golden("update-2027.headers", headers_of(email.data))
    golden("update-2027.html", email.html)
    golden("update-2027.txt", email.text)
    message = message_from_bytes(email.data, policy=policy.default)
    assert message["Subject"] == "Office de tourisme du Val — mettez à jour votre fiche"
    for subtype, part in (("plain", email.text), ("html", email.html)):
        content = message.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert content.rstrip("\n") == part.rstrip("\n")
    assert message["Message-ID"] == f"<{email.message_id}>"
    assert "List-Unsubscribe" not in message  # administrative: no opt-out


def test_message_id_is_stable_per_campaign_wave_and_recipient(scaffold: Path) -> None:
    r = renderer(scaffold)
    first = r.render_email(recipient()).message_id
    assert r.render_email(recipient()).message_id == first
    assert r.render_email(recipient(), Wave(2, WaveKind.RELAUNCH)).message_id != first
    assert first.endswith("@example.org")


def test_relaunch_wave_changes_the_wording(scaffold: Path) -> None:
    email = renderer(scaffold).render_email(recipient(), Wave(2, WaveKind.RELAUNCH))
    assert email.text.startswith("RAPPEL : nous n'avons pas encore reçu votre réponse.")


def test_grouped_records_list_every_record_and_link_the_space(scaffold: Path) -> None:
    second = RecordData("H009", {**HOTEL.attributes, "nom": "Hôtel Annexe"}, "hotel")
    email = renderer(scaffold).render_email(recipient(HOTEL, second))
    assert "Votre adresse est celle de 2 établissements" in email.text
    assert "  - Hôtel Annexe (Val)" in email.text
    assert set(email.links) == {"space"}


def test_questionnaire_fields_follow_category_and_shift_periods_by_one_year(scaffold: Path) -> None:
    email = renderer(scaffold).render_email(recipient())
    assert "Périodes d'ouverture : 2027-04-01..2027-10-31, 2025-02-28..2025-03-31" in email.text
    gite = RecordData("G001", {**HOTEL.attributes, "category": "gite"}, "gite")
    assert "Périodes" not in renderer(scaffold).render_email(recipient(gite)).text
    assert shift_one_year(date(2028, 2, 29)) == date(2029, 2, 28)
    assert Period(date(2024, 2, 29), date(2024, 3, 1)).shifted().start == date(2025, 2, 28)


def test_record_values_are_escaped_in_html_and_not_in_text(scaffold: Path) -> None:
    evil = RecordData("X1", {**HOTEL.attributes, "nom": "<script>alert(1)</script>"}, "hotel")
    email = renderer(scaffold).render_email(recipient(evil))
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text


@pytest.mark.parametrize(
    "expression",
    ["''.__class__.__mro__", "record.__dict__", "links._factory", "record.__class__.__init__"],
)
def test_sandbox_blocks_private_attributes(scaffold: Path, expression: str) -> None:
    path = scaffold / "templates" / "update-request.txt.j2"
    path.write_text(path.read_text() + "{{ " + expression + " }}\n")
    with pytest.raises(SpecError) as caught:
        renderer(scaffold).render_email(recipient())
    assert caught.value.exit_code == 65
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.file == "templates/update-request.txt.j2"
    assert diagnostic.code in ("template-unsafe", "template-undefined")


def test_undefined_attribute_at_render_names_template_and_line(scaffold: Path) -> None:
    r = renderer(scaffold)
    odd = RecordData("X2", {"email": "x@example.org"}, "hotel")  # a record without `nom`
    with pytest.raises(SpecError) as caught:
        r.render_email(recipient(odd))
    assert caught.value.render().splitlines()[0] == (
        "templates/update-request.html.j2:16:1: error[template-undefined]: undefined variable: "
        "record has no attribute 'nom' (rendering the html part for record X2)"
    )


def test_marketing_category_gets_one_click_unsubscribe_and_sms_opt_out(
    scaffold: Path, frozen: object
) -> None:
    path = scaffold / "campaigns" / "update-2027.yaml"
    path.write_text(path.read_text().replace("category: administrative", "category: marketing"))
    r = renderer(scaffold)
    message = message_from_bytes(r.render_email(recipient()).data, policy=policy.default)
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://campagnes.example.org/u/")
    assert unsubscribe.endswith(", <mailto:contact@example.org?subject=unsubscribe>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe[1:].split(">", 1)[0].rsplit("/", 1)[1]
    assert r.signer is not None
    assert r.signer.load(LinkPurpose.UNSUBSCRIBE, token) == {
        "c": "update-2027",
        "k": "marketing",
        "r": ["H001"],
    }
    with pytest.raises(Exception, match="does not match"):
        r.signer.load(LinkPurpose.FORM, token)  # a salt per purpose
    sms = r.render_sms(recipient())
    assert sms.text.endswith("\nSTOP au 36111")


def test_missing_secret_is_an_error_unless_every_transport_is_file(
    scaffold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "development secret" in renderer(scaffold).warnings[0]
    config = scaffold / "campaignctl.yaml"
    config.write_text(
        config.read_text().replace(
            "transport: file                         # file writes",
            "transport: smtp\n    smtp: {host: localhost}  # file writes",
        )
    )
    with pytest.raises(UsageError, match="CAMPAIGNCTL_SECRET"):
        renderer(scaffold)
    monkeypatch.setenv("CAMPAIGNCTL_SECRET", "s3cret-for-tests")
    assert renderer(scaffold).warnings == []


def test_sms_is_rendered_with_encoding_and_parts(scaffold: Path) -> None:
    r = renderer(scaffold)
    sms = r.render_sms(recipient())
    prefix = "Office de tourisme du Val : merci de verifier votre fiche "
    assert sms.text.startswith(prefix + "https://campagnes.example.org/q/")
    assert (sms.info.encoding, sms.info.parts) == ("gsm-7", 1)  # 2 with the long form link
    assert sms.to == "+33612345678"
    assert r.signer is not None
    code = sms.text.removeprefix(prefix).rsplit("/", 1)[1]
    assert r.signer.load_short(code) == (
        LinkPurpose.FORM,
        {"c": "update-2027", "r": "H001", "w": 1},
    )
    assert set(sms.links) == {"form_short"}


def test_grouped_sms_carries_the_short_space_link(scaffold: Path) -> None:
    second = RecordData("H009", {**HOTEL.attributes, "nom": "Hôtel Annexe"}, "hotel")
    r = renderer(scaffold)
    sms = r.render_sms(recipient(HOTEL, second), Wave(2, WaveKind.RELAUNCH))
    assert sms.info.parts == 1
    code = sms.links["space_short"].rsplit("/", 1)[1]
    assert r.signer is not None
    assert r.signer.load_short(code) == (
        LinkPurpose.SPACE,
        {"c": "update-2027", "r": ["H001", "H009"], "w": 2},
    )


def test_logo_is_embedded_as_cid_and_attachments_are_attached(scaffold: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    (scaffold / "documents" / "logo.png").write_bytes(png)
    config = scaffold / "campaignctl.yaml"
    config.write_text(
        config.read_text().replace("  url: https", "  logo: documents/logo.png\n  url: https")
    )
    layout = scaffold / "templates" / "layouts" / "base.html.j2"
    layout.write_text(
        layout.read_text().replace("<body>", '<body><img src="{{ organization.logo }}" alt="">')
    )
    campaign = scaffold / "campaigns" / "update-2027.yaml"
    campaign.write_text(
        campaign.read_text().replace("  blocks:", "  attachments: [charte-qualite.txt]\n  blocks:")
    )
    email = renderer(scaffold).render_email(recipient())
    message = message_from_bytes(email.data, policy=policy.default)
    assert message.get_content_type() == "multipart/mixed"
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert images[0]["Content-ID"] == "<logo@example.org>"
    assert images[0].get_content() == png
    assert 'src="cid:logo@example.org"' in email.html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "charte-qualite.txt"


def test_dkim_signature_verifies(
    scaffold: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dkim = pytest.importorskip("dkim")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate a test key")
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = scaffold / "campaignctl.yaml"
    config.write_text(
        config.read_text().replace(
            "    rate: {per_second: 50}",
            "    rate: {per_second: 50}\n"
            "    dkim: {selector: s2027, domain: example.org, private_key_env: DKIM_KEY}",
        )
    )
    with pytest.raises(UsageError, match="DKIM_KEY"):
        renderer(scaffold).render_email(recipient())
    monkeypatch.setenv("DKIM_KEY", key.read_text())
    data = renderer(scaffold).render_email(recipient()).data
    assert data.startswith(b"DKIM-Signature: ")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2027._domainkey.example.org."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"Bonjour", b"Bonsoir"), dnsfunc=dns)


def test_questionnaire_values_equal_but_of_other_types_render_as_their_own(scaffold: Path) -> None:
    r = renderer(scaffold)
    shown = []
    for phone in (1, True, "1", 1.0, 1):
        record = RecordData("H001", {**HOTEL.attributes, "telephone": phone}, "hotel")
        text = r.render_email(recipient(record)).text
        shown.append(text.split("Téléphone de réservation (obligatoire) : ", 1)[1].split("\n")[0])
    assert shown == ["1", "True", "1", "1.0", "1"]


def test_a_template_changing_a_prefilled_list_does_not_change_the_next_message(
    scaffold: Path,
) -> None:
    path = scaffold / "templates" / "update-request.txt.j2"
    path.write_text(
        path.read_text().replace(
            "{% for field in questionnaire %}",
            '{% for field in questionnaire %}{{ field.value.append("+1") or ""'
            ' if field.type == "periods" else "" }}',
        )
    )
    r = renderer(scaffold)
    first, second = (r.render_email(recipient()).text for _ in range(2))
    assert "2025-02-28..2025-03-31, +1" in first
    assert second == first


def test_text_part_is_derived_from_the_html_only_without_a_txt_template(scaffold: Path) -> None:
    with_txt = renderer(scaffold).render_email(recipient())
    assert with_txt.text.startswith("Bonjour,\n\nComme chaque année")  # the .txt.j2, as written
    (scaffold / "templates" / "update-request.txt.j2").unlink()
    derived = renderer(scaffold).render_email(recipient())
    assert derived.text != with_txt.text
    assert "Établissement : Hôtel du Lac (Val)" in derived.text
    assert "<p>" not in derived.text and "Mettre à jour ma fiche" in derived.text
    message = message_from_bytes(derived.data, policy=policy.default)
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip(
        "\n"
    ) == derived.text.rstrip("\n")
