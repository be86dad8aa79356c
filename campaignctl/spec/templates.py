"""Static checks of templates: syntax, and variables the rendering context will not have.

`validate` runs these for every campaign: each template part it uses (and what they
extend or include) is parsed once, and every `name.attribute` chain is checked against
the documented context (docs/templates.md), the campaign's `message.blocks` and the
columns of its audience — `record.comune` when the audience has `commune` is an error
with a "did you mean". Every filter and test a template names, in any branch, must be one
the rendering environment has (`TEMPLATE_FILTERS` are the ones campaignctl adds to
Jinja's). Only jinja2 is imported (no rendering happens here).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from campaignctl.errors import Diagnostic, Severity, SpecError
from campaignctl.spec.files import (
    TEMPLATE_SUFFIXES,
    UnsafePath,
    definitions_fingerprint,
    write_cache,
)
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


def date_filter(value: Any, fmt: str = "%d/%m/%Y") -> str:
    """`{{ record.contract_end | date }}` → 10/03/2027; `| date("%Y")` → 2027."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, (date, datetime)):
        return value.strftime(fmt)
    return str(value)


# The filters campaignctl adds to Jinja's own: the rendering environment
# (render/environment.py) installs them, and `validate` accepts exactly what it has.
TEMPLATE_FILTERS: dict[str, Callable[..., Any]] = {"date": date_filter}

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
        # Lazy for start-up: every command loads the workspace, few check templates, and
        # the loader brings Jinja (30 more modules, ~18 ms: benchmarks/imports.py).
        import jinja2

        from campaignctl.spec.template_loader import WorkspaceLoader

        self.root = root
        self.jinja2 = jinja2
        self.env = jinja2.Environment(loader=WorkspaceLoader(root))
        self.env.filters.update(TEMPLATE_FILTERS)
        self._parsed: dict[str, tuple[Any, list[str]] | Diagnostic | None] = {}

    def parse(self, name: str) -> tuple[Any, list[str]] | Diagnostic | None:
        """(AST, source lines), a diagnostic (syntax, encoding, unsafe path), or None when
        the file does not exist."""
        if name not in self._parsed:
            jinja2 = self.jinja2
            try:
                source, _, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            except jinja2.TemplateNotFound:
                self._parsed[name] = None
                return None
            except SpecError as exc:  # the loader's TemplateFileError
                self._parsed[name] = exc.diagnostics[0]
                return self._parsed[name]
            try:
                check_nesting(self.env, source, name)
                self._parsed[name] = (self.env.parse(source, name), source.splitlines())
            except jinja2.TemplateSyntaxError as exc:
                self._parsed[name] = syntax_diagnostic(f"{TEMPLATES_DIR}/{name}", exc)
        return self._parsed[name]

    def unknown_filters(self, name: str) -> list[Diagnostic]:
        """Filters and tests of template `name` that the environment does not have."""
        parsed = self.parse(name)
        if parsed is None or isinstance(parsed, Diagnostic):
            return []
        ast, lines = parsed
        return unknown_filters(ast, self.env, f"{TEMPLATES_DIR}/{name}", lines)

    def check(self, name: str, schema: dict[str, Any], origin: str, uses: Uses) -> list[Diagnostic]:
        """Diagnostics for template `name` and everything it extends or includes."""
        out: list[Diagnostic] = []
        seen: set[str] = set()
        # (name, where the {% extends/include/import %} naming it is: file, line, column)
        pending: list[tuple[str, tuple[str, int, int] | None]] = [(name, None)]
        while pending:
            current, where = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            parsed = self.parse(current)
            if parsed is None:
                if where is not None:
                    file, line, column = where
                    out.append(
                        Diagnostic(
                            file,
                            line,
                            column,
                            Severity.ERROR,
                            "missing-file",
                            f"template {current!r} (extended or included) not found under "
                            f"{TEMPLATES_DIR}/",
                            "names in {% extends %} and {% include %} are relative to templates/",
                        )
                    )
                continue
            if isinstance(parsed, Diagnostic):
                out.append(_at(parsed, where))
                continue
            ast, lines = parsed
            walker = _Walker(f"{TEMPLATES_DIR}/{current}", lines, schema, origin, uses)
            walker.run(ast)
            out.extend(walker.diagnostics)
            pending.extend(self.references(current))
        return out

    def shows_link(self, name: str, link: str) -> bool:
        """Whether template `name`, or a template it extends, includes or imports, prints
        `links.<link>` (in `{{ … }}` output, not only in a test)."""
        nodes = self.jinja2.nodes
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            parsed = self.parse(current)
            if parsed is None or isinstance(parsed, Diagnostic):
                continue
            ast, _ = parsed
            for output in ast.find_all(nodes.Output):
                for node in output.find_all((nodes.Getattr, nodes.Getitem)):
                    if isinstance(node, nodes.Getattr):
                        attr = node.attr
                    elif isinstance(node.arg, nodes.Const):
                        attr = node.arg.value
                    else:
                        continue
                    base = node.node
                    if attr == link and isinstance(base, nodes.Name) and base.name == "links":
                        return True
            pending.extend(target for target, _ in self.references(current))
        return False

    def references(self, name: str) -> list[tuple[str, tuple[str, int, int]]]:
        """The constant names template `name` extends, includes or imports, each with
        where it is written (file, line, column)."""
        parsed = self.parse(name)
        if parsed is None or isinstance(parsed, Diagnostic):
            return []
        ast, lines = parsed
        nodes = self.jinja2.nodes
        out = []
        for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            target = node.template
            if isinstance(target, nodes.Const) and isinstance(target.value, str):
                text = lines[node.lineno - 1] if 0 < node.lineno <= len(lines) else ""
                column = max(text.find(target.value), 0) + 1
                out.append((target.value, (f"{TEMPLATES_DIR}/{name}", node.lineno, column)))
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
            check_nesting(self.env, source, None)
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
                    "see https://jinja.palletsprojects.com/en/stable/templates/",
                )
            ]
        walker = _Walker(file, [], schema, origin, uses, fixed=(line, column))
        walker.run(ast)
        return walker.diagnostics + unknown_filters(ast, self.env, file, [], fixed=(line, column))


def _at(diagnostic: Diagnostic, where: tuple[str, int, int] | None) -> Diagnostic:
    """An unsafe name in `{% include %}` is reported where it is written, not at the file
    it names (which may be anywhere)."""
    if where is None or diagnostic.code != "unsafe-path":
        return diagnostic
    file, line, column = where
    return dataclasses.replace(diagnostic, file=file, line=line, column=column)


# Jinja's parser and code generator recurse once per nested block, bracket or operator, and
# Python refuses the generated module past 100 indentation levels or 20 nested loops: a
# template nested deeper would end in a RecursionError. Real templates stay far below.
MAX_TEMPLATE_DEPTH = 40  # blocks, brackets and operators open at one point
MAX_LOOP_DEPTH = 16  # nested {% for %}
NESTING_TOO_DEEP = "nested too deep"
_BLOCK_TAGS = frozenset(
    {"if", "for", "macro", "call", "filter", "block", "with", "autoescape", "trans"}
)
_WORD_OPERATORS = frozenset({"not", "and", "or", "is", "in", "if", "else"})
_FLAT_OPERATORS = frozenset({",", ":", "~", "="})  # lists and concatenations do not nest


def check_nesting(env: Any, source: str, name: str | None, filename: str | None = None) -> None:
    """Raise Jinja's TemplateSyntaxError, at the line where the template nests deeper than
    MAX_TEMPLATE_DEPTH (or MAX_LOOP_DEPTH loops), before the parser recurses into it."""
    import jinja2

    blocks: list[str] = []
    brackets = operators = 0
    keyword_next = block_set = False
    for lineno, kind, value in env.lexer.tokeniter(source, name, filename):
        if kind in ("block_begin", "variable_begin"):
            brackets = operators = 0
            keyword_next = kind == "block_begin"
            continue
        if kind == "block_end" and block_set:  # {% set x %}…{% endset %}: a block
            blocks.append("set")
        if kind in ("block_end", "variable_end"):
            keyword_next = block_set = False
            continue
        if keyword_next and kind == "name":
            keyword_next = False
            if value in _BLOCK_TAGS:
                blocks.append(value)
            elif value == "set":
                block_set = True
            elif value.startswith("end") and blocks:
                blocks.pop()
        elif kind == "operator":
            if value in "([{":
                brackets += 1
            elif value in ")]}":
                brackets = max(brackets - 1, 0)
            elif value == "=":
                block_set = False
            elif value not in _FLAT_OPERATORS:
                operators += 1
        elif kind == "name" and value in _WORD_OPERATORS:
            operators += 1
        if (
            len(blocks) + brackets + operators > MAX_TEMPLATE_DEPTH
            or blocks.count("for") > MAX_LOOP_DEPTH
        ):
            what = (
                f"{MAX_LOOP_DEPTH} {{% for %}} loops"
                if len(blocks) + brackets + operators <= MAX_TEMPLATE_DEPTH
                else f"{MAX_TEMPLATE_DEPTH} blocks, brackets and operators"
            )
            raise jinja2.TemplateSyntaxError(
                f"{NESTING_TOO_DEEP}: more than {what} inside one another", lineno, name, filename
            )


def syntax_diagnostic(file: str, exc: Any) -> Diagnostic:
    """A Jinja TemplateSyntaxError as a located diagnostic (validate and render alike)."""
    return Diagnostic(
        file,
        exc.lineno or 1,
        1,
        Severity.ERROR,
        "template-syntax",
        f"syntax error: {exc.message}",
        "move the inner part into a macro or an included template"
        if exc.message.startswith(NESTING_TOO_DEEP)
        else "see https://jinja.palletsprojects.com/en/stable/templates/",
    )


def unknown_filters(
    ast: Any,
    env: Any,
    file: str,
    lines: list[str],
    fixed: tuple[int, int] | None = None,
) -> list[Diagnostic]:
    """A `template-filter` error for each filter or test name `env` does not have.

    Jinja only fails on them when the branch that uses them renders (an `{% if %}` taken
    by a few recipients, a relaunch): this finds them in every branch, before any send.
    """
    from jinja2 import nodes

    out: list[Diagnostic] = []
    for kind, node_type, known in (
        ("filter", nodes.Filter, env.filters),
        ("test", nodes.Test, env.tests),
    ):
        for node in ast.find_all(node_type):
            if node.name in known:
                continue
            close = difflib.get_close_matches(node.name, list(known), n=1)
            ours = f" and {', '.join(TEMPLATE_FILTERS)}" if kind == "filter" else ""
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"the {kind}s are Jinja's own "
                f"(https://jinja.palletsprojects.com/en/stable/templates/){ours}"
            )
            line, column = fixed or (node.lineno, _name_column(lines, node.lineno, node.name))
            out.append(
                Diagnostic(
                    file,
                    line,
                    column,
                    Severity.ERROR,
                    "template-filter",
                    f"unknown {kind} {node.name!r}",
                    hint,
                )
            )
    return out


def _name_column(lines: list[str], line: int, name: str) -> int:
    """The 1-based column of filter or test `name` (after `|` or `is`) in a template line."""
    import re

    if 0 < line <= len(lines):
        found = re.search(rf"(?:\|\s*|\bis\s+(?:not\s+)?)({re.escape(name)})\b", lines[line - 1])
        if found:
            return found.start(1) + 1
    return 1


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
        from jinja2 import TemplateAssertionError, meta

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
        try:
            undeclared = meta.find_undeclared_variables(ast)
        except TemplateAssertionError:
            # an unknown filter outside any branch fails Jinja's code generation:
            # `unknown_filters` reports it; the variables are checked once it is fixed
            undeclared = set()
        for name in sorted(undeclared):
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
    checker = checker or TemplateChecker(workspace.root)
    uses = Uses()
    message = campaign.message
    if message is None:
        return Analysis([], uses)
    schema = context_schema(_campaign_columns(workspace, campaign), list(message.blocks))
    origin = f"campaign {campaign.name!r}"
    config = workspace.config
    category = config.categories.get(campaign.category) if config is not None else None
    unsubscribe = bool(category and category.unsubscribe)
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for name, parts in campaign_templates(campaign):
        for part in parts:
            if (name, part) in seen:
                continue
            seen.add((name, part))
            file = f"{name}{TEMPLATE_SUFFIXES[part]}"
            try:
                exists = workspace.template_file(name, part).is_file()
            except UnsafePath:
                continue  # reported at the campaign's `template:` by the workspace checks
            if exists:
                out.extend(checker.check(file, schema, origin, uses))
                if part in ("html", "text") and unsubscribe:
                    out.extend(_missing_unsubscribe(checker, file, campaign))
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
    try:
        name = workspace.signature_template()
    except SpecError:
        name = None  # reported at campaignctl.yaml by the workspace checks
    if name is not None and checker.parse(name) is not None:
        out.extend(
            checker.check(
                name, context_schema(None, [], full=False), "the organization signature", Uses()
            )
        )
    return Analysis(out, uses)


def _missing_unsubscribe(
    checker: TemplateChecker, file: str, campaign: Campaign
) -> list[Diagnostic]:
    """The 2024 Gmail/Yahoo bulk-sender rules and the law ask for a visible unsubscribe link
    in every part of an email whose category allows unsubscribing, beside the header."""
    if checker.shows_link(file, "unsubscribe"):
        return []
    html = file.endswith(".html.j2")
    return [
        Diagnostic(
            f"{TEMPLATES_DIR}/{file}",
            1,
            1,
            Severity.ERROR,
            "missing-unsubscribe",
            f"campaign {campaign.name!r} (category {campaign.category!r}, which allows "
            f"unsubscribing) sends this {'HTML' if html else 'text'} part without a visible "
            "unsubscribe link",
            hint=(
                'add <a href="{{ links.unsubscribe }}">Se désinscrire</a>'
                if html
                else "add a line such as: Se désinscrire : {{ links.unsubscribe }}"
            )
            + " to it or to the layout it extends",
        )
    ]


def check_workspace_templates(workspace: Any) -> list[Diagnostic]:
    """Syntax and filters of every template file, and each campaign's variables (what
    `validate` adds)."""
    checker = TemplateChecker(workspace.root)
    out: list[Diagnostic] = []
    for name in workspace.templates:
        parsed = checker.parse(name)
        if isinstance(parsed, Diagnostic):
            out.append(parsed)
        for target, where in checker.references(name):  # even in templates no campaign uses
            named = checker.parse(target)
            if isinstance(named, Diagnostic) and named.code == "unsafe-path":
                out.append(_at(named, where))
        out.extend(checker.unknown_filters(name))
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
    sources = (Path(__file__), Path(__file__).with_name("template_loader.py"))
    fingerprint = definitions_fingerprint(workspace.root, *sources) + json.dumps(headers)
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
