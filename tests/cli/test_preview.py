"""`campaignctl preview` and the template checks of `validate`, through the CLI."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

SECRET_NOTE = (
    "note: CAMPAIGNCTL_SECRET is not set: links are signed with the fixed development secret "
    "(accepted only with the file transport and for previews)\n"
)


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch):
    import time_machine

    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)
    with time_machine.travel("2027-03-01T08:00:00Z", tick=False):
        yield


def run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def test_preview_text_shows_headers_text_part_and_links(scaffold: Path) -> None:
    result = run(scaffold, "preview", "update-2027", "--contact", "C001")
    assert result.exit_code == 0, result.output
    token = "eyJjIjoidXBkYXRlLTIwMjciLCJyIjoiQzAwMSIsInciOjF9.a4UlgA.C37lzRuOkQ4-2TjbLRJmN37HQgw"
    url = f"https://campagnes.example.org/f/{token}"
    assert result.stdout == (
        "From: Office de tourisme <contact@example.org>\n"
        "To: campinglespins@example.net\n"
        "Reply-To: contact@example.org\n"
        "Subject: Office de tourisme du Val — mettez à jour votre fiche\n"
        "Date: Mon, 01 Mar 2027 09:00:00 +0100\n"
        "Message-ID: <83160e0bf60e7614cc197c9cdc138085@example.org>\n"
        "Feedback-ID: update-2027:administrative:campaignctl\n"
        "\n"
        "Bonjour,\n"
        "\n"
        "Comme chaque année, merci de vérifier les informations de votre établissement.\n"
        "\n"
        "Établissement : Camping Les Pins (Val)\n"
        "\n"
        f"Mettre à jour ma fiche : {url}\n"
        "\n"
        "Les informations à vérifier :\n"
        "  - Téléphone de réservation (obligatoire) : +33612345678\n"
        "  - Adresse email de contact : campinglespins@example.net\n"
        "  - Périodes d'ouverture : 2027-05-01..2027-09-30\n"
        "\n"
        "Merci pour votre aide.\n"
        "--\n"
        "Office de tourisme du Val\n"
        "1 place de la Mairie, 00000 Val\n"
        "\n"
        "Links:\n"
        f"  form: {url}\n"
    )
    assert result.stderr == SECRET_NOTE


def test_preview_sms_shows_encoding_and_parts(scaffold: Path) -> None:
    result = run(scaffold, "preview", "update-2027", "--channel", "sms", "--contact", "C002")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "To: +33698765432",
        "From: OTVAL",
        "Encoding: gsm-7, 129 septets, 1 part(s)",  # the short form link (2 parts with the long)
    ]
    assert lines[4].startswith(
        "Office de tourisme du Val : merci de verifier votre fiche https://campagnes.example.org/q/"
    )


def test_preview_by_category_shows_that_categorys_fields(scaffold: Path) -> None:
    gite = run(scaffold, "preview", "update-2027", "--category", "gite")
    hotel = run(scaffold, "preview", "update-2027", "--category", "hotel")
    assert gite.exit_code == hotel.exit_code == 0
    assert "Périodes d'ouverture" not in gite.stdout
    assert "Périodes d'ouverture" in hotel.stdout
    spa = run(scaffold, "preview", "update-2027", "--category", "spa")
    assert spa.exit_code == 0
    assert "no record of category 'spa' in audiences/contacts.csv: previewing 'H001'" in spa.stderr


def test_preview_eml_is_a_parseable_message(scaffold: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.eml"
    result = run(
        scaffold,
        "preview",
        "update-2027",
        "--contact",
        "G002",
        "--format",
        "eml",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == SECRET_NOTE + f"wrote {out}\n"
    message = message_from_bytes(out.read_bytes(), policy=policy.default)
    assert message["To"] == "famille.martin@example.com"
    assert "Gîte La Grange" in message.get_body(("html",)).get_content()  # grouped by address


def test_preview_html_writes_the_inlined_html(scaffold: Path) -> None:
    result = run(scaffold, "preview", "update-2027", "--format", "html")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert '<body style="font-family: Arial, sans-serif;color: #222;">' in result.stdout


def test_preview_undefined_variable_exits_65_naming_template_line_and_variable(
    scaffold: Path,
) -> None:
    path = scaffold / "templates" / "update-request.txt.j2"
    path.write_text(
        path.read_text().replace("{{ record.nom }}", "{{ record.nom }}{{ record.comune }}")
    )
    result = run(scaffold, "preview", "update-2027")
    assert result.exit_code == 65
    assert result.stderr == (
        "templates/update-request.txt.j2:14:43: error[template-undefined]: record has no "
        "attribute 'comune' (campaign 'update-2027')\n"
        "  hint: did you mean 'commune'?\n"
        "error: 1 error(s) in the workspace definitions\n"
    )


def test_preview_unknown_campaign_is_a_usage_error(scaffold: Path) -> None:
    result = run(scaffold, "preview", "update-2072")
    assert result.exit_code == 64
    assert result.stderr == (
        "error: campaign 'update-2072' does not exist\n  hint: did you mean 'update-2027'?\n"
    )


def test_validate_reports_template_syntax_errors_with_file_and_line(scaffold: Path) -> None:
    path = scaffold / "templates" / "renewal.html.j2"
    path.write_text(
        path.read_text().replace("{{ record.contract_end }}", "{{ record.contract_end }")
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65
    assert result.stdout == (
        "templates/renewal.html.j2:4:1: error[template-syntax]: syntax error: unexpected '}'\n"
        "  hint: see https://jinja.palletsprojects.com/en/stable/templates/\n"
    )


def test_validate_reports_undefined_variables_with_file_line_and_column(scaffold: Path) -> None:
    path = scaffold / "templates" / "update-request.html.j2"
    source = path.read_text()
    source = source.replace("{{ blocks.outro }}", "{{ blocks.outr }}")
    source = source.replace("{{ fiche.commune }}", "{{ fiche.comune }}")
    path.write_text(source + "{{ campain.name }}\n")
    result = run(scaffold, "validate")
    assert result.exit_code == 65
    assert result.stdout == (
        "templates/update-request.html.j2:12:59: error[template-undefined]: record has no "
        "attribute 'comune' (campaign 'update-2027')\n"
        "  hint: did you mean 'commune'?\n"
        "templates/update-request.html.j2:25:14: error[template-undefined]: blocks has no "
        "attribute 'outr' (campaign 'update-2027')\n"
        "  hint: did you mean 'outro'?\n"
        "templates/update-request.html.j2:27:4: error[template-undefined]: 'campain' is "
        "undefined (campaign 'update-2027')\n"
        "  hint: did you mean 'campaign'?\n"
    )
