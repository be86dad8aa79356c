"""Finding, loading and checking a workspace: `campaignctl.yaml` and every document.

`load_workspace` never raises for bad content: it returns a `Workspace` whose
`diagnostics` list every problem of every file in one pass. Callers that need
valid definitions call `Workspace.require_valid()`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from campaignctl.errors import Diagnostic, InvalidValue, Severity, SpecError, UsageError
from campaignctl.spec.files import (
    AUDIENCES_DIR,
    CONFIG_FILE,
    DOCUMENTS_DIR,
    STATE_DIR,
    TEMPLATES_DIR,
    UnsafePath,
    confined_path,
    document_files,
)
from campaignctl.spec.loader import Mark, PathKey, SourceMap, load_yaml_file
from campaignctl.spec.models import (
    KINDS,
    Audience,
    Campaign,
    Channel,
    Column,
    ColumnType,
    Condition,
    Document,
    EmailTransportKind,
    Operators,
    Questionnaire,
    Segment,
    SmsTransportKind,
    Step,
    WorkspaceConfig,
)
from campaignctl.spec.models import (
    List as ListSpec,
)
from campaignctl.spec.sources import SourceColumns, SourceError, read_header, source_columns
from campaignctl.spec.types import looks_like_relative_date, parse_relative_date

TEMPLATE_SUFFIXES = {"html": ".html.j2", "text": ".txt.j2", "sms": ".sms.j2"}
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


# =========================================================================== discovery


def _display(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def unknown_campaign(name: str, known: Iterable[str]) -> UsageError:
    """The one error for a CAMPAIGN argument that names no campaign (defined or applied)."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1)
    listed = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return UsageError(
        f"campaign {name!r} does not exist",
        hint=f"did you mean {close[0]!r}?" if close else f"campaigns: {listed or 'none'}",
    )


# =========================================================================== loading


def load_workspace(root: Path, *, template_cache: bool = False) -> Workspace:
    """Load and check every definition of the workspace at `root`.

    `template_cache=True` reuses the template diagnostics of the last run when no
    definition or template changed (`.campaignctl/template-check.json`): commands use it,
    `validate` always analyses afresh.
    """
    root = root.resolve()
    diagnostics: list[Diagnostic] = []
    files = [CONFIG_FILE]

    config, config_map = _load_config(root, diagnostics)

    documents: dict[str, dict[str, LoadedDocument]] = {kind: {} for kind in KINDS}
    broken: dict[str, set[str]] = {}
    for path in document_files(root):
        relative = path.relative_to(root).as_posix()
        try:  # a definition file linked from outside the workspace is not read
            confined_path(root, relative, relative.partition("/")[0], what="definition file")
        except UnsafePath as exc:
            files.append(relative)
            diagnostics.append(exc.diagnostic(relative, 1, 1))
            continue
        display = _display(root, path)
        files.append(display)
        yaml_docs, problems = load_yaml_file(path, display)
        diagnostics.extend(problems)
        if not yaml_docs and not problems:
            diagnostics.append(
                Diagnostic(
                    display,
                    1,
                    1,
                    Severity.WARNING,
                    "empty-file",
                    "the file holds no document",
                    "remove it, or add a document with `kind:` and `name:`",
                )
            )
        for ydoc in yaml_docs:
            loaded = _build_document(ydoc.data, display, ydoc.source_map, diagnostics)
            if loaded is None or loaded.partial:
                data = ydoc.data if isinstance(ydoc.data, dict) else {}
                if (
                    isinstance(data.get("kind"), str)
                    and data["kind"] in KINDS
                    and isinstance(data.get("name"), str)
                ):
                    broken.setdefault(data["kind"], set()).add(data["name"])
            if loaded is None:
                continue
            kind, name = loaded.model.kind, loaded.model.name
            if name in documents[kind]:
                first = documents[kind][name]
                mark = loaded.mark("name")
                first_mark = first.mark("name")
                diagnostics.append(
                    Diagnostic(
                        display,
                        mark.line,
                        mark.column,
                        Severity.ERROR,
                        "duplicate-name",
                        f"{kind} {name!r} is already defined in {first.file}:{first_mark.line}",
                        f"names are unique per kind: rename one of the two {kind} documents",
                    )
                )
                continue
            documents[kind][name] = loaded

    workspace = Workspace(
        root, config, config_map, documents, diagnostics, files, _templates(root), broken
    )
    _Checker(workspace, template_cache).run()
    workspace.diagnostics = sorted(set(workspace.diagnostics))
    return workspace


def _templates(root: Path) -> list[str]:
    base = root / TEMPLATES_DIR
    if not base.is_dir():
        return []
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.j2") if p.is_file())


def _load_config(
    root: Path, diagnostics: list[Diagnostic]
) -> tuple[WorkspaceConfig | None, SourceMap | None]:
    try:
        path = confined_path(root, CONFIG_FILE, "", what="definition file")
    except UnsafePath as exc:
        diagnostics.append(exc.diagnostic(CONFIG_FILE, 1, 1))
        return None, None
    docs, problems = load_yaml_file(path, CONFIG_FILE)
    diagnostics.extend(problems)
    if problems:
        return None, None
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        diagnostics.append(
            Diagnostic(
                CONFIG_FILE,
                1,
                1,
                Severity.ERROR,
                "invalid-value",
                f"{CONFIG_FILE} must hold one mapping of settings",
                "start from the file `campaignctl init` writes",
            )
        )
        return None, None
    doc = docs[0]
    try:
        return WorkspaceConfig.model_validate(doc.data), doc.source_map
    except ValidationError as exc:
        diagnostics.extend(
            diagnostics_from_validation(exc, CONFIG_FILE, doc.source_map, WorkspaceConfig)
        )
        return None, doc.source_map


def _build_document(
    data: Any, file: str, smap: SourceMap, diagnostics: list[Diagnostic]
) -> LoadedDocument | None:
    kinds = ", ".join(KINDS)
    if not isinstance(data, dict):
        mark = smap.locate(())
        diagnostics.append(
            Diagnostic(
                file,
                mark.line,
                mark.column,
                Severity.ERROR,
                "invalid-value",
                "a document must be a mapping with `kind:` and `name:`",
                f"start the document with `kind: <one of {kinds}>` and `name: <slug>`",
            )
        )
        return None
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        if kind is None:
            mark = smap.locate(())
            message = "the document has no `kind:`"
        else:
            mark = smap.locate(("kind",))
            message = f"unknown kind {kind!r}"
        close = difflib.get_close_matches(kind, list(KINDS), n=1) if isinstance(kind, str) else []
        hint = f"did you mean {close[0]!r}?" if close else f"kind is one of {kinds}"
        diagnostics.append(
            Diagnostic(file, mark.line, mark.column, Severity.ERROR, "unknown-kind", message, hint)
        )
        return None
    model_cls = KINDS[kind]
    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        diagnostics.extend(diagnostics_from_validation(exc, file, smap, model_cls))
        salvaged = _salvage(model_cls, data, exc, smap)
        return LoadedDocument(salvaged, file, smap, partial=True) if salvaged else None
    return LoadedDocument(model, file, smap)


def _salvage(
    model_cls: type[Document], data: dict[str, Any], exc: ValidationError, smap: SourceMap
) -> Document | None:
    """Drop the keys that failed and validate again, so the cross-document checks can
    still report the rest of the file's problems in the same pass."""
    import copy

    data = copy.deepcopy(data)
    for _ in range(5):
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                path = (*smap.known_prefix(loc[:-1]), loc[-1])
            elif err["type"] == "missing":  # drop the incomplete mapping itself
                path = smap.known_prefix(loc[:-1])
            else:
                path = smap.known_prefix(loc)
            if len(path) < 1 or path[0] in ("kind", "name"):
                return None
            parent: Any = data
            try:
                for part in path[:-1]:
                    parent = parent[part]
            except (KeyError, IndexError, TypeError):
                continue  # an earlier error of this pass dropped what held it
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
                parent.pop(path[-1])
        try:
            return model_cls.model_validate(data)
        except ValidationError as again:
            exc = again
        except (KeyError, IndexError, TypeError):
            return None
    return None


# =========================================================================== pydantic → diagnostics


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types a (possibly Annotated / Optional / Union) annotation may hold."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _step_into(tp: Any, part: str | int) -> Any:
    for option in _unwrap(tp):
        origin = typing.get_origin(option)
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
        if origin is dict and not isinstance(part, int):
            return typing.get_args(option)[1]
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            for name, info in option.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
            if option is Condition:  # any other key of a condition is an attribute test
                return Operators
    return None


def model_at(model_cls: type[BaseModel], path: PathKey) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `path`, if it is one."""
    current: Any = model_cls
    for part in path:
        current = _step_into(current, part)
        if current is None:
            return None
    for option in _unwrap(current):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def allowed_keys(model_cls: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model_cls.model_fields.items()]


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def diagnostics_from_validation(
    exc: ValidationError, file: str, smap: SourceMap, model_cls: type[BaseModel]
) -> list[Diagnostic]:
    """Map each pydantic error back to the line and column of the YAML that caused it."""
    out: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            key = loc[-1]
            parent = smap.known_prefix(loc[:-1])
            mark = smap.locate((*parent, key), key=True)
            where = f" in {_dotted(parent)}" if parent else ""
            code, message = "unknown-key", f"unknown key {key!r}{where}"
            parent_model = model_at(model_cls, parent)
            candidates = allowed_keys(parent_model) if parent_model else []
            close = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif candidates:
                hint = f"allowed keys here: {', '.join(candidates)}"
            else:
                hint = "remove it"
            if str(key) in ("password", "token", "secret", "api_key", "private_key"):
                hint = (
                    "secrets never go in YAML: put the secret in an environment variable "
                    f"and name it with `{key}_env:`"
                )
        elif kind == "missing":
            parent = smap.known_prefix(loc[:-1])
            mark = smap.locate(parent)
            where = f" in {_dotted(parent)}" if parent else ""
            code, message = "missing-field", f"missing required key {loc[-1]!r}{where}"
            hint = f"add `{loc[-1]}:`"
        else:
            path = smap.known_prefix(loc)
            mark = smap.locate(path)
            text = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            got = err.get("input")
            suffix = ""
            if (
                kind not in ("value_error",)
                and isinstance(got, (str, int, float, bool))
                and got is not None
            ):
                suffix = f" (got {_short(got)})"
            code = "invalid-value"
            message = f"{_dotted(path)}: {text}{suffix}" if path else f"{text}{suffix}"
            hint = _hint_for(err) or _schema_hint(model_cls)
        signature = (mark.line, mark.column, code)
        if signature in seen:  # unions report one error per member: keep the first
            continue
        seen.add(signature)
        out.append(Diagnostic(file, mark.line, mark.column, Severity.ERROR, code, message, hint))
    return out


def _schema_hint(model_cls: type[BaseModel]) -> str:
    """The hint of a value error that has no better one: where the allowed values are."""
    name = next((k.lower() for k, cls in KINDS.items() if cls is model_cls), "config")
    return f"`campaignctl schema {name}` describes every key and the values it takes"


def _hint_for(err: Any) -> str | None:
    kind = err["type"]
    if isinstance(err.get("ctx", {}).get("error"), InvalidValue):
        return err["ctx"]["error"].hint
    if kind == "enum":
        expected = err.get("ctx", {}).get("expected")
        return f"use one of {expected}" if expected else None
    if kind.startswith(("datetime", "date")):
        return "write dates as 2027-03-01 and times as 2027-03-01T09:00"
    if kind.endswith("_type"):
        return "check the value's type (quote text, unquote numbers and booleans)"
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^[A-Z_]"):
            return "give the NAME of an environment variable (e.g. SMTP_PASSWORD), not its value"
        return f"the value must match {pattern}"
    return None


# =========================================================================== cross-document checks


class _Checker:
    """Checks that need more than one document: references, files, schedules, channels."""

    def __init__(self, workspace: Workspace, template_cache: bool = False) -> None:
        self.ws = workspace
        self.template_cache = template_cache
        # With an invalid campaignctl.yaml, the checks that need it are skipped (its own
        # errors are reported) and every other check still runs.
        self.config = workspace.config

    def run(self) -> None:
        if self.config is not None:
            self._check_config()
        for doc in self.ws.documents["Audience"].values():
            self._check_audience(doc)
        for doc in self.ws.documents["Segment"].values():
            self._check_segment(doc)
        self._check_segment_cycles()
        for doc in self.ws.documents["Questionnaire"].values():
            self._check_questionnaire(doc)
        for doc in self.ws.documents["List"].values():
            self._check_list(doc)
        for doc in self.ws.documents["Campaign"].values():
            self._check_campaign(doc)
        self._check_templates()

    def _check_templates(self) -> None:
        """Template syntax and variables (spec.templates): parsed, never rendered."""
        from campaignctl.spec.templates import (
            cached_workspace_templates,
            check_workspace_templates,
        )

        check = cached_workspace_templates if self.template_cache else check_workspace_templates
        self.ws.diagnostics.extend(check(self.ws))

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

    # ------------------------------------------------------------------ config
    def _check_config(self) -> None:
        smap = typing.cast(SourceMap, self.ws.config_map)
        config = typing.cast(WorkspaceConfig, self.config)
        org = config.organization
        for key, folder in (("logo", DOCUMENTS_DIR), ("signature", TEMPLATES_DIR)):
            value = getattr(org, key)
            if not value or (key == "logo" and value.startswith(("http://", "https://"))):
                continue  # a logo given by URL is linked, not embedded
            mark = smap.locate(("organization", key))
            path = self._confined(CONFIG_FILE, mark, value, folder, f"organization.{key}")
            if path is not None and not path.is_file():
                self._report(
                    CONFIG_FILE,
                    mark,
                    "missing-file",
                    f"organization.{key}: file {value!r} not found",
                    f"the path is relative to the workspace root, inside {folder}/",
                )
        for name, system in config.systems.items():
            if system.path:
                mark = smap.locate(("systems", name, "path"))
                self._confined(CONFIG_FILE, mark, system.path, "", f"systems.{name}.path")
        for name, sender in config.senders.items():
            if sender.transport == EmailTransportKind.SMTP and sender.smtp is None:
                self._report(
                    CONFIG_FILE,
                    smap.locate(("senders", name, "transport")),
                    "channel",
                    f"sender {name!r} uses transport smtp but has no `smtp:` settings",
                    "add `smtp: {host: ..., port: 587}` or use `transport: file`",
                )
            smtp = sender.smtp
            if sender.transport == EmailTransportKind.SMTP and smtp and smtp.plaintext_auth:
                key = "username_env" if smtp.username_env else "password_env"
                self._report(
                    CONFIG_FILE,
                    smap.locate(("senders", name, "smtp", key)),
                    "plaintext-auth",
                    f"senders.{name}.smtp: AUTH would send the password in clear to "
                    f"{smtp.host} (starttls and tls are off)",
                    "set `starttls: true` (port 587) or `tls: true` (port 465); if the network "
                    "to the server is trusted, set `allow_plaintext_auth: true`",
                )
        sms = config.sms
        if sms is not None and sms.transport == SmsTransportKind.HTTP and sms.http is None:
            self._report(
                CONFIG_FILE,
                smap.locate(("sms", "transport")),
                "channel",
                "sms uses transport http but has no `http:` settings",
                "add `http: {url: ..., token_env: SMS_TOKEN}` or use `transport: file`",
            )

    # ------------------------------------------------------------------ audiences
    def _check_audience(self, doc: LoadedDocument) -> None:
        audience = typing.cast(Audience, doc.model)
        mark = doc.mark("source")
        path = self._confined(doc.file, mark, audience.source, AUDIENCES_DIR, "source")
        if path is not None and not path.is_file():
            self._report(
                doc.file,
                mark,
                "missing-file",
                f"source file {audience.source!r} not found",
                "`audience import` needs it, and without it the attributes that templates, "
                "segments and questionnaires use cannot be checked; paths are relative to "
                "the workspace root",
                Severity.WARNING,
            )
        elif path is not None:  # an unsafe path is reported, and never read
            self._check_audience_source(doc, audience, path)
        for name, column in audience.columns.items():
            if column.region is not None and column.type != ColumnType.PHONE:
                self._report(
                    doc.file,
                    doc.mark("columns", name, "region"),
                    "invalid-value",
                    f"columns.{name}.region applies to phone columns only",
                    "remove it or set `type: phone`",
                    Severity.WARNING,
                )

    def _check_audience_source(self, doc: LoadedDocument, audience: Audience, path: Path) -> None:
        """Read the CSV's header (and first 64 KiB) at `path` (confined to audiences/) as the
        import will: a file it could not read is an error here, and the header tells which
        attributes the records have."""
        try:
            head = read_header(path, audience, audience.source)
        except SourceError as exc:
            self._report(exc.file, Mark(exc.line or 1, 1), SOURCE_PROBLEM, exc.what, exc.hint)
            return
        mapped = source_columns(audience, head.header)
        for name in mapped.missing:
            message, hint = mapped.missing_column(audience, name, head.header)
            path = ("columns", name) if name in audience.columns else ("key",)
            self._report(doc.file, doc.source_map.locate(path, key=True), SOURCE_PROBLEM,
                         f"{message} of {audience.source}", hint)  # fmt: skip
        for header, why in mapped.unkept:
            self._report(
                audience.source, Mark(1, 1), SOURCE_PROBLEM,
                f"column {header!r} gives no attribute: {why}",
                f"declare it under `columns:` in {doc.file} with a name of its own and "
                f"`header: {header!r}`",
                Severity.WARNING,
            )  # fmt: skip
        self.ws.sources[audience.name] = mapped

    # ------------------------------------------------------------------ lists
    def _check_list(self, doc: LoadedDocument) -> None:
        list_ = typing.cast(ListSpec, doc.model)
        if list_.audience not in self.ws.audiences:
            self._unknown(doc, ("audience",), "audience", list_.audience, self.ws.audiences)

    def _check_list_ref(
        self, doc: LoadedDocument, path: PathKey, name: str, audience_name: str | None
    ) -> None:
        """A list an automation names exists, and holds records of the campaign's audience."""
        list_ = self.ws.lists.get(name)
        if list_ is None:
            self._unknown(doc, path, "list", name, self.ws.lists)
        elif audience_name and list_.audience != audience_name:
            self._report(
                doc.file,
                doc.mark(*path),
                "unknown-reference",
                f"list {name!r} holds records of audience {list_.audience!r}, "
                f"not {audience_name!r}",
                "an automation only uses lists of its campaign's audience",
            )

    def _check_in_list(
        self, doc: LoadedDocument, path: PathKey, cond: Condition, audience_name: str | None
    ) -> None:
        for key, items in (("all", cond.all_), ("any", cond.any_)):
            for i, child in enumerate(items or []):
                self._check_in_list(doc, (*path, key, i), child, audience_name)
        if cond.not_ is not None:
            self._check_in_list(doc, (*path, "not"), cond.not_, audience_name)
        test = cond.tests.get("in_list")
        if test is not None:
            for op, value in test.items():
                for name in value if isinstance(value, list) else [value]:
                    self._check_list_ref(doc, (*path, "in_list", op), str(name), audience_name)

    # ------------------------------------------------------------------ segments
    def _check_segment(self, doc: LoadedDocument) -> None:
        segment = typing.cast(Segment, doc.model)
        audience = self.ws.audiences.get(segment.audience)
        if audience is None:
            self._unknown(doc, ("audience",), "audience", segment.audience, self.ws.audiences)
        self._check_condition(doc, ("where",), segment.where, audience, segment.audience)

    def _check_condition(
        self,
        doc: LoadedDocument,
        path: PathKey,
        cond: Condition,
        audience: Audience | None,
        audience_name: str | None,
        extra_attributes: tuple[str, ...] = (),
    ) -> None:
        for key, items in (("all", cond.all_), ("any", cond.any_)):
            for i, child in enumerate(items or []):
                self._check_condition(
                    doc, (*path, key, i), child, audience, audience_name, extra_attributes
                )
        if cond.not_ is not None:
            self._check_condition(
                doc, (*path, "not"), cond.not_, audience, audience_name, extra_attributes
            )
        if cond.segment is not None:
            other = self.ws.segments.get(cond.segment)
            if other is None:
                self._unknown(doc, (*path, "segment"), "segment", cond.segment, self.ws.segments)
            elif audience_name and other.audience != audience_name:
                self._report(
                    doc.file,
                    doc.mark(*path, "segment"),
                    "unknown-reference",
                    f"segment {cond.segment!r} selects audience {other.audience!r}, "
                    f"not {audience_name!r}",
                    "a segment can only refer to segments of the same audience",
                )
        for attribute, ops in cond.tests.items():
            self._check_test(doc, (*path, attribute), attribute, ops, audience, extra_attributes)

    def _check_test(
        self,
        doc: LoadedDocument,
        path: PathKey,
        attribute: str,
        ops: Operators,
        audience: Audience | None,
        extra_attributes: tuple[str, ...],
    ) -> None:
        column: Column | None = None
        columns = self.ws.record_columns(audience) if audience is not None else None
        if columns is not None:
            assert audience is not None
            known = [*columns, *BUILTIN_ATTRIBUTES, *extra_attributes]
            if attribute not in known:
                close = difflib.get_close_matches(attribute, known, n=1)
                self._report(
                    doc.file,
                    doc.source_map.locate(path, key=True),
                    "unknown-reference",
                    f"attribute {attribute!r} is not a column of audience {audience.name!r}",
                    f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(known)}",
                )
                return
            column = columns.get(attribute)
        elif audience is not None:
            column = audience.columns.get(attribute)
        ctype = column.type if column else None
        for op, value in ops.items():
            value_path = (*path, op)
            if op in ("contains",) and ctype not in (None, ColumnType.LIST, ColumnType.STRING):
                self._report(
                    doc.file,
                    doc.mark(*value_path),
                    "invalid-value",
                    f"`contains` applies to list and text attributes; {attribute!r} is a {ctype}",
                    "use eq or in",
                )
            if op == "matches" and ctype not in (
                None,
                ColumnType.STRING,
                ColumnType.EMAIL,
                ColumnType.PHONE,
            ):
                self._report(
                    doc.file,
                    doc.mark(*value_path),
                    "invalid-value",
                    f"`matches` applies to text attributes; {attribute!r} is a {ctype}",
                    "compare it with eq, ne, in, gt, lt or between",
                )
            values = value if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                item_path = (*value_path, i) if isinstance(value, list) else value_path
                if ctype == ColumnType.DATE or looks_like_relative_date(item):
                    if op in ("exists", "matches") or item is None:
                        continue
                    try:
                        parse_relative_date(item)
                    except ValueError as exc:
                        self._report(
                            doc.file,
                            doc.mark(*item_path),
                            "invalid-value",
                            str(exc),
                            "relative dates resolve in the workspace time zone when evaluated",
                        )

    def _check_segment_cycles(self) -> None:
        graph = {name: set(_segment_refs(seg.where)) for name, seg in self.ws.segments.items()}
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, trail: list[str]) -> None:
            state[name] = 1
            for ref in sorted(graph.get(name, ())):
                if ref not in graph:
                    continue
                if state.get(ref) == 1:
                    cycle = [*trail[trail.index(ref) :], ref] if ref in trail else [name, ref]
                    doc = self.ws.documents["Segment"][name]
                    self._report(
                        doc.file,
                        doc.mark("where"),
                        "reference-cycle",
                        f"segments refer to each other in a cycle: {' → '.join(cycle)}",
                        "remove one `segment:` reference to break the cycle",
                    )
                elif state.get(ref) is None:
                    visit(ref, [*trail, ref])
            state[name] = 2

        for name in sorted(graph):
            if name not in state:
                visit(name, [name])

    # ------------------------------------------------------------------ questionnaires
    def _check_questionnaire(self, doc: LoadedDocument) -> None:
        questionnaire = typing.cast(Questionnaire, doc.model)
        if questionnaire.audience is None:
            return
        audience = self.ws.audiences.get(questionnaire.audience)
        if audience is None:
            self._unknown(doc, ("audience",), "audience", questionnaire.audience, self.ws.audiences)
            return
        columns = self.ws.record_columns(audience)
        if columns is None:
            return  # no header to check the field ids against
        for i, field_ in enumerate(questionnaire.fields or []):
            if field_.id not in columns and field_.type is None:
                close = difflib.get_close_matches(field_.id, list(columns), n=1)
                self._report(
                    doc.file,
                    doc.mark("fields", i, "id"),
                    "unknown-reference",
                    f"field {field_.id!r} is not a column of audience {audience.name!r}",
                    f"did you mean {close[0]!r}?"
                    if close
                    else "give the field a `type:` to ask a question that is not a column",
                )

    # ------------------------------------------------------------------ campaigns
    def _check_campaign(self, doc: LoadedDocument) -> None:
        campaign = typing.cast(Campaign, doc.model)
        config = self.config
        if config is not None and campaign.category not in config.categories:
            self._unknown(doc, ("category",), "category", campaign.category, config.categories)
        audience_name = self._check_campaign_audience(doc, campaign)
        self._check_campaign_questionnaire(doc, campaign)
        self._check_campaign_channels(doc, campaign)
        self._check_campaign_schedule(doc, campaign)
        for i, export in enumerate(campaign.exports):
            if config is not None and export.system not in config.systems:
                self._unknown(
                    doc, ("exports", i, "system"), "export system", export.system, config.systems
                )
            for j, seg in enumerate(export.segments or []):
                if seg not in campaign.audience.segments:
                    self._report(
                        doc.file,
                        doc.mark("exports", i, "segments", j),
                        "unknown-reference",
                        f"export segment {seg!r} is not one of the campaign's segments",
                        f"use one of {', '.join(campaign.audience.segments)}",
                    )
            for j, channel in enumerate(export.channels or []):
                if channel not in campaign.channels:
                    self._report(
                        doc.file,
                        doc.mark("exports", i, "channels", j),
                        "unknown-reference",
                        f"export channel {channel!r} is not one of the campaign's channels",
                        f"use one of {', '.join(campaign.channels)}",
                    )
        for i, document in enumerate(campaign.documents):
            self._check_document_file(doc, ("documents", i, "path"), document.path, "document")
        if (
            campaign.type == "information"
            and not campaign.documents
            and not campaign.dashboard_message
        ):
            self._report(
                doc.file,
                doc.mark("type"),
                "invalid-value",
                "an information campaign offers `documents:` or a `dashboard_message:`",
                "add at least one of them",
                Severity.WARNING,
            )
        if campaign.trigger is not None:
            self._check_trigger(doc, campaign, audience_name)
        self._check_steps(doc, ("steps",), campaign.steps, campaign, audience_name)

    def _check_campaign_audience(self, doc: LoadedDocument, campaign: Campaign) -> str | None:
        audiences: dict[str, str] = {}
        selection = campaign.audience
        for key in ("segments", "exclude_segments"):
            for i, name in enumerate(getattr(selection, key)):
                segment = self.ws.segments.get(name)
                if segment is None:
                    self._unknown(doc, ("audience", key, i), "segment", name, self.ws.segments)
                else:
                    audiences.setdefault(segment.audience, name)
        if len(audiences) > 1:
            described = ", ".join(f"{seg!r} → {aud!r}" for aud, seg in audiences.items())
            self._report(
                doc.file,
                doc.mark("audience", "segments"),
                "unknown-reference",
                f"the campaign's segments select different audiences ({described})",
                "a campaign targets one audience: split it into one campaign per audience",
            )
        for i, name in enumerate(selection.exclude_campaigns):
            if name not in self.ws.campaigns:
                self._unknown(
                    doc, ("audience", "exclude_campaigns", i), "campaign", name, self.ws.campaigns
                )
            elif name == campaign.name:
                self._report(
                    doc.file,
                    doc.mark("audience", "exclude_campaigns", i),
                    "invalid-value",
                    "a campaign cannot exclude its own recipients",
                    "relaunches already skip those who acted: remove this entry",
                )
        return next(iter(audiences), None)

    def _check_campaign_questionnaire(self, doc: LoadedDocument, campaign: Campaign) -> None:
        use = campaign.questionnaire
        if use is None:
            return
        questionnaire = self.ws.questionnaires.get(use.ref)
        if questionnaire is None:
            self._unknown(
                doc, ("questionnaire", "ref"), "questionnaire", use.ref, self.ws.questionnaires
            )
            return
        if questionnaire.fields is not None:
            available = [f.id for f in questionnaire.fields]
        else:
            audience = self._campaign_audience(campaign)
            columns = self.ws.record_columns(audience) if audience else None
            available = list(columns) if columns else []  # unknown without a header
        for key, names in (("fields", use.fields or []), ("overrides", list(use.overrides))):
            for i, name in enumerate(names):
                if available and name not in available:
                    close = difflib.get_close_matches(name, available, n=1)
                    path = (
                        ("questionnaire", key, i)
                        if key == "fields"
                        else ("questionnaire", key, name)
                    )
                    self._report(
                        doc.file,
                        doc.source_map.locate(path, key=key == "overrides"),
                        "unknown-reference",
                        f"field {name!r} is not in questionnaire {use.ref!r}",
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"fields: {', '.join(available)}",
                    )

    def _campaign_audience(self, campaign: Campaign) -> Audience | None:
        for name in campaign.audience.segments:
            segment = self.ws.segments.get(name)
            if segment is not None:
                return self.ws.audiences.get(segment.audience)
        return None

    def _check_campaign_channels(self, doc: LoadedDocument, campaign: Campaign) -> None:
        message = campaign.message
        if message is None:
            return
        channels = set(campaign.channels)
        for rule in campaign.schedule.relaunch if campaign.schedule else []:
            channels.update(rule.channels or [])
        config = self.config
        if Channel.EMAIL in channels:
            if config is not None and message.sender not in config.senders:
                self._unknown(doc, ("message", "sender"), "sender", message.sender, config.senders)
            if message.subject is None:
                self._report(
                    doc.file,
                    doc.mark("message"),
                    "missing-field",
                    "the email channel needs `message.subject`",
                    "add `subject: ...`",
                )
            self._check_template(doc, ("message", "template"), message.template, ("html", "text"))
        if Channel.SMS in channels:
            if config is not None and config.sms is None:
                self._report(
                    doc.file,
                    doc.mark("channels"),
                    "channel",
                    "the sms channel is used but campaignctl.yaml has no `sms:` settings",
                    "add `sms: {transport: file, sender_id: ...}` to campaignctl.yaml",
                )
            self._check_template(doc, ("message", "template"), message.template, ("sms",))
        for i, attachment in enumerate(message.attachments):
            self._check_document_file(doc, ("message", "attachments", i), attachment, "attachment")

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

    def _check_campaign_schedule(self, doc: LoadedDocument, campaign: Campaign) -> None:
        schedule = campaign.schedule
        if schedule is None:
            return
        previous = None
        for i, rule in enumerate(schedule.relaunch):
            if rule.after.total_seconds() <= 0:
                self._report(
                    doc.file,
                    doc.mark("schedule", "relaunch", i, "after"),
                    "schedule",
                    f"relaunch {i + 1} comes "
                    f"{'before' if rule.after.total_seconds() < 0 else 'at'} the send it follows",
                    "`after:` is the delay since the wave it relaunches, e.g. 7d",
                )
            elif previous is not None and rule.after <= previous:
                self._report(
                    doc.file,
                    doc.mark("schedule", "relaunch", i, "after"),
                    "schedule",
                    f"relaunch {i + 1} is not later than relaunch {i}",
                    "list relaunches in time order, each `after:` counted from the first send",
                    Severity.WARNING,
                )
            previous = rule.after
            channels = rule.channels or campaign.channels
            if rule.template and campaign.message is not None:
                parts = ("html", "text") if Channel.EMAIL in channels else ("sms",)
                self._check_template(
                    doc, ("schedule", "relaunch", i, "template"), rule.template, parts
                )
        recurrence = schedule.recurrence
        if recurrence is None:
            return
        if recurrence.every is not None and schedule.send_at is None:
            self._report(
                doc.file,
                doc.mark("schedule", "recurrence"),
                "schedule",
                f"`every: {recurrence.every}` repeats from `send_at`, which is missing",
                "add `send_at:` (the first occurrence) or use `cron:`",
            )
        send_at = schedule.send_at
        if (
            recurrence.until is not None
            and send_at is not None
            and recurrence.until < send_at.date()
        ):
            self._report(
                doc.file,
                doc.mark("schedule", "recurrence", "until"),
                "schedule",
                f"recurrence ends ({recurrence.until}) before the first send ({send_at.date()})",
                "move `until:` after `send_at:` or remove the recurrence",
            )

    def _check_trigger(
        self, doc: LoadedDocument, campaign: Campaign, audience_name: str | None
    ) -> None:
        trigger = typing.cast(Any, campaign.trigger)
        if trigger.segment and trigger.segment not in self.ws.segments:
            self._unknown(doc, ("trigger", "segment"), "segment", trigger.segment, self.ws.segments)
        if trigger.campaign and trigger.campaign not in self.ws.campaigns:
            self._unknown(
                doc, ("trigger", "campaign"), "campaign", trigger.campaign, self.ws.campaigns
            )
        if trigger.list:
            self._check_list_ref(doc, ("trigger", "list"), trigger.list, audience_name)
        if trigger.where is not None:
            # event data keys are free-form: only segment references are checked
            self._check_condition(doc, ("trigger", "where"), trigger.where, None, audience_name)

    def _check_steps(
        self,
        doc: LoadedDocument,
        path: PathKey,
        steps: list[Step],
        campaign: Campaign,
        audience_name: str | None,
    ) -> None:
        audience = self.ws.audiences.get(audience_name) if audience_name else None
        for i, step in enumerate(steps):
            here = (*path, i)
            if step.send is not None:
                template = step.send.template or (
                    campaign.message.template if campaign.message else None
                )
                channels = step.send.channels or campaign.channels
                if template is None:
                    self._report(
                        doc.file,
                        doc.mark(*here, "send"),
                        "missing-field",
                        "this send step has no template and the campaign no `message:`",
                        "add `send: {template: NAME}`",
                    )
                else:
                    parts = ("html", "text") if Channel.EMAIL in channels else ("sms",)
                    self._check_template(doc, (*here, "send"), template, parts)
            for key in ("add_to_list", "remove_from_list"):
                if getattr(step, key) is not None:
                    self._check_list_ref(doc, (*here, key), getattr(step, key), audience_name)
            if step.if_ is not None:
                self._check_condition(
                    doc, (*here, "if"), step.if_, audience, audience_name, ACTIVITY_ATTRIBUTES
                )
                self._check_in_list(doc, (*here, "if"), step.if_, audience_name)
                self._check_steps(doc, (*here, "then"), step.then, campaign, audience_name)
                self._check_steps(doc, (*here, "else"), step.else_, campaign, audience_name)


def _segment_refs(cond: Condition) -> Iterator[str]:
    if cond.segment:
        yield cond.segment
    for child in [*(cond.all_ or []), *(cond.any_ or [])]:
        yield from _segment_refs(child)
    if cond.not_ is not None:
        yield from _segment_refs(cond.not_)
