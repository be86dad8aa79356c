"""The sandboxed Jinja environment of a workspace, and template errors with file:line.

One environment per run: autoescape for `.html.j2`, `StrictUndefined` (a missing
variable is an error, never an empty string), templates loaded from `templates/`
so layouts and includes work, and compiled templates cached by Jinja.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from campaignctl.errors import Diagnostic, Severity, SpecError
from campaignctl.render import sandbox
from campaignctl.render.context import (
    BlocksView,
    CampaignView,
    DocumentLink,
    LinksView,
    OrganizationView,
    RecordView,
    Wave,
)
from campaignctl.render.questionnaire import Period, QuestionField, QuestionnaireView
from campaignctl.spec.template_loader import WorkspaceLoader
from campaignctl.spec.templates import (
    NESTING_TOO_DEEP,
    TEMPLATE_FILTERS,
    check_nesting,
    syntax_diagnostic,
)

TEMPLATES_DIR = "templates"


class CampaignUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names the context object ("record has no attribute …")."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        if self._undefined_obj is jinja2.utils.missing:
            return f"{self._undefined_name!r} is undefined"
        what = getattr(type(self._undefined_obj), "_what", None)
        if what is None:
            what = jinja2.utils.object_type_repr(self._undefined_obj)
        return f"{what} has no attribute {self._undefined_name!r}"


# The OutputCapture of the HTML render in progress in this thread or task, if any
# (render/inlining.py). A context variable: the send engine renders batches in threads.
OUTPUT_CAPTURE: ContextVar[Any] = ContextVar("campaignctl_output_capture", default=None)


_current_allowance = sandbox.ALLOWANCE.get


@jinja2.pass_eval_context
def _finalize(eval_ctx: jinja2.nodes.EvalContext, value: Any) -> Any:
    # Called for every {{ … }}: the render's allowance (render/sandbox.py), kept cheap.
    allowance = _current_allowance()
    if allowance is not None:
        allowance.printed -= (
            len(value) if type(value) is str else sandbox.held_size(value, allowance.printed)
        )
        if allowance.printed < 0:
            raise allowance.overdrawn()
    capture = OUTPUT_CAPTURE.get()
    if capture is not None and eval_ctx.autoescape:
        return capture.output(value)  # the HTML part's shape (render/inlining.py)
    # An empty CSV cell is None: print nothing rather than "None".
    return "" if value is None else value


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".htm.j2", ".html"))


class CampaignEnvironment(SandboxedEnvironment):
    """The sandbox, with size limits (render/sandbox.py: every text or list a template makes
    is bounded) and a fast path for the context's own view objects.

    Every `record.x` in a sandboxed template goes through `is_safe_attribute`, which
    dominates rendering time. The views (context.View subclasses and the slotted
    records of questionnaire fields and waves) hold only data under public names, so
    those lookups are answered directly; anything else takes the sandbox's full path.

    `OUTPUT_CAPTURE`, set by the renderer around one HTML render, turns plain-text outputs
    into markers (render/inlining.py).
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = sandbox.BoundedCodeGenerator
    checked_concat = staticmethod(sandbox.checked_concat)
    concat = staticmethod(sandbox.bounded_concat)  # every render's, macro's, block's output

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return sandbox.binop(self.binop_table, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = sandbox.check_method(__obj, args, kwargs)
        return sandbox.check_size(super().call(__context, __obj, *args, **kwargs), "a call")

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind in _DICT_VIEWS:
            if attribute[:1] != "_":
                try:
                    return obj.__dict__[attribute]
                except KeyError:
                    pass
        elif (kind, attribute) in _SLOT_ATTRIBUTES:
            return object.__getattribute__(obj, attribute)
        elif kind is _LinksView and attribute in obj._factory.NAMES:
            # Documented link names only; LinksView computes each on first use.
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> Any:
        # Every compile (files, includes, inline subjects) parses here: refuse a template
        # nested deep enough to exhaust Jinja's recursion first, at its line, and count the
        # turns of its loops (render/sandbox.py).
        check_nesting(self, source, name, filename)
        return sandbox.count_loops(super()._parse(source, name, filename))


def _view_types() -> tuple[frozenset[type], dict[type, frozenset[str]]]:
    from dataclasses import fields

    slotted = {
        cls: frozenset(f.name for f in fields(cls))
        for cls in (QuestionField, Wave, DocumentLink, Period)
    }
    slotted[QuestionnaireView] = frozenset({"title", "fields"})
    views = frozenset({RecordView, CampaignView, OrganizationView, BlocksView})
    return views, slotted, LinksView


_DICT_VIEWS, _SLOT_VIEWS, _LinksView = _view_types()
# (type, public name) of every slotted view field: one set lookup per `x.y` in a template
_SLOT_ATTRIBUTES = frozenset((kind, name) for kind, names in _SLOT_VIEWS.items() for name in names)


def make_environment(root: Path) -> SandboxedEnvironment:
    """The sandboxed environment of the workspace at `root` (build once per run)."""
    env = CampaignEnvironment(
        loader=WorkspaceLoader(root),  # templates/ only, symbolic links leading out refused
        autoescape=_autoescape,
        undefined=CampaignUndefined,
        finalize=_finalize,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters.update(TEMPLATE_FILTERS)  # the ones `validate` checks templates against
    sandbox.bound_filters(env.filters, env.globals)
    return env


class TemplateProblem(SpecError):
    """A template failed to compile or to render: exit 65 naming file, line and variable."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__([diagnostic], message=f"template {diagnostic.file} failed")
        self.diagnostic = diagnostic
        self.hint = diagnostic.hint


def _template_frame(exc: BaseException) -> tuple[str | None, int]:
    """The template file and line in a (Jinja-rewritten) traceback where it failed: the
    innermost; for templates that include or call one another without end, the outermost
    place that comes back again (where the loop is entered: the innermost would name one
    template of the loop or another, by where the stack happened to run out)."""
    frames: list[tuple[str | None, int]] = []
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename == "<template>":
            frames.append((filename, tb.tb_lineno))
        tb = tb.tb_next
    if isinstance(exc, RecursionError):
        counts = Counter(frames)
        repeated = next((frame for frame in frames if counts[frame] > 1), None)
        if repeated:
            return repeated
    return frames[-1] if frames else (None, 0)


def template_error(
    exc: Exception, root: Path, template: str, what: str | None = None
) -> TemplateProblem:
    """Turn a Jinja exception into a located diagnostic (code template-syntax|undefined|…)."""
    base = root / TEMPLATES_DIR
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateProblem(syntax_diagnostic(f"{TEMPLATES_DIR}/{exc.name or template}", exc))
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateProblem(
            Diagnostic(
                f"{TEMPLATES_DIR}/{template}",
                1,
                1,
                Severity.ERROR,
                "missing-file",
                f"template {exc.name!r} not found under {TEMPLATES_DIR}/",
                "check the name in `{% extends %}` / `{% include %}` (relative to templates/)",
            )
        )
    filename, line = _template_frame(exc)
    shown = template
    if filename and filename != "<template>":
        try:
            shown = Path(filename).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            shown = filename
    file = f"{TEMPLATES_DIR}/{shown}" if filename != "<template>" else shown
    if isinstance(exc, sandbox.TemplateTooLarge):
        code, message, hint = (
            "template-too-large",
            str(exc),
            f"a template makes texts of at most {sandbox.MAX_TEXT:,} characters and lists of "
            f"{sandbox.MAX_ITEMS:,} items: look for a `*`, a width or a loop that grows "
            "without bound",
        )
    elif isinstance(exc, SecurityError):
        code, message, hint = (
            "template-unsafe",
            f"unsafe operation blocked by the sandbox: {exc}",
            "templates may only use the documented context (docs/templates.md)",
        )
    elif isinstance(exc, jinja2.UndefinedError):
        code, message, hint = (
            "template-undefined",
            f"undefined variable: {exc.message}",
            "see docs/templates.md for the context, and the audience's columns for `record`",
        )
    elif isinstance(exc, RecursionError):
        code, message, hint = (
            "template-error",
            f"{NESTING_TOO_DEEP}: templates or macros include or call one another without end",
            "look for an {% include %} or a macro call that comes back to where it started",
        )
    else:
        code, message, hint = (
            "template-error",
            f"{type(exc).__name__}: {exc}",
            "the template failed on this recipient's data: `campaignctl preview CAMPAIGN "
            "--contact KEY` shows it again; guard the expression with an {% if %}",
        )
    if what:
        message = f"{message} (rendering {what})"
    return TemplateProblem(Diagnostic(file, line or 1, 1, Severity.ERROR, code, message, hint))
