"""YAML loading that remembers where every value came from.

PyYAML's composer gives a node tree with start marks; we build plain Python
values from it and, beside them, a `SourceMap` from each value's path (the
tuple of keys and list indices that pydantic uses as an error `loc`) to its
line and column. Duplicate keys in one mapping are reported, not silently
overwritten; a key overriding one brought in by a merge key (`<<: *base`) is not a
duplicate, and wins, as YAML says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from campaignctl.errors import Diagnostic, Severity

try:  # the C composer is several times faster when libyaml is present
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathKey = tuple[str | int, ...]
MAX_NODES = 200_000
MERGE_TAG = "tag:yaml.org,2002:merge"
# Definitions are a few levels deep; 64 leaves room for any real file while keeping the
# builder (and every recursive walk after it: pydantic, segments, hashing) far from
# Python's recursion limit.
MAX_DEPTH = 64


_ALIASES_HINT = "write the values out instead of using anchors and aliases"


class _Refused(Exception):
    """A node the builder will not build: where it is, what is wrong, how to fix it."""

    what = "an alias refers to a collection that contains it"
    hint = _ALIASES_HINT

    def __init__(self, node: yaml.Node, what: str | None = None, hint: str | None = None) -> None:
        self.node = node
        self.what = what or self.what
        self.hint = hint or self.hint


class _TooLarge(_Refused):
    what = "the document expands to too many values (nested aliases)"


class _TooDeep(_Refused):
    what = f"values are nested more than {MAX_DEPTH} levels deep"
    hint = "flatten the structure: no definition needs this much nesting"


class _BadScalar(_Refused):
    hint = "quote the value to keep it as text"


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of one YAML document stands."""

    values: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Mark:
        """The mark of `path`, or of its deepest ancestor that exists in the file."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.values:
                return self.values[prefix]
        return Mark(1, 1)

    def known_prefix(self, path: PathKey) -> PathKey:
        """The longest prefix of `path` whose every step is a real key or index in the file."""
        best: PathKey = ()
        current: PathKey = ()
        for part in path:
            candidate = (*current, part)
            if candidate in self.values:
                current = candidate
                best = current
        return best


@dataclass
class YamlDocument:
    """One document of a YAML file: its data, its source map, its position in the file."""

    file: str
    index: int
    data: Any
    source_map: SourceMap
    start: Mark


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used
        self.diagnostics: list[Diagnostic] = []
        self.open_nodes: set[int] = set()  # guards against recursive anchors
        self.budget = MAX_NODES  # guards against alias bombs ("billion laughs")

    def build(self, node: yaml.Node, path: PathKey, smap: SourceMap) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(node)
        if len(path) > MAX_DEPTH:
            raise _TooDeep(node)
        smap.values[path] = _mark(node)
        if id(node) in self.open_nodes:
            raise _Refused(node)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self.open_nodes.add(id(node))
            try:
                return self._build_collection(node, path, smap)
            finally:
                self.open_nodes.discard(id(node))
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2027-02-30, year 0
            raise _BadScalar(node, f"invalid YAML value: {exc}") from None
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL refuses it in any text
            raise _BadScalar(
                node, "a text value holds a NUL character (\\x00)", "remove the \\x00 escape"
            )
        return value

    def _build_collection(self, node: yaml.Node, path: PathKey, smap: SourceMap) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), smap) for i, child in enumerate(node.value)]
        # YAML merge keys: the pairs `<<:` brings in come first, so that a key of the
        # mapping's own overrides them; only a key written twice in the mapping is an error.
        pairs = [(k, v, False) for k, v in self._merged_pairs(node, {id(node)})]
        pairs += [(k, v, True) for k, v in node.value if k.tag != MERGE_TAG]
        chosen: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        own: dict[Any, yaml.Node] = {}
        for key_node, value_node, is_own in pairs:
            key = self._scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                self._error(
                    key_node,
                    "invalid-key",
                    "a mapping key must be a plain value",
                    hint="write the key as plain text, e.g. `name:`",
                )
                continue
            # YAML 1.1 reads `on:`/`yes:` as booleans; keys are names, keep their text.
            if isinstance(key, bool) and isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            if is_own:
                if key in own:
                    self._error(
                        key_node,
                        "duplicate-key",
                        f"key {key!r} appears twice in the same mapping "
                        f"(first at line {_mark(own[key]).line})",
                        hint="remove one of them; YAML would silently keep only the last",
                    )
                    continue
                own[key] = key_node
            chosen[key] = (key_node, value_node)
        result: dict[Any, Any] = {}
        for key, (key_node, value_node) in chosen.items():
            key_path = (*path, key)
            smap.keys[key_path] = _mark(key_node)
            result[key] = self.build(value_node, key_path, smap)
        return result

    def _merged_pairs(self, node: yaml.MappingNode, open_: set[int]) -> list[tuple[Any, Any]]:
        """The (key, value) nodes that `<<:` merges into `node`, lowest precedence first.

        In `<<: [*a, *b]` the keys of `a` win over those of `b`; a merged mapping's own
        keys win over what it merges itself. The nodes are read, never modified (PyYAML's
        `flatten_mapping` rewrites them, so an anchor used twice would look different).
        """
        out: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag != MERGE_TAG:
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while merging a mapping",
                        node.start_mark,
                        "`<<:` takes a mapping or a list of mappings (an alias such as *base)",
                        source.start_mark,
                    )
                if id(source) in open_:
                    raise _Refused(source)
                self.budget -= len(source.value)
                if self.budget < 0:
                    raise _TooLarge(source)
                out += self._merged_pairs(source, open_ | {id(source)})
                out += [(k, v) for k, v in source.value if k.tag != MERGE_TAG]
        return out

    def _error(self, node: yaml.Node, code: str, message: str, hint: str | None = None) -> None:
        mark = _mark(node)
        self.diagnostics.append(
            Diagnostic(self.file, mark.line, mark.column, Severity.ERROR, code, message, hint)
        )


def yaml_error_diagnostic(file: str, exc: yaml.YAMLError) -> Diagnostic:
    """Turn a PyYAML exception into a located diagnostic."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return Diagnostic(
        file,
        line,
        column,
        Severity.ERROR,
        "yaml-syntax",
        message,
        "check the indentation and quoting around this place; "
        "quote values that contain ': ' or start with a special character",
    )


def load_yaml_text(text: str, file: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Parse every document of a YAML text; never raises for bad YAML."""
    builder = _Builder(file)
    documents: list[YamlDocument] = []
    try:
        nodes = list(_compose_all(text))
    except yaml.YAMLError as exc:
        return [], [yaml_error_diagnostic(file, exc)]
    except ValueError as exc:  # e.g. a control character the reader refuses
        return [], [
            Diagnostic(
                file,
                1,
                1,
                Severity.ERROR,
                "yaml-syntax",
                f"invalid YAML: {exc}",
                "remove the control character, or save the file again as plain UTF-8 text",
            )
        ]
    for index, node in enumerate(nodes):
        if node is None:
            continue
        smap = SourceMap()
        try:
            data = builder.build(node, (), smap)
        except yaml.YAMLError as exc:
            builder.diagnostics.append(yaml_error_diagnostic(file, exc))
            continue
        except _Refused as exc:
            mark = _mark(exc.node)
            builder.diagnostics.append(
                Diagnostic(
                    file, mark.line, mark.column, Severity.ERROR, "yaml-syntax", exc.what, exc.hint
                )
            )
            continue
        documents.append(YamlDocument(file, index, data, smap, _mark(node)))
    return documents, builder.diagnostics


def _compose_all(text: str) -> Iterator[yaml.Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def load_yaml_file(path: Path, display: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Read and parse a YAML file; unreadable or non-UTF-8 files become diagnostics."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [
            Diagnostic(
                display,
                1,
                1,
                Severity.ERROR,
                "encoding",
                f"the file is not UTF-8 text (byte {exc.start}): {exc.reason}",
                "save the file as UTF-8",
            )
        ]
    except OSError as exc:
        return [], [
            Diagnostic(
                display,
                0,
                0,
                Severity.ERROR,
                "unreadable",
                f"cannot read: {exc.strerror}",
                "check that the file exists and that you may read it",
            )
        ]
    return load_yaml_text(text, display)
