"""Finding, loading and checking a workspace: `campaignctl.yaml` and every document.

`load_workspace` never raises for bad content: it returns a `Workspace` whose
`diagnostics` list every problem of every file in one pass. Callers that need
valid definitions call `Workspace.require_valid()`.

Here: reading the files into documents. The `Workspace` itself is in `spec.loaded`, the
pydantic errors turned into located diagnostics in `spec.pydantic_diagnostics`, and the
checks across documents (one module per kind) in `spec.checks`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from campaignctl.errors import Diagnostic, Severity
from campaignctl.spec.checks import WorkspaceChecker
from campaignctl.spec.files import (
    CONFIG_FILE,
    TEMPLATES_DIR,
    UnsafePath,
    confined_path,
    document_files,
)
from campaignctl.spec.loaded import LoadedDocument, Workspace, unknown_campaign
from campaignctl.spec.loader import SourceMap, load_yaml_file
from campaignctl.spec.models import (
    KINDS,
    Document,
    WorkspaceConfig,
)
from campaignctl.spec.pydantic_diagnostics import diagnostics_from_validation

__all__ = ["LoadedDocument", "Workspace", "load_workspace", "unknown_campaign"]


def _display(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


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
    WorkspaceChecker(workspace, template_cache).run()
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
