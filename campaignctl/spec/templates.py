"""Static checks of templates: syntax, and variables the rendering context will not have.

`validate` runs these for every campaign: each template part it uses (and what they
extend or include) is parsed once, and every `name.attribute` chain is checked against
the documented context (docs/templates.md), the campaign's `message.blocks` and the
columns of its audience — `record.comune` when the audience has `commune` is an error
with a "did you mean". Only jinja2 is imported (no rendering happens here).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaignctl.errors import Diagnostic, Severity
from campaignctl.spec.files import definitions_fingerprint, write_cache
from campaignctl.spec.models import Campaign, Channel

# The values of `links` (the renderer makes them, `validate` checks templates against them).
LINK_NAMES = (
    "form",
    "form_short",
    "forms",
    "space",
    "space_short",
    "unsubscribe",
    "preferences",
    "documents",
    "document_list",
)

TEMPLATES_DIR = "templates"
# Names Jinja itself provides in every template.
JINJA_GLOBALS = frozenset(
    {
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
        "loop",
        "self",
        "super",
        "varargs",
        "kwargs",
        "caller",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
    }
)


class AnyType:
    """Unknown: no further checks."""


ANY = AnyType()


@dataclass
class Obj:
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    item: Any = None  # what iterating over it yields


@dataclass
class ListOf:
    item: Any


FIELD = Obj(
    "questionnaire field",
    dict.fromkeys(("id", "label", "help", "required", "type", "choices", "value"), ANY),
)
DOCUMENT = Obj("document link", dict.fromkeys(("name", "label", "typology", "to_sign", "url"), ANY))


def context_schema(
    columns: list[str] | None, blocks: list[str], *, full: bool = True
) -> dict[str, Any]:
    """The documented context as types; `columns` None when the audience is unknown."""
    record: Any = ANY
    if columns is not None:
        record = Obj("record", {**dict.fromkeys(columns, ANY), "key": ANY, "category": ANY})
    schema: dict[str, Any] = {
        "campaign": Obj(
            "campaign", dict.fromkeys(("name", "description", "type", "category"), ANY)
        ),
        "organization": Obj(
            "organization", dict.fromkeys(("name", "logo", "address", "url", "signature"), ANY)
        ),
    }
    if not full:  # the signature block is rendered once, without a recipient
        return schema
    schema.update(
        {
            "record": record,
            "records": ListOf(record),
            "blocks": Obj("blocks", dict.fromkeys(blocks, ANY)),
            "links": Obj(
                "links",
                {
                    **dict.fromkeys(LINK_NAMES, ANY),  # document_list: its items are typed
                    "document_list": ListOf(DOCUMENT),
                },
            ),
            "questionnaire": Obj(
                "questionnaire",
                {"title": ANY, "fields": ListOf(FIELD), "fields_for": ANY},
                item=FIELD,
            ),
            "wave": Obj("wave", {"number": ANY, "kind": ANY}),
        }
    )
    return schema


@dataclass
class Uses:
    """Which expensive parts of the context the templates use (the renderer skips the rest)."""

    links: bool = False
    questionnaire: bool = False


@dataclass
class Analysis:
    diagnostics: list[Diagnostic]
    uses: Uses


class TemplateChecker:
    """Parses each template once per run and checks it against a context schema."""

    def __init__(self, root: Path) -> None:
        import jinja2

        self.root = root
        self.jinja2 = jinja2
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root / TEMPLATES_DIR)))
        self._parsed: dict[str, tuple[Any, list[str]] | Diagnostic | None] = {}

    def parse(self, name: str) -> tuple[Any, list[str]] | Diagnostic | None:
        """(AST, source lines), a syntax diagnostic, or None when the file does not exist."""
        if name not in self._parsed:
            jinja2 = self.jinja2
            try:
                source, _, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            except jinja2.TemplateNotFound:
                self._parsed[name] = None
                return None
            try:
                self._parsed[name] = (self.env.parse(source, name), source.splitlines())
            except jinja2.TemplateSyntaxError as exc:
                self._parsed[name] = syntax_diagnostic(f"{TEMPLATES_DIR}/{name}", exc)
        return self._parsed[name]

    def check(self, name: str, schema: dict[str, Any], origin: str, uses: Uses) -> list[Diagnostic]:
        """Diagnostics for template `name` and everything it extends or includes."""
        out: list[Diagnostic] = []
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            parsed = self.parse(current)
            if parsed is None:
                if current != name:
                    out.append(
                        Diagnostic(
                            f"{TEMPLATES_DIR}/{name}",
                            1,
                            1,
                            Severity.ERROR,
                            "missing-file",
                            f"template {current!r} (extended or included) not found under "
                            f"{TEMPLATES_DIR}/",
                            "names in {% extends %} and {% include %} are relative to templates/",
                        )
                    )
                continue
            if isinstance(parsed, Diagnostic):
                out.append(parsed)
                continue
            ast, lines = parsed
            walker = _Walker(f"{TEMPLATES_DIR}/{current}", lines, schema, origin, uses)
            walker.run(ast)
            out.extend(walker.diagnostics)
            nodes = self.jinja2.nodes
            for node in ast.find_all(
                (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
            ):
                target = node.template
                if isinstance(target, nodes.Const) and isinstance(target.value, str):
                    pending.append(target.value)
        return out

    def check_string(
        self,
        source: str,
        file: str,
        line: int,
        column: int,
        schema: dict[str, Any],
        origin: str,
        uses: Uses,
    ) -> list[Diagnostic]:
        """An inline template (a subject in YAML), reported at its place in the YAML."""
        jinja2 = self.jinja2
        try:
            ast = self.env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            return [
                Diagnostic(
                    file,
                    line,
                    column,
                    Severity.ERROR,
                    "template-syntax",
                    f"syntax error in the subject: {exc.message}",
                    None,
                )
            ]
        walker = _Walker(file, [], schema, origin, uses, fixed=(line, column))
        walker.run(ast)
        return walker.diagnostics


def syntax_diagnostic(file: str, exc: Any) -> Diagnostic:
    return Diagnostic(
        file,
        exc.lineno or 1,
        1,
        Severity.ERROR,
        "template-syntax",
        f"syntax error: {exc.message}",
        "see https://jinja.palletsprojects.com/en/stable/templates/",
    )


_KEEP_TYPE_FILTERS = frozenset({"sort", "reverse", "list", "unique", "selectattr", "rejectattr"})
_ITEM_FILTERS = frozenset({"first", "last", "random"})


class _Walker:
    def __init__(
        self,
        file: str,
        lines: list[str],
        schema: dict[str, Any],
        origin: str,
        uses: Uses,
        fixed: tuple[int, int] | None = None,
    ) -> None:
        from jinja2 import nodes

        self.nodes = nodes
        self.file = file
        self.lines = lines
        self.schema = schema
        self.origin = origin
        self.uses = uses
        self.fixed = fixed
        self.diagnostics: list[Diagnostic] = []
        self.guarded: set[str] = set()
        self.locals: set[str] = set()

    # ------------------------------------------------------------------ entry
    def run(self, ast: Any) -> None:
        from jinja2 import meta

        nodes = self.nodes
        for test in ast.find_all(nodes.Test):
            if test.name in ("defined", "undefined"):
                chain = self._chain(test.node)
                if chain:
                    self.guarded.add(chain)
        for node in ast.find_all(
            (nodes.Assign, nodes.For, nodes.Macro, nodes.With, nodes.AssignBlock, nodes.CallBlock)
        ):
            for name in node.find_all(nodes.Name):
                if name.ctx in ("store", "param"):
                    self.locals.add(name.name)
        for name in sorted(meta.find_undeclared_variables(ast)):
            if name in self.schema or name in JINJA_GLOBALS:
                continue
            if name in self.guarded:
                continue
            line = next(
                (n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"),
                1,
            )
            close = difflib.get_close_matches(name, list(self.schema), n=1)
            self._report(
                line,
                name,
                f"{name!r} is undefined",
                f"did you mean {close[0]!r}?"
                if close
                else f"the context has {', '.join(self.schema)}",
            )
        self._visit(ast, {})

    # ------------------------------------------------------------------ helpers
    def _chain(self, node: Any) -> str | None:
        nodes = self.nodes
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Getattr):
            base = self._chain(node.node)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            base = self._chain(node.node)
            return f"{base}.{node.arg.value}" if base else None
        return None

    def _column(self, line: int, attr: str) -> int:
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            for needle in (f".{attr}", f"'{attr}'", f'"{attr}"', attr):
                index = text.find(needle)
                if index >= 0:
                    return index + 1 + (1 if needle[0] in ".'\"" else 0)
        return 1

    def _report(self, line: int, attr: str, message: str, hint: str | None) -> None:
        if self.fixed:
            line, column = self.fixed
        else:
            column = self._column(line, attr)
        self.diagnostics.append(
            Diagnostic(
                self.file,
                line,
                column,
                Severity.ERROR,
                "template-undefined",
                f"{message} ({self.origin})",
                hint,
            )
        )

    def _type(self, node: Any, scope: dict[str, Any]) -> Any:
        nodes = self.nodes
        if isinstance(node, nodes.Name):
            if node.name in scope:
                return scope[node.name]
            if node.name in self.locals:
                return ANY
            return self.schema.get(node.name, ANY)
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            base = self._type(node.node, scope)
            if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                if isinstance(node.arg.value, int) and isinstance(base, ListOf):
                    return base.item
                attr = node.arg.value
            else:
                attr = getattr(node, "attr", None)
            if isinstance(base, Obj) and attr in base.attrs:
                return base.attrs[attr]
            return ANY
        if isinstance(node, nodes.CondExpr):
            first = self._type(node.expr1, scope)
            second = self._type(node.expr2, scope) if node.expr2 is not None else ANY
            return first if not isinstance(first, AnyType) else second
        if isinstance(node, nodes.List) and node.items:
            return ListOf(self._type(node.items[0], scope))
        if isinstance(node, nodes.Filter) and node.node is not None:
            inner = self._type(node.node, scope)
            if node.name in _KEEP_TYPE_FILTERS:
                return inner
            if node.name in _ITEM_FILTERS and isinstance(inner, ListOf):
                return inner.item
        return ANY

    def _item(self, kind: Any) -> Any:
        if isinstance(kind, ListOf):
            return kind.item
        if isinstance(kind, Obj) and kind.item is not None:
            return kind.item
        return ANY

    def _bind(self, target: Any, kind: Any, scope: dict[str, Any]) -> None:
        nodes = self.nodes
        if isinstance(target, nodes.Name):
            scope[target.name] = kind
        else:
            for name in target.find_all(nodes.Name):
                scope[name.name] = ANY

    # ------------------------------------------------------------------ walking
    def _visit(self, node: Any, scope: dict[str, Any]) -> None:
        nodes = self.nodes
        if isinstance(node, nodes.For):
            self._visit(node.iter, scope)
            inner = dict(scope)
            self._bind(node.target, self._item(self._type(node.iter, scope)), inner)
            inner["loop"] = ANY
            for child in [*([node.test] if node.test is not None else []), *node.body]:
                self._visit(child, inner)
            for child in node.else_:
                self._visit(child, scope)
            return
        if isinstance(node, nodes.Assign):
            self._visit(node.node, scope)
            self._bind(node.target, self._type(node.node, scope), scope)
            return
        if isinstance(node, (nodes.Macro, nodes.CallBlock)):
            inner = dict(scope)
            for arg in node.args:
                self._bind(arg, ANY, inner)
            for child in node.iter_child_nodes():
                self._visit(child, inner)
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name == "links":
                self.uses.links = True
            elif node.name == "questionnaire":
                self.uses.questionnaire = True
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            self._check_member(node, scope)
        for child in node.iter_child_nodes():
            self._visit(child, scope)

    def _check_member(self, node: Any, scope: dict[str, Any]) -> None:
        nodes = self.nodes
        if isinstance(node, nodes.Getitem):
            if not (isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
                return
            attr = node.arg.value
        else:
            attr = node.attr
        base = self._type(node.node, scope)
        if not isinstance(base, Obj) or attr in base.attrs:
            return
        chain = self._chain(node)
        if chain and chain in self.guarded:
            return
        known = sorted(base.attrs)
        close = difflib.get_close_matches(attr, known, n=1)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif base.name == "blocks":
            hint = "add it under `message.blocks:` in the campaign" + (
                f" (blocks: {', '.join(known)})" if known else ""
            )
        else:
            hint = f"{base.name} has {', '.join(known)}"
        self._report(node.lineno, attr, f"{base.name} has no attribute {attr!r}", hint)


# =========================================================================== campaigns


def _campaign_columns(workspace: Any, campaign: Campaign) -> list[str] | None:
    for name in campaign.audience.segments:
        segment = workspace.segments.get(name)
        if segment is not None:
            audience = workspace.audiences.get(segment.audience)
            columns = workspace.record_columns(audience) if audience else None
            return list(columns) if columns is not None else None  # None: not checked
    return None


def campaign_templates(campaign: Campaign) -> list[tuple[str, tuple[str, ...]]]:
    """(template name, parts) of every message the campaign may send."""
    out: list[tuple[str, tuple[str, ...]]] = []
    message = campaign.message
    if message is None:
        return out

    def parts_for(channels: list[Channel]) -> tuple[str, ...]:
        parts: tuple[str, ...] = ()
        if Channel.EMAIL in channels:
            parts += ("html", "text")
        if Channel.SMS in channels:
            parts += ("sms",)
        return parts

    out.append((message.template, parts_for(campaign.channels)))
    for rule in campaign.schedule.relaunch if campaign.schedule else []:
        out.append(
            (rule.template or message.template, parts_for(rule.channels or campaign.channels))
        )

    def steps(items: list[Any]) -> None:
        for step in items:
            if step.send is not None:
                out.append(
                    (
                        step.send.template or message.template,
                        parts_for(step.send.channels or campaign.channels),
                    )
                )
            steps(step.then)
            steps(step.else_)

    steps(campaign.steps)
    return out


def analyze_campaign(
    workspace: Any, campaign: Campaign, checker: TemplateChecker | None = None
) -> Analysis:
    """Every template problem of one campaign, and which context parts its templates use."""
    from campaignctl.spec.workspace import TEMPLATE_SUFFIXES

    checker = checker or TemplateChecker(workspace.root)
    uses = Uses()
    message = campaign.message
    if message is None:
        return Analysis([], uses)
    schema = context_schema(_campaign_columns(workspace, campaign), list(message.blocks))
    origin = f"campaign {campaign.name!r}"
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for name, parts in campaign_templates(campaign):
        for part in parts:
            if (name, part) in seen:
                continue
            seen.add((name, part))
            file = f"{name}{TEMPLATE_SUFFIXES[part]}"
            if workspace.template_file(name, part).is_file():
                out.extend(checker.check(file, schema, origin, uses))
    if message.subject and Channel.EMAIL in campaign.channels:
        doc = workspace.documents["Campaign"].get(campaign.name)
        mark = doc.mark("message", "subject") if doc else None
        out.extend(
            checker.check_string(
                message.subject,
                doc.file if doc else f"campaign {campaign.name}",
                mark.line if mark else 1,
                mark.column if mark else 1,
                schema,
                origin,
                uses,
            )
        )
    config = workspace.config
    signature = config.organization.signature if config else None
    if signature and signature.startswith(f"{TEMPLATES_DIR}/"):
        name = signature.removeprefix(f"{TEMPLATES_DIR}/")
        if checker.parse(name) is not None:
            out.extend(
                checker.check(
                    name, context_schema(None, [], full=False), "the organization signature", Uses()
                )
            )
    return Analysis(out, uses)


def check_workspace_templates(workspace: Any) -> list[Diagnostic]:
    """Syntax of every template file, and each campaign's variables (what `validate` adds)."""
    checker = TemplateChecker(workspace.root)
    out: list[Diagnostic] = []
    for name in workspace.templates:
        parsed = checker.parse(name)
        if isinstance(parsed, Diagnostic):
            out.append(parsed)
    for campaign in workspace.campaigns.values():
        out.extend(analyze_campaign(workspace, campaign, checker).diagnostics)
    return out


TEMPLATE_CHECK_CACHE = "template-check.json"


def cached_workspace_templates(workspace: Any) -> list[Diagnostic]:
    """`check_workspace_templates`, remembered in `.campaignctl/` until a definition or a
    template changes, so that commands which only need the definitions (segment show,
    audience import…) do not re-parse every template on every run. `validate` never uses it.
    """
    import json

    cache = workspace.state_dir / TEMPLATE_CHECK_CACHE
    # the attributes templates may use come from the CSV headers too (not their rows)
    headers = {
        name: list(columns) if (columns := workspace.record_columns(audience)) else None
        for name, audience in sorted(workspace.audiences.items())
    }
    fingerprint = definitions_fingerprint(workspace.root, Path(__file__)) + json.dumps(headers)
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == fingerprint:
            return [
                Diagnostic(d[0], d[1], d[2], Severity(d[3]), d[4], d[5], d[6])
                for d in saved["diagnostics"]
            ]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass  # no cache yet, or an unreadable one: recompute
    diagnostics = check_workspace_templates(workspace)
    if not workspace.state_dir.is_dir():
        return diagnostics  # a workspace without local state yet: nothing is written
    document = {
        "fingerprint": fingerprint,
        "diagnostics": [
            [d.file, d.line, d.column, d.severity.value, d.code, d.message, d.hint]
            for d in diagnostics
        ],
    }
    write_cache(cache, document)
    return diagnostics
