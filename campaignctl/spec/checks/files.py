"""Checks of the files a campaign names: its templates and attached documents."""

from __future__ import annotations

from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.files import (
    DOCUMENTS_DIR,
    TEMPLATE_SUFFIXES,
    TEMPLATES_DIR,
    UnsafePath,
)
from campaignctl.spec.loaded import (
    LoadedDocument,
)
from campaignctl.spec.loader import PathKey


class FileChecks(CheckerBase):
    """Checks of the files a campaign names: its templates and attached documents."""

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
    ) -> None:
        mark = doc.mark(*path)
        real = self._confined(doc.file, mark, relative, DOCUMENTS_DIR, what, base=DOCUMENTS_DIR)
        if real is not None and not real.is_file():
            self._report(
                doc.file,
                mark,
                "missing-file",
                f"document {relative!r} not found under {DOCUMENTS_DIR}/",
                f"paths are relative to {DOCUMENTS_DIR}/",
            )
