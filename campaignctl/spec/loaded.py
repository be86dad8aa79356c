"""A workspace as loaded: its documents by kind, where each came from, and the
diagnostics of every file (built by `spec.workspace.load_workspace`, read by every layer)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from campaignctl.errors import Diagnostic, Severity, SpecError, unknown_campaign
from campaignctl.spec.files import (
    AUDIENCES_DIR,
    CONFIG_FILE,
    STATE_DIR,
    TEMPLATE_SUFFIXES,
    TEMPLATES_DIR,
    UnsafePath,
    confined_path,
)
from campaignctl.spec.loader import Mark, SourceMap
from campaignctl.spec.models import (
    KINDS,
    Audience,
    Campaign,
    Column,
    Document,
    Questionnaire,
    Segment,
    WorkspaceConfig,
)
from campaignctl.spec.models import (
    List as ListSpec,
)
from campaignctl.spec.sources import SourceColumns

# Record attributes that every segment and template may use besides the audience's columns.
BUILTIN_ATTRIBUTES = ("key",)
SOURCE_PROBLEM = "csv-source"  # the diagnostic code of an audience CSV's own problems
# Facts about a record's activity in the campaign that automation `if:` steps may test.
ACTIVITY_ATTRIBUTES = (
    "opened",
    "clicked",
    "form_opened",
    "form_submitted",
    "unsubscribed",
    "bounced",
    "delivered",
    "answered",
    "in_list",
)

D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class LoadedDocument:
    """A valid document with where it came from, so later checks can point at it."""

    model: Document
    file: str  # relative to the workspace root, POSIX separators
    source_map: SourceMap
    partial: bool = False  # failed validation; kept (minus its bad keys) for reference checks

    def mark(self, *path: str | int) -> Mark:
        return self.source_map.locate(path)


@dataclass
class Workspace:
    root: Path
    config: WorkspaceConfig | None
    config_map: SourceMap | None
    documents: dict[str, dict[str, LoadedDocument]]
    diagnostics: list[Diagnostic]
    files: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    # names of documents that exist but failed validation: references to them are not
    # reported again as unknown (their own errors say what to fix)
    broken: dict[str, set[str]] = field(default_factory=dict)
    # what each audience's CSV header gives its records (audiences whose header was read)
    sources: dict[str, SourceColumns] = field(default_factory=dict)

    # ------------------------------------------------------------------ access
    def _models(self, kind: str, cls: type[D]) -> dict[str, D]:
        return {name: typing.cast(D, d.model) for name, d in self.documents.get(kind, {}).items()}

    @property
    def audiences(self) -> dict[str, Audience]:
        return self._models("Audience", Audience)

    @property
    def segments(self) -> dict[str, Segment]:
        return self._models("Segment", Segment)

    @property
    def questionnaires(self) -> dict[str, Questionnaire]:
        return self._models("Questionnaire", Questionnaire)

    @property
    def lists(self) -> dict[str, ListSpec]:
        return self._models("List", ListSpec)

    @property
    def campaigns(self) -> dict[str, Campaign]:
        return self._models("Campaign", Campaign)

    def campaign(self, name: str) -> Campaign:
        """The campaign called `name`, or the error every command gives for a name that is
        not one (exit 64, with "did you mean")."""
        found = self.campaigns.get(name)
        if found is None:
            raise unknown_campaign(name, self.campaigns)
        return found

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.WARNING]

    def require_valid(self) -> Workspace:
        """Raise a SpecError carrying every error unless the workspace is clean.

        A CSV source's own problems (encoding, header) are errors for `validate`, but do
        not stop the commands that never read it (send, report, the scheduler…): those
        that do (import, preview from the CSV) stop on them with the same located message.
        """
        errors = [d for d in self.errors if d.code != SOURCE_PROBLEM]
        if errors or self.config is None:
            raise SpecError(errors)
        return self

    def record_columns(self, audience: Audience) -> dict[str, Column] | None:
        """Every attribute of the audience's records, by name: its declared columns, the
        key, and the other columns of its CSV header as text (DESIGN §1). None when the
        header could not be read (no file yet): then nobody can tell which exist."""
        mapped = self.sources.get(audience.name)
        return mapped.columns if mapped is not None else None

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def template_file(self, name: str, part: str) -> Path:
        """The file of template `name` for `part` (html, text or sms); `UnsafePath` when
        the name leads out of templates/."""
        file = f"{name}{TEMPLATE_SUFFIXES[part]}"
        return confined_path(self.root, file, TEMPLATES_DIR, base=TEMPLATES_DIR, what="template")

    def signature_template(self) -> str | None:
        """The name under templates/ of `organization.signature` (None without one); a path
        leading out of templates/ is a SpecError at campaignctl.yaml (`confined_file`)."""
        signature = self.config.organization.signature if self.config else None
        if not signature:
            return None
        at = (None, "", "organization", "signature")
        path = self.confined_file(signature, TEMPLATES_DIR, "organization.signature", at)
        return path.relative_to(self.root.resolve() / TEMPLATES_DIR).as_posix()

    def audience_source(self, audience: Audience) -> Path:
        """The CSV file of `audience`, which must be inside audiences/ (`confined_file`)."""
        at = ("Audience", audience.name, "source")
        return self.confined_file(audience.source, AUDIENCES_DIR, "source", at)

    def confined_file(
        self, value: str, folder: str, what: str, at: tuple[Any, ...], *, base: str = ""
    ) -> Path:
        """The real file a definition names (spec.files.confined_path), for the code that
        reads it: a path leading out of `folder` is a SpecError (exit 65) at the YAML value.
        `at` is (kind, name, *key path) of the value, kind None for campaignctl.yaml."""
        try:
            return confined_path(self.root, value, folder, base=base, what=what)
        except UnsafePath as exc:
            kind, name, *path = at
            doc = self.documents.get(kind, {}).get(name)
            if doc is not None:
                file, mark = doc.file, doc.mark(*path)
            elif kind is None and self.config_map is not None:
                file, mark = CONFIG_FILE, self.config_map.locate(tuple(path))
            else:
                raise
            raise SpecError(
                [exc.diagnostic(file, mark.line, mark.column)], message=f"{what} {value!r} refused"
            ) from None

    def counts(self) -> dict[str, int]:
        return {kind: len(self.documents.get(kind, {})) for kind in KINDS}
