"""`campaign clone` and `campaign new --from TEMPLATE`: write a new campaign file.

A clone is the source file edited as text, so that its comments and key order stay:
the `name:` value is replaced, `draft: true` is set, and schedule dates already past
(`send_at`, `recurrence.until`, `active:`) move forward by whole recurrence periods
(years for a one-off campaign), so that "update-2027" cloned as "update-2028" keeps its
day of the year. A file holding several documents is written from the model instead
(its comments cannot follow one document).

A bundled template is a folder under `campaign-templates/`: `campaign.yaml` and the
message templates it needs, with `__PLACEHOLDERS__` filled from the workspace (its
first segments, sender, categories, questionnaire, CRM system) and the new name. The new
file is validated at once: an error in it is reported (exit 65) with where it is.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from campaignctl import clock
from campaignctl.errors import SpecError, UsageError
from campaignctl.spec.models import Campaign, Every
from campaignctl.spec.types import SLUG_PATTERN
from campaignctl.spec.workspace import Workspace, load_workspace, unknown_campaign

CAMPAIGNS_DIR = "campaigns"
_SCALAR = r"\"[^\"]*\"|'[^']*'|[^\s,}\]#]+"


@dataclass
class NewCampaign:
    """What `clone` or `new` wrote: the campaign file and its companions, what moved."""

    name: str
    path: str  # relative to the workspace root
    source: str  # the campaign cloned, or `template:NAME`
    companions: list[str] = field(default_factory=list)
    moved_dates: dict[str, str] = field(default_factory=dict)  # dotted key -> new value
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"format_version": 1, "draft": True, **self.__dict__}


# =========================================================================== clone


def clone_campaign(
    workspace: Workspace, source: str, new: str, *, now: datetime | None = None
) -> NewCampaign:
    """Write campaigns/NEW.yaml from campaign SOURCE; validate it; return what was written."""
    doc = workspace.documents.get("Campaign", {}).get(source)
    if doc is None:
        raise unknown_campaign(source, workspace.campaigns)
    target = _target(workspace, new)
    campaign = doc.model
    assert isinstance(campaign, Campaign)
    tz = ZoneInfo(workspace.config.timezone if workspace.config else "UTC")
    today_local = (now or clock.now()).astimezone(tz)
    text = (workspace.root / doc.file).read_text(encoding="utf-8")
    edits = _Edits(text)
    moves = _date_moves(campaign, today_local)
    if _single_document(text):
        edits.replace(doc.mark("name"), new, raw=False)
        if "draft" in campaign.model_fields_set:
            edits.replace(doc.mark("draft"), "true")
        else:
            edits.insert_after(doc.mark("name").line, "draft: true", doc.mark("name").column)
        for path, value in moves.items():
            edits.replace(doc.mark(*path), value)
        edits.insert_before(
            _first_key_line(text), f"# Cloned from {source} ({doc.file}) on {today_local:%Y-%m-%d}."
        )
        content = edits.result()
    else:
        data = campaign.model_dump(mode="json", by_alias=True, exclude_unset=True)
        data.update(name=new, draft=True)
        for path, value in moves.items():
            _set(data, path, value)
        content = f"# Cloned from {source} ({doc.file}).\n" + yaml.safe_dump(
            data, allow_unicode=True, sort_keys=False
        )
    result = NewCampaign(new, target, source)
    result.moved_dates = {".".join(map(str, p)): v for p, v in moves.items()}
    _write_and_validate(workspace.root, {target: content}, result)
    return result


def _target(workspace: Workspace, new: str) -> str:
    if not re.fullmatch(SLUG_PATTERN, new):
        raise UsageError(
            f"{new!r} is not a valid campaign name",
            hint="use lower-case letters, digits and dashes, e.g. update-2028",
        )
    if new in workspace.campaigns:
        raise UsageError(
            f"campaign {new!r} already exists ({workspace.documents['Campaign'][new].file})",
            hint="choose another name",
        )
    target = f"{CAMPAIGNS_DIR}/{new}.yaml"
    if (workspace.root / target).exists():
        raise UsageError(f"{target} already exists", hint="choose another name or move that file")
    return target


def _single_document(text: str) -> bool:
    return sum(1 for _ in yaml.compose_all(text)) == 1


def _first_key_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#") and line.strip() != "---":
            return number
    return 1


def _date_moves(campaign: Campaign, now: datetime) -> dict[tuple[str, ...], str]:
    """New values for the schedule dates already past, moved by whole periods."""
    moves: dict[tuple[str, ...], str] = {}
    schedule = campaign.schedule
    every = schedule.recurrence.every if schedule and schedule.recurrence else None
    step = every or Every.YEAR
    if schedule is not None and schedule.send_at is not None:
        send_at = schedule.send_at
        local_now = now if send_at.tzinfo else now.replace(tzinfo=None)
        periods = 0
        moved = send_at
        while moved <= local_now:
            periods += 1
            moved = _shift(send_at, step, periods)
        if periods:
            moves[("schedule", "send_at")] = (
                moved.isoformat() if moved.tzinfo else moved.strftime("%Y-%m-%dT%H:%M")
            )
            until = schedule.recurrence.until if schedule.recurrence else None
            if until is not None:
                moves[("schedule", "recurrence", "until")] = _shift(
                    until, step, periods
                ).isoformat()
    if campaign.active is not None and campaign.active.to < now.date():
        years = now.year - campaign.active.from_.year + 1
        if _shift(campaign.active.from_, Every.YEAR, years - 1) >= now.date():
            years -= 1
        moves[("active", "from")] = _shift(campaign.active.from_, Every.YEAR, years).isoformat()
        moves[("active", "to")] = _shift(campaign.active.to, Every.YEAR, years).isoformat()
    return moves


def _shift(value: Any, every: Every, n: int) -> Any:
    """`value` (a date or datetime) moved by n days, weeks, months or years."""
    if every == Every.DAY:
        return value + timedelta(days=n)
    if every == Every.WEEK:
        return value + timedelta(weeks=n)
    months = n * (12 if every == Every.YEAR else 1)
    year, month = divmod(value.month - 1 + months, 12)
    year += value.year
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _set(data: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


class _Edits:
    """Line-and-column edits of a YAML text, applied bottom-up so marks stay true."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        self._edits: list[tuple[int, int, str, str]] = []  # line, column, kind, text

    def replace(self, mark: Any, value: str, *, raw: bool = True) -> None:
        """Replace the scalar at `mark`; `raw=False` quotes `value` when YAML needs it."""
        text = value if raw else _yaml_scalar(value)
        self._edits.append((mark.line, mark.column, "replace", text))

    def insert_after(self, line: int, text: str, column: int) -> None:
        # the new key takes the indentation of the key on `line`
        self._edits.append((line, column, "after", text))

    def insert_before(self, line: int, text: str) -> None:
        self._edits.append((line, 0, "before", text))

    def result(self) -> str:
        for line, column, kind, text in sorted(
            self._edits, key=lambda e: (e[0], e[1]), reverse=True
        ):
            index = line - 1
            if kind == "replace":
                current = self.lines[index]
                start = column - 1
                token = re.match(_SCALAR, current[start:])
                end = start + (token.end() if token else 0)
                self.lines[index] = current[:start] + text + current[end:]
            elif kind == "after":
                indent = re.match(r"\s*", self.lines[index]).group()  # type: ignore[union-attr]
                self.lines.insert(index + 1, f"{indent}{text}\n")
            else:
                self.lines.insert(index, text + "\n")
        return "".join(self.lines)


def _yaml_scalar(value: str) -> str:
    """`value` as a plain YAML scalar when it reads back as the same string, else quoted."""
    plain = yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    return plain


# =========================================================================== templates

_TEMPLATES = "campaign-templates"


@dataclass(frozen=True)
class CampaignTemplate:
    name: str
    summary: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "summary": self.summary}


def _templates_root() -> Any:
    return resources.files("campaignctl.scaffold") / _TEMPLATES


def list_templates() -> list[CampaignTemplate]:
    """The bundled campaign templates, by name, with the one-line summary each starts with."""
    found = []
    for folder in _templates_root().iterdir():
        campaign = folder / "campaign.yaml"
        if not folder.is_dir() or not campaign.is_file():
            continue
        first = campaign.read_text(encoding="utf-8").splitlines()[0]
        found.append(CampaignTemplate(folder.name, first.removeprefix("#").strip()))
    return sorted(found, key=lambda t: t.name)


def new_campaign(
    workspace: Workspace,
    name: str,
    template: str,
    *,
    segments: list[str] | None = None,
    now: datetime | None = None,
) -> NewCampaign:
    """Write campaigns/NAME.yaml (and the message templates it needs) from a bundled template."""
    known = {t.name: t for t in list_templates()}
    if template not in known:
        import difflib

        close = difflib.get_close_matches(template, known, n=1)
        raise UsageError(
            f"there is no campaign template {template!r}",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + "`campaignctl campaign new --list` shows them",
        )
    target = _target(workspace, name)
    folder = _templates_root() / template
    values = _placeholders(workspace, name, segments, now or clock.now())
    files: dict[str, str] = {}
    result = NewCampaign(name, target, f"template:{template}")

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            relative = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, relative + "/")
            elif relative == "campaign.yaml":
                files[target] = _fill(child.read_text(encoding="utf-8"), values)
            elif not child.name.endswith(".pyc"):
                path = _fill(relative, values)
                if (workspace.root / path).exists():
                    result.warnings.append(f"{path} exists: kept as it is")
                    continue
                files[path] = _fill(child.read_text(encoding="utf-8"), values)
                result.companions.append(path)

    walk(folder, "")
    result.companions.sort()
    _write_and_validate(workspace.root, files, result)
    return result


def _placeholders(
    workspace: Workspace, name: str, segments: list[str] | None, now: datetime
) -> dict[str, str]:
    config = workspace.config
    if config is None:
        raise SpecError(workspace.errors)
    known_segments = sorted(workspace.segments)
    for segment in segments or []:
        if segment not in workspace.segments:
            import difflib

            close = difflib.get_close_matches(segment, known_segments, n=1)
            raise UsageError(
                f"segment {segment!r} does not exist",
                hint=f"did you mean {close[0]!r}?" if close else "see audiences/segments/",
            )
    chosen = list(segments or known_segments[:2])
    if not chosen:
        raise UsageError(
            "the workspace has no segment for the new campaign to target",
            hint="add one under audiences/segments/ (see `campaignctl init`)",
        )
    senders = list(config.senders)
    categories = config.categories
    admin = [n for n, c in categories.items() if not c.unsubscribe] or list(categories)
    marketing = [n for n, c in categories.items() if c.unsubscribe] or list(categories)
    tz = ZoneInfo(config.timezone)
    start = (now.astimezone(tz) + timedelta(days=14)).date()
    return {
        "__NAME__": name,
        "__SEGMENT__": chosen[0],
        "__SEGMENTS__": "[" + ", ".join(chosen) + "]",
        "__SENDER__": "default" if "default" in senders or not senders else senders[0],
        "__CATEGORY_ADMIN__": admin[0] if admin else "administrative",
        "__CATEGORY_MARKETING__": marketing[0] if marketing else "marketing",
        "__QUESTIONNAIRE__": (sorted(workspace.questionnaires) or ["QUESTIONNAIRE"])[0],
        "__SYSTEM__": (sorted(config.systems) or ["SYSTEM"])[0],
        "__SEND_AT__": f"{start.isoformat()}T09:00",
        "__FROM__": start.isoformat(),
        "__TO__": (start + timedelta(days=90)).isoformat(),
        "__UNTIL__": _shift(start, Every.YEAR, 1).isoformat(),
        "__YEAR__": str(start.year),
    }


def _fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"__[A-Z_]+__", lambda m: values.get(m.group(), m.group()), text)


# =========================================================================== writing


def _write_and_validate(root: Path, files: dict[str, str], result: NewCampaign) -> None:
    """Create the files (never overwriting one), then load the workspace and raise a
    SpecError with the new files' errors, if any (the files stay, to be fixed)."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(content)
        except FileExistsError:
            raise UsageError(
                f"{relative} already exists", hint="choose another name or move that file"
            ) from None
    workspace = load_workspace(root)
    mine = [d for d in workspace.errors if d.file in files]
    if mine:
        raise SpecError(
            mine,
            f"{result.path} was written but does not validate yet: fix the error(s) above, "
            "then run `campaignctl validate`",
        )
