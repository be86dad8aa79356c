"""PDFs signed with the organisation's certificate (seed 003: "apposez la signature
électronique de votre structure"): a document with `sign: true` is served as a PAdES
signed copy, made with pyHanko from the certificate and key that `signing:` in
campaignctl.yaml names, the key's password read from the environment variable it names
(never from a file of the repository).

Signed copies are kept under `.campaignctl/signed/`, named by the SHA-256 of the source
and of the certificate: an edited document, or a new certificate, makes a new copy; an
unchanged one is signed once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from campaignctl.errors import UsageError
from campaignctl.spec.models import SigningSettings

SIGNED_DIR = Path(".campaignctl") / "signed"


def _file(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _signer(settings: SigningSettings, root: Path):  # type: ignore[no-untyped-def]
    from pyhanko.sign import signers

    password = None
    if settings.password_env:
        password = os.environ.get(settings.password_env)
        if password is None:
            raise UsageError(
                f"{settings.password_env} is not set: the signing key's password is read "
                "from it (signing.password_env)",
                hint=f"export {settings.password_env}=… in the environment of campaignctl serve",
            )
    key, certificate = _file(root, settings.key), _file(root, settings.certificate)
    for what, path in (("signing.key", key), ("signing.certificate", certificate)):
        if not path.is_file():
            raise UsageError(
                f"{what}: file {str(path)!r} not found",
                hint="campaignctl.yaml names the organisation's PEM key and certificate",
            )
    signer = signers.SimpleSigner.load(
        str(key), str(certificate), key_passphrase=password.encode() if password else None
    )
    if signer is None:
        raise UsageError(
            "the signing key or certificate could not be read (a wrong password, or not PEM)",
            hint="check signing.key, signing.certificate and the password variable",
        )
    return signer


def sign_pdf(source: Path, target: Path, settings: SigningSettings, root: Path) -> None:
    """Write `source` signed (PAdES baseline B) into `target`, atomically."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _signer(settings, root)
    meta = signers.PdfSignatureMetadata(
        field_name="Organisation",
        reason=settings.reason,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with source.open("rb") as given, os.fdopen(handle, "wb") as out:
            writer = IncrementalPdfFileWriter(given, strict=False)
            signers.sign_pdf(writer, meta, signer=signer, output=out)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def signed_copy(source: Path, settings: SigningSettings, root: Path) -> Path:
    """The signed copy of `source` under .campaignctl/signed/, made on first use."""
    digest = hashlib.sha256(source.read_bytes())
    digest.update(_file(root, settings.certificate).read_bytes())
    target = root / SIGNED_DIR / f"{digest.hexdigest()[:32]}-{source.name}"
    if not target.is_file():
        sign_pdf(source, target, settings, root)
    return target
