"""`validate`: check a workspace and present its diagnostics as text, JSON, GitHub or JUnit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from campaignctl import clock
from campaignctl.errors import Diagnostic, Severity
from campaignctl.spec.types import format_duration
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
        # lists are optional: named only when the workspace has some
        kinds = ", ".join(
            f"{n} {kind}{'s' if n != 1 else ''}"
            for kind, n in counts.items()
            if n or kind != "List"
        )
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


def validate(
    root: Path, paths: list[Path] | None = None, now: datetime | None = None
) -> ValidationResult:
    """Load the whole workspace (references need it) and keep the diagnostics of `paths`.

    Beside the workspace's own diagnostics, a schedule wholly in the past at `now`
    (default: the clock) is a warning: the scheduler would record its waves as missed.
    """
    workspace = load_workspace(root)
    files = workspace.files
    diagnostics = sorted([*workspace.diagnostics, *past_schedules(workspace, now or clock.now())])
    if paths:
        wanted = [_relative(workspace.root, p) for p in paths]

        def selected(name: str) -> bool:
            return any(
                w in ("", ".") or name == w or name.startswith(w.rstrip("/") + "/") for w in wanted
            )

        files = [f for f in files if selected(f)]
        diagnostics = [d for d in diagnostics if selected(d.file)]
    return ValidationResult(workspace, diagnostics, files)


def past_schedules(workspace: Workspace, now: datetime) -> list[Diagnostic]:
    """A warning per campaign whose `send_at` is in the past with nothing after it to send
    (no recurrence, or one that ended): unless it was sent already, the scheduler records it
    as missed (or sends it, when less than max_lateness late). A mistyped year shows here."""
    config = workspace.config
    if config is None:
        return []
    max_lateness = config.scheduler.max_lateness
    found = []
    for name, doc in sorted(workspace.documents.get("Campaign", {}).items()):
        campaign = doc.model
        schedule = getattr(campaign, "schedule", None)
        if doc.partial or campaign.draft or schedule is None or schedule.send_at is None:
            continue
        zone = ZoneInfo(schedule.timezone or config.timezone)
        send_at = schedule.send_at
        first = send_at.replace(tzinfo=zone) if send_at.tzinfo is None else send_at
        first = first.astimezone(zone)
        until = schedule.recurrence.until if schedule.recurrence else None
        today = now.astimezone(zone).date()
        if first >= now or (schedule.recurrence and (until is None or until >= today)):
            continue
        late = now - first
        fate = (
            f"the scheduler records it as missed (later than max_lateness "
            f"{format_duration(max_lateness)})"
            if late > max_lateness
            else "the next scheduler pass sends it"
        )
        ended = f"; its recurrence ended on {until}" if until else ""
        mark = doc.mark("schedule", "send_at")
        message = (
            f"campaign {name!r}: send_at {first:%Y-%m-%d %H:%M} ({zone.key}) is in the past"
            f"{ended}: unless it was sent already, {fate}"
        )
        hint = (
            "check the date (a mistyped year?); `campaignctl plan` shows what the scheduler "
            f"will do; `campaignctl send {name}` sends it by hand"
        )
        where = (doc.file, mark.line, mark.column)
        found.append(Diagnostic(*where, Severity.WARNING, "schedule", message, hint))
    return found


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
