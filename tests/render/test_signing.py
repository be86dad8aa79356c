"""PDFs signed with the organisation's certificate (`sign: true`, seed 003), through
pyHanko: a key and a self-signed certificate made here with `cryptography`, the key's
password from the environment variable campaignctl.yaml names; the signature validated
by pyHanko against that certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from campaignctl.errors import UsageError
from campaignctl.render.signing import sign_pdf, signed_copy
from campaignctl.spec.models import SigningSettings

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def make_certificate(folder: Path, password: str | None = PASSWORD) -> tuple[Path, Path]:
    """(key, certificate) PEM files of a self-signed signing certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Office de tourisme du Val"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OT Val des Aiguilles")])  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_path, cert_path = folder / "org-key.pem", folder / "org-cert.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def validate(pdf: Path, certificate: Path) -> tuple[bool, bool, str | None]:
    """(intact, trusted, signer's common name) of the PDF's one signature."""
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(certificate))])
    with pdf.open("rb") as file:
        [signature] = PdfFileReader(file).embedded_signatures
        status = validate_pdf_signature(signature, context)
    return status.intact, status.trusted, status.signing_cert.subject.native["common_name"]


def test_a_pdf_is_signed_with_the_organisation_s_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = make_certificate(tmp_path)
    monkeypatch.setenv("ORG_SIGNING_PASSWORD", PASSWORD)
    settings = SigningSettings(certificate=str(cert), key=str(key),
                               password_env="ORG_SIGNING_PASSWORD")  # fmt: skip
    source = REPO / "documents" / "charte-qualite-2027.pdf"
    copy = signed_copy(source, settings, tmp_path)
    assert copy.parent == tmp_path / ".campaignctl" / "signed"
    assert copy.read_bytes().startswith(source.read_bytes())  # an incremental update
    assert validate(copy, cert) == (True, True, "Office de tourisme du Val")
    # signed once: the second call serves the same copy
    made = copy.stat().st_mtime_ns
    assert signed_copy(source, settings, tmp_path) == copy and copy.stat().st_mtime_ns == made


def test_a_tampered_signed_pdf_is_not_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = make_certificate(tmp_path, password=None)
    settings = SigningSettings(certificate=str(cert), key=str(key))
    signed = tmp_path / "signed.pdf"
    sign_pdf(REPO / "documents" / "charte-qualite-2027.pdf", signed, settings, tmp_path)
    data = bytearray(signed.read_bytes())
    at = data.index(b"Charte")  # a byte of the signed content
    data[at] = ord("X")
    signed.write_bytes(bytes(data))
    assert validate(signed, cert)[0] is False


def test_a_missing_password_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = make_certificate(tmp_path)
    monkeypatch.delenv("ORG_SIGNING_PASSWORD", raising=False)
    settings = SigningSettings(certificate=str(cert), key=str(key),
                               password_env="ORG_SIGNING_PASSWORD")  # fmt: skip
    with pytest.raises(UsageError) as error:
        sign_pdf(REPO / "documents" / "charte-qualite-2027.pdf", tmp_path / "out.pdf",
                 settings, tmp_path)  # fmt: skip
    assert error.value.message.startswith("ORG_SIGNING_PASSWORD is not set")
    assert not (tmp_path / "out.pdf").exists()


def test_validate_refuses_sign_true_without_signing_settings(demo: Path) -> None:
    from typer.testing import CliRunner

    from campaignctl.cli.main import app

    spec = demo / "campaigns" / "charte-qualite-2027.yaml"
    text = spec.read_text("utf-8").replace(
        "    to_sign: true\n", "    to_sign: true\n    sign: true\n"
    )
    text = text.replace("  - path: guide-partenaire-2027.txt\n",
                        "  - path: guide-partenaire-2027.txt\n    sign: true\n")  # fmt: skip
    spec.write_text(text, "utf-8")
    result = CliRunner().invoke(app, ["--workspace", str(demo), "validate"])
    assert result.exit_code == 65, result.output
    errors = [line for line in result.output.splitlines() if "error[" in line]
    assert errors == [
        "campaigns/charte-qualite-2027.yaml:18:11: error[missing-signing]: document "
        "'charte-qualite-2027.pdf' is to be signed by the organisation, but campaignctl.yaml "
        "has no `signing:`",
        "campaigns/charte-qualite-2027.yaml:21:11: error[invalid-value]: document "
        "'guide-partenaire-2027.txt': only a PDF is signed (`sign: true`)",
        "campaigns/charte-qualite-2027.yaml:21:11: error[missing-signing]: document "
        "'guide-partenaire-2027.txt' is to be signed by the organisation, but campaignctl.yaml "
        "has no `signing:`",
    ]
