"""`validate`: check a workspace and present its diagnostics as text, JSON, GitHub or JUnit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from campaignctl.errors import Diagnostic, Severity
from campaignctl.spec.workspace import Workspace, load_workspace

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ValidationResult:
    workspace: Workspace
    diagnostics: list[Diagnostic]
    files: list[str]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.WARNING]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def summary(self) -> str:
        counts = self.workspace.counts()
        kinds = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items())
        templates = len(self.workspace.templates)
        return (
            f"Checked {len(self.files)} file(s) ({kinds}; {templates} template(s)): "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)."
        )

    def as_json(self, strict: bool = False) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "valid": not self.failed(strict),
            "files": self.files,
            "documents": self.workspace.counts(),
            "templates": len(self.workspace.templates),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


def validate(root: Path, paths: list[Path] | None = None) -> ValidationResult:
    """Load the whole workspace (references need it) and keep the diagnostics of `paths`."""
    workspace = load_workspace(root)
    files = workspace.files
    diagnostics = workspace.diagnostics
    if paths:
        wanted = [_relative(workspace.root, p) for p in paths]

        def selected(name: str) -> bool:
            return any(
                w in ("", ".") or name == w or name.startswith(w.rstrip("/") + "/") for w in wanted
            )

        files = [f for f in files if selected(f)]
        diagnostics = [d for d in diagnostics if selected(d.file)]
    return ValidationResult(workspace, diagnostics, files)


def _relative(root: Path, path: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def github_annotation(d: Diagnostic) -> str:
    """A GitHub Actions workflow command; message data escaped as the runner expects."""

    def escape(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    level = "error" if d.severity == Severity.ERROR else "warning"
    message = d.message + (f"\n{d.hint}" if d.hint else "")
    return (
        f"::{level} file={escape(d.file, True)},line={d.line},col={d.column},"
        f"title={escape(d.code, True)}::{escape(message)}"
    )


def junit_xml(result: ValidationResult) -> bytes:
    """One test case per definition file; each error a failure, each warning in system-out."""
    by_file: dict[str, list[Diagnostic]] = {f: [] for f in result.files}
    for d in result.diagnostics:
        by_file.setdefault(d.file, []).append(d)
    suite = ET.Element(
        "testsuite",
        name="campaignctl validate",
        tests=str(len(by_file)),
        failures=str(
            sum(1 for ds in by_file.values() if any(d.severity == Severity.ERROR for d in ds))
        ),
    )
    for file, diags in by_file.items():
        case = ET.SubElement(suite, "testcase", classname="campaignctl.validate", name=file)
        errors = [d for d in diags if d.severity == Severity.ERROR]
        if errors:
            failure = ET.SubElement(
                case, "failure", message=f"{len(errors)} error(s)", type="validation"
            )
            failure.text = "\n".join(d.format() for d in errors)
        warnings = [d for d in diags if d.severity == Severity.WARNING]
        if warnings:
            ET.SubElement(case, "system-out").text = "\n".join(d.format() for d in warnings)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
