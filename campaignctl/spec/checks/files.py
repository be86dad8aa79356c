"""Checks of the files a campaign names: its templates, documents and logo."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.files import (
    DOCUMENTS_DIR,
    LOGO_MAX_BYTES,
    TEMPLATE_SUFFIXES,
    TEMPLATES_DIR,
    UnsafePath,
)
from campaignctl.spec.loaded import (
    LoadedDocument,
)
from campaignctl.spec.loader import PathKey


class FileChecks(CheckerBase):
    """Checks of the files a campaign names: its templates, documents and logo."""

    def _check_template(
        self, doc: LoadedDocument, path: PathKey, name: str, parts: tuple[str, ...]
    ) -> None:
        try:
            files = [self.ws.template_file(name, part) for part in parts]
        except UnsafePath as exc:  # said of the name as written, once for all its parts
            mark = doc.mark(*path)
            named = UnsafePath("template", name, exc.reason, exc.hint)
            self.ws.diagnostics.append(named.diagnostic(doc.file, mark.line, mark.column))
            return
        if any(file.is_file() for file in files):
            return
        wanted = " or ".join(f"{TEMPLATES_DIR}/{name}{TEMPLATE_SUFFIXES[p]}" for p in parts)
        what = "SMS" if parts == ("sms",) else "email"
        self._report(
            doc.file,
            doc.mark(*path),
            "missing-file",
            f"template {name!r} has no {what} part: {wanted} not found",
            f"create {wanted.split(' or ')[0]}",
        )

    def _check_document_file(
        self, doc: LoadedDocument, path: PathKey, relative: str, what: str
    ) -> Path | None:
        """The file under documents/ that `relative` names, or None once reported."""
        mark = doc.mark(*path)
        real = self._confined(doc.file, mark, relative, DOCUMENTS_DIR, what, base=DOCUMENTS_DIR)
        if real is not None and not real.is_file():
            self._report(
                doc.file,
                mark,
                "missing-file",
                f"{what} {relative!r} not found under {DOCUMENTS_DIR}/",
                f"paths are relative to {DOCUMENTS_DIR}/",
            )
            return None
        return real

    def _check_logo(self, doc: LoadedDocument, relative: str) -> None:
        """A campaign's logo: an image under documents/ small enough for the partner space
        to embed (it would otherwise show none, and say nothing)."""
        real = self._check_document_file(doc, ("logo",), relative, "logo")
        if real is None:
            return
        kind = mimetypes.guess_type(relative)[0] or ""
        if not kind.startswith("image/"):
            self._report(
                doc.file, doc.mark("logo"), "invalid-value",
                f"logo {relative!r} is not an image (by its name: {kind or 'unknown type'})",
                "name a .png, .jpg, .gif, .webp or .svg file under documents/",
            )  # fmt: skip
        elif (size := real.stat().st_size) > LOGO_MAX_BYTES:
            self._report(
                doc.file, doc.mark("logo"), "invalid-value",
                f"logo {relative!r} is {size // 1024} KiB; the partner space embeds a logo of "
                f"at most {LOGO_MAX_BYTES // 1024} KiB",
                "make the picture smaller (a 128-pixel-high PNG is a few KiB)",
            )  # fmt: skip
