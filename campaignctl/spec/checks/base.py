"""What every check shares: the workspace it reports into, located diagnostics, unknown
names with a close match, and path confinement (a file a definition names stays inside
the workspace)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from campaignctl.errors import Diagnostic, Severity
from campaignctl.spec.files import (
    UnsafePath,
    confined_path,
)
from campaignctl.spec.loaded import LoadedDocument, Workspace
from campaignctl.spec.loader import Mark, PathKey


class CheckerBase:
    """The state and reporting the per-kind checks share."""

    def __init__(self, workspace: Workspace, template_cache: bool = False) -> None:
        self.ws = workspace
        self.template_cache = template_cache
        # With an invalid campaignctl.yaml, the checks that need it are skipped (its own
        # errors are reported) and every other check still runs.
        self.config = workspace.config

    # ------------------------------------------------------------------ reporting
    def _report(
        self,
        file: str,
        mark: Mark,
        code: str,
        message: str,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.ws.diagnostics.append(
            Diagnostic(file, mark.line, mark.column, severity, code, message, hint)
        )

    def _unknown(
        self, doc: LoadedDocument, path: PathKey, what: str, name: str, known: Iterable[str]
    ) -> None:
        kind = {
            "audience": "Audience",
            "segment": "Segment",
            "questionnaire": "Questionnaire",
            "campaign": "Campaign",
            "list": "List",
        }.get(what)
        if kind and name in self.ws.broken.get(kind, ()):
            return
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif known:
            hint = f"known {what}s: {', '.join(known[:12])}" + (" …" if len(known) > 12 else "")
        else:
            hint = f"no {what} is defined yet"
        self._report(
            doc.file, doc.mark(*path), "unknown-reference", f"{what} {name!r} does not exist", hint
        )

    def _confined(
        self, file: str, mark: Mark, value: str, folder: str, what: str, base: str = ""
    ) -> Path | None:
        """The real file `value` names, or None once reported as an unsafe path."""
        try:
            return confined_path(self.ws.root, value, folder, base=base, what=what)
        except UnsafePath as exc:
            self.ws.diagnostics.append(exc.diagnostic(file, mark.line, mark.column))
            return None
