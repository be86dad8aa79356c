"""Size limits of the template sandbox.

Jinja's sandbox blocks unsafe attributes and bounds `range()`, and nothing else: one
`{{ 'a' * 100000000 }}` in a template (a pull request CI applies) made a 100 MB message,
and a few more zeros would take the machine's memory. Here:

- what can make a text or a list much larger than its inputs is checked *before* it runs:
  `*` on texts and lists, `**`, format widths, padding, joining, replacing, `batch`/`slice`
  padding, `lipsum`;
- what only adds its inputs up is checked after: `+`, `~`, any call's result;
- what a template prints (`{{ … }}`, in loops, macros and blocks alike), what it puts
  into lists (`append`, `extend`…) and the turns of its loops count against one
  allowance per render, so that no loop piles up gigabytes before anything is joined, nor
  runs for hours (three nested `range(100000)`);
- every output a template joins (the rendered part, and each macro, `{% call %}`,
  `{% filter %}` and `{% set %}` block, which Jinja joins the same way) is measured
  before it is joined.

The errors are `TemplateTooLarge`, reported as `error[template-too-large]` at the
template's line (exit 65; `send` marks the message failed with that reason and goes on).
On the per-`{{ … }}` path there is one subtraction (environment.py's finalize), so
rendering keeps its speed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sized
from contextvars import ContextVar
from functools import update_wrapper
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import MAX_RANGE, SecurityError

MAX_TEXT = 1_000_000  # characters of any text a template makes, and of a rendered part
MAX_ITEMS = MAX_RANGE  # items of any list a template makes (range() has the same bound)
MAX_HELD = 10 * MAX_TEXT  # characters the lists a template builds may hold, in all
MAX_PRINTED = 10 * MAX_TEXT  # characters the {{ … }} of one render may print, in all
MAX_ITERATIONS = 1_000_000  # turns of all the loops of one render
MAX_EXPONENT = 10_000  # `x ** n` with n above this makes a number nobody needs
LOOP_FILTER = "_counted_loop"  # wraps every {% for %}'s iterable (see count_loops)
_CONTAINERS = (list, tuple, set, frozenset, dict)


class TemplateTooLarge(SecurityError):
    """A template tried to make a text or a list past the sandbox's limits."""


def _refuse(what: str, size: int, limit: int, unit: str) -> TemplateTooLarge:
    return TemplateTooLarge(f"{what} would make {size:,} {unit}, more than {limit:,}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def held_size(value: Any, cap: int = MAX_HELD) -> int:
    """About how many characters `str(value)` has, counted no further than past `cap`."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 8
    size = 0
    pending: list[Any] = [value]
    seen: set[int] = set()  # a list appended to itself prints as [...]
    while pending and size <= cap:
        item = pending.pop()
        if isinstance(item, str):
            size += len(item) + 4
        elif isinstance(item, _CONTAINERS):
            size += 2
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            else:
                pending.extend(item)
        else:
            size += 8
    return size


def check_size(value: Any, what: str) -> Any:
    """`value`, unless it is a text or a list past the limits."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _refuse(what, len(value), MAX_TEXT, "characters")
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise _refuse(what, len(value), MAX_ITEMS, "items")
        held = held_size(value)
        if held > MAX_HELD:
            raise _refuse(what, held, MAX_HELD, "characters of text in a list")
    return value


def _check_repeat(sequence: Any, times: Any, what: str) -> None:
    if not _is_int(times) or not isinstance(sequence, (str, list, tuple)):
        return
    times = max(times, 0)
    if isinstance(sequence, str):
        if len(sequence) * times > MAX_TEXT:
            raise _refuse(what, len(sequence) * times, MAX_TEXT, "characters")
        return
    if len(sequence) * times > MAX_ITEMS:
        raise _refuse(what, len(sequence) * times, MAX_ITEMS, "items")
    held = held_size(sequence, MAX_HELD // max(times, 1)) * times
    if held > MAX_HELD:
        raise _refuse(what, held, MAX_HELD, "characters of text in a list")


# %-style conversions and {}-style fields: the numbers in their width and precision.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:((?:[^{}]|\{[^{}]*\})*)\}")
_NUMBER = re.compile(r"\d+")


def check_format(template: str, args: Iterable[Any], what: str) -> None:
    """Refuse a format string whose widths or precisions (written, or taken from the
    arguments by `*` or a nested `{}`) would pad a text past MAX_TEXT."""
    from_args = False
    numbers: list[int] = []
    for match in _PERCENT_SPEC.finditer(template):
        for group in match.groups():
            if group == "*":
                from_args = True
            elif group:
                numbers.append(int(group))
    for match in _BRACE_SPEC.finditer(template):
        spec = match.group(1)
        from_args = from_args or "{" in spec
        numbers.extend(int(n) for n in _NUMBER.findall(spec))
    if from_args:
        numbers.extend(a for a in args if _is_int(a))
    widest = max(numbers, default=0)
    if widest > MAX_TEXT:
        raise TemplateTooLarge(f"{what} with a width of {widest:,}: at most {MAX_TEXT:,}")


def _format_args(right: Any) -> list[Any]:
    if isinstance(right, tuple):
        return list(right)
    if isinstance(right, dict):
        return list(right.values())
    return [right]


def binop(table: dict[str, Callable[[Any, Any], Any]], operator: str, left: Any, right: Any) -> Any:
    """`left operator right`, refused when the result would pass the limits."""
    what = f"`{operator}`"
    if operator == "*":
        _check_repeat(left, right, what)
        _check_repeat(right, left, what)
    elif operator == "**":
        if _is_int(left) and abs(left) > 1 and _is_int(right) and right > MAX_EXPONENT:
            raise TemplateTooLarge(f"`**` with an exponent of {right:,}: at most {MAX_EXPONENT:,}")
    elif operator == "%" and isinstance(left, str):
        check_format(left, _format_args(right), what)
    return check_size(table[operator](left, right), what)


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with every `~` concatenation checked (it is no operator the
    sandbox can intercept: Jinja joins its parts directly)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


def checked_concat(value: Any) -> Any:
    """The result of a `~`, unless past the limits (called from the generated code)."""
    return check_size(value, "`~`")


# ----------------------------------------------------------------- one render's allowance


class Allowance:
    """What one render may still print, put into lists, and loop."""

    __slots__ = ("held", "iterations", "printed")

    def __init__(self) -> None:
        self.printed = MAX_PRINTED
        self.held = MAX_HELD
        self.iterations = MAX_ITERATIONS

    def loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.iterations -= 1
            if self.iterations < 0:
                raise TemplateTooLarge(
                    f"the template's loops turn more than {MAX_ITERATIONS:,} times in one render"
                )
            yield item

    @staticmethod
    def overdrawn() -> TemplateTooLarge:
        """Raised by environment.py's finalize, which counts `printed` for every {{ … }}."""
        return TemplateTooLarge(
            f"the template prints more than {MAX_PRINTED:,} characters in all "
            "(its loops, macros and blocks together)"
        )


ALLOWANCE: ContextVar[Allowance | None] = ContextVar("campaignctl_allowance", default=None)


# ----------------------------------------------------------------- methods and filters


def _joined_size(separator: Any, items: Iterable[Any]) -> Iterator[Any]:
    """The items, counting the joined length as they come; refused once past MAX_TEXT."""
    size = 0
    step = len(str(separator))
    for item in items:
        size += held_size(item, MAX_TEXT) + step
        if size > MAX_TEXT:
            raise _refuse("joining", size, MAX_TEXT, "characters")
        yield item


_GROWTH = {"append": 1, "add": 1, "insert": 1, "setdefault": 1, "extend": 0, "update": 0}


def check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a text or list method from a template; returns the (possibly
    re-wrapped) arguments."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    what = f"`{name}`"
    if name in ("format", "format_map"):  # the sandbox's wrapper around str.format
        owner = getattr(getattr(method, "__wrapped__", None), "__self__", None)
        if isinstance(owner, str):
            values = [*args, *kwargs.values()]
            if name == "format_map" and args and isinstance(args[0], dict):
                values = list(args[0].values())
            check_format(owner, values, what)
    elif isinstance(owner, (list, set, dict)) and name in _GROWTH:
        _check_growth(owner, name, args, kwargs)
    elif not isinstance(owner, str):
        pass
    elif name in ("center", "ljust", "rjust", "zfill") and args and _is_int(args[0]):
        if args[0] > MAX_TEXT:
            raise _refuse(what, args[0], MAX_TEXT, "characters")
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        size = len(owner) + owner.count("\t") * (tab if _is_int(tab) else 0)
        if size > MAX_TEXT:
            raise _refuse(what, size, MAX_TEXT, "characters")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1, what)
    elif name == "join" and args:
        return (_joined_size(owner, args[0]), *args[1:])
    return args


def _check_growth(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    added = list(args) + list(kwargs.values())
    growth = _GROWTH[name]
    if name in ("extend", "update") and args and isinstance(args[0], Sized):
        growth = len(args[0])
    if len(owner) + growth > MAX_ITEMS:
        raise _refuse(f"`{name}`", len(owner) + growth, MAX_ITEMS, "items")
    allowance = ALLOWANCE.get()
    if allowance is not None:
        allowance.held -= held_size(added, allowance.held)
        if allowance.held < 0:
            raise TemplateTooLarge(
                f"`{name}`: the lists of this template would hold more than {MAX_HELD:,} "
                "characters of text in all"
            )


def _check_replace(text: Any, old: Any, new: Any, count: Any, what: str) -> None:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * (len(new) - len(old))
    if size > MAX_TEXT:
        raise _refuse(what, size, MAX_TEXT, "characters")


def _guarded(original: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    """`original` (a Jinja filter or global), with `check` run on its arguments first."""
    passes_argument = hasattr(original, "jinja_pass_arg")

    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*args[1:] if passes_argument else args, **kwargs)
        return original(*args, **kwargs)

    return update_wrapper(guarded, original)


def _center_check(text: Any = "", width: Any = 80) -> None:
    if _is_int(width) and width > MAX_TEXT:
        raise _refuse("`center`", width, MAX_TEXT, "characters")


def _padding_check(name: str, keyword: str) -> Callable[..., None]:
    """`batch(n, fill)` and `slice(n, fill)`: at most MAX_ITEMS, and the fill held n times."""

    def check(value: Any = None, count: Any = 0, fill_with: Any = None, **kwargs: Any) -> None:
        count = kwargs.get(keyword, count)
        fill_with = kwargs.get("fill_with", fill_with)
        if not _is_int(count):
            return
        if count > MAX_ITEMS:
            raise _refuse(f"`{name}`", count, MAX_ITEMS, "items")
        if fill_with is not None:
            _check_repeat([fill_with], count, f"`{name}`")

    return check


def _indent_check(text: Any = "", width: Any = 4, *_: Any, **kwargs: Any) -> None:
    width = kwargs.get("width", width)
    step = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    size = len(str(text)) + step * (str(text).count("\n") + 2)
    if size > MAX_TEXT:
        raise _refuse("`indent`", size, MAX_TEXT, "characters")


def _format_check(text: Any = "", *args: Any, **kwargs: Any) -> None:
    check_format(str(text), [*args, *kwargs.values()], "`format`")


def _replace_check(text: Any = "", old: Any = "", new: Any = "", count: Any = None) -> None:
    _check_replace(text, old, new, -1 if count is None else count, "`replace`")


def _string_check(value: Any = "") -> None:
    size = held_size(value, MAX_TEXT)
    if size > MAX_TEXT:
        raise _refuse("`string`", size, MAX_TEXT, "characters")


def _tojson_check(value: Any = None, indent: Any = None) -> None:
    if _is_int(indent) and indent > 16:
        raise TemplateTooLarge(f"`tojson` with an indent of {indent:,}: at most 16")
    _string_check(value)


def _lipsum_check(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> None:
    words = (n if _is_int(n) else 0) * (max if _is_int(max) else 0)
    if words * 12 > MAX_TEXT:  # a lorem ipsum word and its space: 12 characters at most
        raise _refuse("`lipsum`", words * 12, MAX_TEXT, "characters")


def _join_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        if attribute is not None:
            from jinja2.filters import make_attrgetter

            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        return original(eval_ctx, _joined_size(d, value), d)

    return update_wrapper(join, original)


def bound_filters(filters: dict[str, Any], globals_: dict[str, Any]) -> None:
    """Put the size checks in front of the filters and globals that can explode."""
    checks: dict[str, Callable[..., None]] = {
        "center": _center_check,
        "indent": _indent_check,
        "format": _format_check,
        "replace": _replace_check,
        "string": _string_check,
        "batch": _padding_check("batch", "linecount"),
        "slice": _padding_check("slice", "slices"),
        "tojson": _tojson_check,
    }
    for name, check in checks.items():
        filters[name] = _guarded(filters[name], check)
    filters["join"] = _join_filter(filters["join"])
    filters[LOOP_FILTER] = counted_loop
    globals_["lipsum"] = _guarded(globals_["lipsum"], _lipsum_check)


# ----------------------------------------------------------------- loops and joined outputs


def counted_loop(iterable: Iterable[Any]) -> Iterable[Any]:
    """The iterable of a `{% for %}`, each turn counted against the render's allowance."""
    allowance = ALLOWANCE.get()
    return iterable if allowance is None else allowance.loop(iterable)


def count_loops(template: nodes.Template) -> nodes.Template:
    """Make every `{% for x in y %}` of a parsed template loop over `y|_counted_loop`."""
    for loop in template.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return template


def too_large() -> TemplateTooLarge:
    return TemplateTooLarge(f"the rendered text passes {MAX_TEXT:,} characters")


_FEW_PARTS = 1000


def bounded_concat(chunks: Iterable[Any]) -> str:
    """`Environment.concat`: join a render's output (or a macro's, a block's), unless it
    passes MAX_TEXT. The outermost join of a render opens the render's allowance."""
    if ALLOWANCE.get() is None:
        token = ALLOWANCE.set(Allowance())
        try:
            parts = list(chunks)
        finally:
            ALLOWANCE.reset(token)
    else:
        parts = list(chunks)
    # What was printed is counted: a few parts join into a few times MAX_PRINTED at most.
    # Many parts are a loop's, the same few objects many times: measure before joining.
    if len(parts) > _FEW_PARTS and sum(map(len, parts)) > MAX_TEXT:
        raise too_large()
    text = "".join(parts)
    if len(text) > MAX_TEXT:
        raise too_large()
    return text
