"""CSS inlining once per message *shape*, not once per recipient.

css-inline parses each message's HTML, matches the stylesheet's selectors against the
tree and serialises it again: ~25 us for the demo email, a fifth of a message. The
recipients of a campaign mostly get the same markup around different values (names,
numbers, link tokens), and CSS selectors see elements and attributes, never the text
of a text node. So the inlined HTML of one recipient is the inlined HTML of another
with the values swapped, as long as the values are plain text.

How `ShapeInliner` uses that, and proves it before relying on it:

- While the HTML template renders, `OutputCapture` (Jinja's `finalize` hook) replaces
  each `{{ … }}` output that is plain text by a marker and keeps the value. Control
  flow still sees the real values. The rendered string with markers is the message's
  *shape*; the real HTML is the shape with the escaped values put back.
- Outputs that could change the CSS result stay in the shape as they are: markup
  (a `Markup` value containing a tag), blank values (`:empty`, white-space handling),
  values with control characters, bare `&` or numeric character references.
- The first message of a shape is inlined as itself, and its shape (with numbered
  markers) is inlined once too. Each marker must sit in a text node or in the
  double-quoted value of `href`, `src`, `alt` or `title`, the shape must have none of
  the elements whose content is not ordinary text (`pre`, `textarea`, `script`, SVG …)
  and, when a marker is in an attribute, no attribute selector in its stylesheet.
  The inlined shape becomes a `str.format` template, kept only if filling it with this
  message's values gives exactly what css-inline gave for the real message.
- Later messages of a cached shape are filled in without parsing: each value escaped
  as css-inline's serialiser writes text (`&`, `<`, `>`, no-break space) or attribute
  values (`&`, `"`, no-break space).
- When shapes keep changing (a template writing per-recipient values into `class`,
  say), it gives up for the run and every message is inlined the normal way.

Tests compare it with plain css-inline on varied recipients and templates.
"""

from __future__ import annotations

import html as html_entities
import re
from bisect import bisect_right
from typing import Any

from markupsafe import escape

MARK = "\ue000"  # a private-use character: html5ever and css-inline pass it through
_OPEN, _CLOSE = "\ue001", "\ue002"  # numbered markers: _OPEN 12 _CLOSE

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ue000-\ue002]")
# A "&" that is not a named reference or the numeric quote references markupsafe writes.
_SUBTLE_AMPERSAND = re.compile(r"&(?![A-Za-z][A-Za-z0-9]*;|#(?:34|39|x22|x27|X22|X27);)")
_BLANK = " \t\n\f\r"
# Elements whose content html5ever does not parse as ordinary text or HTML.
_SPECIAL = re.compile(
    r"<(?:pre|textarea|listing|xmp|plaintext|iframe|noembed|noframes|noscript|template"
    r"|script|svg|math|frameset|select|base)\b|<!\[CDATA\[",
    re.IGNORECASE,
)
# Tokens that are not text: style elements, comments, declarations, tags (quoted
# attribute values may hold ">").
_TOKENS = re.compile(
    r"<style\b[^>]*>.*?</style\s*>|<!--.*?-->|<[!?][^>]*>"
    r"|</?[A-Za-z][^>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^>\"']*)*>",
    re.DOTALL | re.IGNORECASE,
)
_STYLES = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.DOTALL | re.IGNORECASE)
_TAG_NAME = re.compile(r"<([A-Za-z][^\s/>]*)")
_QUOTED_ATTRIBUTE = re.compile(r"\s([^\s\"'>/=]+)\s*=\s*\"([^\"]*)\"")
# Markup the value would complete: "<" + "b>", "&" + "amp;", "&#" + "65;".
_JOINS_MARKUP = re.compile(f"(?:<|&[#A-Za-z0-9]*){_OPEN}")
_NUMBERED = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_SAFE_ATTRIBUTES = frozenset({"href", "src", "alt", "title"})
_NO_MARKER_ELEMENTS = frozenset({"link", "meta", "style", "base", "input", "option"})

TEXT, ATTRIBUTE = "text", "attribute"
MAX_SHAPES = 64  # distinct shapes kept per run
GIVE_UP_AFTER = 32  # new shapes tolerated while they outnumber the messages reusing one


class OutputCapture:
    """Collects the plain-text outputs of one HTML render (see the module doc).

    `CampaignEnvironment` calls `output` from its `finalize` while `env.capture` is set;
    the return value is what Jinja escapes and writes: the marker, or the value itself.
    """

    __slots__ = ("raw", "spoiled", "values")

    def __init__(self) -> None:
        self.raw: list[str] = []  # the text as the reader sees it
        self.values: list[Any] = []  # the values themselves (`escaped` writes them)
        self.spoiled = False  # a value held the marker: this render has no usable shape

    def output(self, value: Any) -> Any:
        if value is None:
            return ""
        if hasattr(value, "__html__"):
            html = str(value.__html__())
            if "<" in html or _SUBTLE_AMPERSAND.search(html):
                return value
            raw = html_entities.unescape(html) if "&" in html else html
        else:
            raw = str(value)
        if not raw.strip(_BLANK) or (not raw.isprintable() and _CONTROL.search(raw)):
            if MARK in raw:
                self.spoiled = True
            return value
        self.raw.append(raw)
        self.values.append(value)
        return MARK

    def escaped(self) -> list[str]:
        """What autoescape writes for each value (needed only to inline a new shape)."""
        return [str(escape(value)) for value in self.values]


def _escape_text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\xa0" in text:
        text = text.replace("\xa0", "&nbsp;")
    return text


def _escape_attribute(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\xa0" in text:
        text = text.replace("\xa0", "&nbsp;")
    return text


class _Shape:
    __slots__ = ("attributes", "template")

    def __init__(self, template: str | None, attributes: list[int]) -> None:
        self.template = template  # a str.format template; None: inline normally
        self.attributes = attributes  # the values that sit in attribute values

    def fill(self, raw: list[str]) -> str:
        joined = MARK.join(raw)
        values = _escape_text(joined).split(MARK)
        if self.attributes:
            in_attributes = _escape_attribute(joined).split(MARK)
            for i in self.attributes:
                values[i] = in_attributes[i]
        return self.template.format(*values)  # type: ignore[union-attr]


def _interleave(pieces: list[str], values: list[str]) -> str:
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(value)
        out.append(piece)
    return "".join(out)


class ShapeInliner:
    """css-inline's `inline`, reusing the inlined shape of earlier messages (module doc)."""

    def __init__(self, inliner: Any, *, enabled: bool = True) -> None:
        self.inliner = inliner
        self._shapes: dict[str, _Shape] = {}
        self.reused = 0  # messages filled from a cached shape
        self.new_shapes = 0
        self.enabled = enabled  # False: render without capture, inline every message

    def inline(self, html: str) -> str:
        return self.inliner.inline(html)

    def inline_shape(self, shape: str, capture: OutputCapture) -> str | None:
        """The inlined HTML of the message whose render gave `shape` and `capture`.

        None when the shape cannot be read back (a value or the template's own text
        holds the marker character): the caller renders this message normally; when it
        is the template, this run stops using shapes.
        """
        if capture.spoiled:
            return None
        cached = self._shapes.get(shape)
        if cached is not None and cached.template is not None:
            self.reused += 1
            return cached.fill(capture.raw)
        pieces = shape.split(MARK)
        if len(pieces) != len(capture.raw) + 1:
            self.enabled = False
            self._shapes.clear()
            return None
        real = _interleave(pieces, capture.escaped())
        inlined = self.inliner.inline(real)
        if cached is None:
            self._new_shape(shape, pieces, capture, real, inlined)
        return inlined

    def _new_shape(
        self, shape: str, pieces: list[str], capture: OutputCapture, real: str, inlined: str
    ) -> None:
        self.new_shapes += 1
        if self.new_shapes > GIVE_UP_AFTER and self.new_shapes > self.reused:
            self.enabled = False  # shapes keep changing: reuse would cost more than it saves
            self._shapes.clear()
            return
        if len(self._shapes) >= MAX_SHAPES:
            return
        n = len(capture.raw)
        numbered = _interleave(pieces, [f"{_OPEN}{i}{_CLOSE}" for i in range(n)])
        kinds = _kinds(numbered, n)
        template = None
        attributes: list[int] = []
        if kinds is not None:
            attributes = [i for i, kind in enumerate(kinds) if kind == ATTRIBUTE]
            template = self._template(numbered, n)
        entry = _Shape(template, attributes)
        if template is not None and entry.fill(capture.raw) != inlined:
            entry.template = None  # not a plain substitution after all
        self._shapes[shape] = entry

    def _template(self, numbered: str, n: int) -> str | None:
        """The inlined shape as a format template whose field i is value i."""
        pieces = _NUMBERED.split(self.inliner.inline(numbered))
        seen = sorted(int(i) for i in pieces[1::2])
        if seen != list(range(n)):
            return None  # a value was dropped, duplicated or moved into CSS
        out = []
        for i, piece in enumerate(pieces):
            out.append(f"{{{piece}}}" if i % 2 else piece.replace("{", "{{").replace("}", "}}"))
        return "".join(out)


def _kinds(numbered: str, n: int) -> list[str] | None:
    """Where each numbered marker sits (text or a safe attribute), or None if anywhere else."""
    if _SPECIAL.search(numbered) or _JOINS_MARKUP.search(numbered):
        return None
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKENS.finditer(numbered)]
    starts = [t[0] for t in tokens]
    has_attribute_selectors = any("[" in css for css in _STYLES.findall(numbered))
    kinds: list[str] = []
    for match in _NUMBERED.finditer(numbered):
        position = match.start()
        i = bisect_right(starts, position) - 1
        if i < 0 or position >= tokens[i][1]:
            kinds.append(TEXT)
            continue
        start, _, token = tokens[i]
        name = _TAG_NAME.match(token)
        if name is None or name.group(1).lower() in _NO_MARKER_ELEMENTS or has_attribute_selectors:
            return None
        offset = position - start
        for attribute in _QUOTED_ATTRIBUTE.finditer(token):
            if attribute.start(2) <= offset < attribute.end(2):
                if attribute.group(1).lower() not in _SAFE_ATTRIBUTES:
                    return None
                kinds.append(ATTRIBUTE)
                break
        else:
            return None
    return kinds if len(kinds) == n else None
