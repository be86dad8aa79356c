"""Checks of each segment: the audience, the conditions against its columns, cycles."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator

from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.loaded import (
    BUILTIN_ATTRIBUTES,
    LoadedDocument,
)
from campaignctl.spec.loader import PathKey
from campaignctl.spec.models import (
    Audience,
    Column,
    ColumnType,
    Condition,
    Operators,
    Segment,
)
from campaignctl.spec.types import looks_like_relative_date, parse_relative_date


class SegmentChecks(CheckerBase):
    """Checks of each segment: the audience, the conditions against its columns, cycles."""

    def _check_segment(self, doc: LoadedDocument) -> None:
        segment = typing.cast(Segment, doc.model)
        audience = self.ws.audiences.get(segment.audience)
        if audience is None:
            self._unknown(doc, ("audience",), "audience", segment.audience, self.ws.audiences)
        self._check_condition(doc, ("where",), segment.where, audience, segment.audience)

    def _check_condition(
        self,
        doc: LoadedDocument,
        path: PathKey,
        cond: Condition,
        audience: Audience | None,
        audience_name: str | None,
        extra_attributes: tuple[str, ...] = (),
    ) -> None:
        for key, items in (("all", cond.all_), ("any", cond.any_)):
            for i, child in enumerate(items or []):
                self._check_condition(
                    doc, (*path, key, i), child, audience, audience_name, extra_attributes
                )
        if cond.not_ is not None:
            self._check_condition(
                doc, (*path, "not"), cond.not_, audience, audience_name, extra_attributes
            )
        if cond.segment is not None:
            other = self.ws.segments.get(cond.segment)
            if other is None:
                self._unknown(doc, (*path, "segment"), "segment", cond.segment, self.ws.segments)
            elif audience_name and other.audience != audience_name:
                self._report(
                    doc.file,
                    doc.mark(*path, "segment"),
                    "unknown-reference",
                    f"segment {cond.segment!r} selects audience {other.audience!r}, "
                    f"not {audience_name!r}",
                    "a segment can only refer to segments of the same audience",
                )
        for attribute, ops in cond.tests.items():
            self._check_test(doc, (*path, attribute), attribute, ops, audience, extra_attributes)

    def _check_test(
        self,
        doc: LoadedDocument,
        path: PathKey,
        attribute: str,
        ops: Operators,
        audience: Audience | None,
        extra_attributes: tuple[str, ...],
    ) -> None:
        column: Column | None = None
        columns = self.ws.record_columns(audience) if audience is not None else None
        if columns is not None:
            assert audience is not None
            known = [*columns, *BUILTIN_ATTRIBUTES, *extra_attributes]
            if attribute not in known:
                close = difflib.get_close_matches(attribute, known, n=1)
                self._report(
                    doc.file,
                    doc.source_map.locate(path, key=True),
                    "unknown-reference",
                    f"attribute {attribute!r} is not a column of audience {audience.name!r}",
                    f"did you mean {close[0]!r}?" if close else f"columns: {', '.join(known)}",
                )
                return
            column = columns.get(attribute)
        elif audience is not None:
            column = audience.columns.get(attribute)
        ctype = column.type if column else None
        for op, value in ops.items():
            value_path = (*path, op)
            if op in ("contains",) and ctype not in (None, ColumnType.LIST, ColumnType.STRING):
                self._report(
                    doc.file,
                    doc.mark(*value_path),
                    "invalid-value",
                    f"`contains` applies to list and text attributes; {attribute!r} is a {ctype}",
                    "use eq or in",
                )
            if op == "matches" and ctype not in (
                None,
                ColumnType.STRING,
                ColumnType.EMAIL,
                ColumnType.PHONE,
            ):
                self._report(
                    doc.file,
                    doc.mark(*value_path),
                    "invalid-value",
                    f"`matches` applies to text attributes; {attribute!r} is a {ctype}",
                    "compare it with eq, ne, in, gt, lt or between",
                )
            values = value if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                item_path = (*value_path, i) if isinstance(value, list) else value_path
                if ctype == ColumnType.DATE or looks_like_relative_date(item):
                    if op in ("exists", "matches") or item is None:
                        continue
                    try:
                        parse_relative_date(item)
                    except ValueError as exc:
                        self._report(
                            doc.file,
                            doc.mark(*item_path),
                            "invalid-value",
                            str(exc),
                            "relative dates resolve in the workspace time zone when evaluated",
                        )

    def _check_segment_cycles(self) -> None:
        graph = {name: set(_segment_refs(seg.where)) for name, seg in self.ws.segments.items()}
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, trail: list[str]) -> None:
            state[name] = 1
            for ref in sorted(graph.get(name, ())):
                if ref not in graph:
                    continue
                if state.get(ref) == 1:
                    cycle = [*trail[trail.index(ref) :], ref] if ref in trail else [name, ref]
                    doc = self.ws.documents["Segment"][name]
                    self._report(
                        doc.file,
                        doc.mark("where"),
                        "reference-cycle",
                        f"segments refer to each other in a cycle: {' → '.join(cycle)}",
                        "remove one `segment:` reference to break the cycle",
                    )
                elif state.get(ref) is None:
                    visit(ref, [*trail, ref])
            state[name] = 2

        for name in sorted(graph):
            if name not in state:
                visit(name, [name])


def _segment_refs(cond: Condition) -> Iterator[str]:
    if cond.segment:
        yield cond.segment
    for child in [*(cond.all_ or []), *(cond.any_ or [])]:
        yield from _segment_refs(child)
    if cond.not_ is not None:
        yield from _segment_refs(cond.not_)
