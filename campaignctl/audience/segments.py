"""Segments compiled to ONE SQL query over the store's records (DESIGN.md §1 Segment).

The compiler turns a Segment's `where:` (all/any/not, attribute tests, `segment:`
references) into a SQLAlchemy boolean expression, typed by the audience's column
types: dates compare as ISO dates (relative dates resolved for `today`, which the
caller gives, normally `workspace_today()`), numbers as numbers, `contains` on a
list column tests membership, `matches` is a regular expression (SQLite: the
REGEXP function the Store registers; PostgreSQL: `~`). Records are never loaded
into Python to be filtered.

A missing attribute makes a test false, except `ne`/`not_in` (a record without a
category is "not a hotel") and `exists: false`; `not:` is true where its condition
is false or unknown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from campaignctl import clock
from campaignctl.audience.records import record_json
from campaignctl.audience.segment_cache import SegmentView
from campaignctl.enums import RecordStatus
from campaignctl.errors import UsageError
from campaignctl.spec.models import Audience, Column, ColumnType, Condition, Segment
from campaignctl.spec.types import parse_relative_date
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.store.tables import RECORD

NUMERIC = (ColumnType.INT, ColumnType.NUMBER)


def workspace_today(workspace: Workspace, now: datetime | None = None) -> date:
    """Today in the workspace time zone: what `today` means in a segment."""
    tz = ZoneInfo(workspace.config.timezone if workspace.config else "UTC")
    return (now or clock.now()).astimezone(tz).date()


def attribute_sql(
    dialect: str, name: str, column_type: ColumnType | None, table: str = "record."
) -> ColumnElement[Any]:
    """The SQL expression of one record attribute: the same one the expression indexes use."""
    if dialect == "postgresql":
        text = f"({table}attributes ->> '{name}')"
        if column_type in NUMERIC:
            text = f"CAST({text} AS DOUBLE PRECISION)"
        return sa.literal_column(text)
    return sa.literal_column(f"json_extract({table}attributes, '$.{name}')")


def index_statements(
    dialect: str, columns: Mapping[str, Column], attributes: set[str]
) -> list[str]:
    """CREATE INDEX statements for the attributes segments test (scalar columns only);
    `columns`: every attribute of the audience's records."""
    statements = []
    for name in sorted(attributes):
        column = columns.get(name)
        if column is None or column.type in (ColumnType.LIST, ColumnType.PERIODS):
            continue
        if name in ("category", "key") or column.type in (ColumnType.EMAIL, ColumnType.PHONE):
            continue
        expression = attribute_sql(dialect, name, column.type, table="")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS ix_record_attr_{name} ON record "
            f"(audience, {'(' + str(expression) + ')' if dialect == 'postgresql' else expression})"
        )
    return statements


def tested_attributes(condition: Condition, segments: dict[str, Segment]) -> set[str]:
    """Every attribute a condition tests, through its segment references."""
    names = set(condition.tests)
    for child in [*(condition.all_ or []), *(condition.any_ or []), condition.not_]:
        if child is not None:
            names |= tested_attributes(child, segments)
    if condition.segment and condition.segment in segments:
        names |= tested_attributes(segments[condition.segment].where, segments)
    return names


@dataclass(frozen=True)
class _Compiler:
    workspace: Workspace
    audience: Audience
    dialect: str
    today: date

    def condition(self, condition: Condition, stack: tuple[str, ...] = ()) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if condition.all_ is not None:
            parts.append(sa.and_(sa.true(), *(self.condition(c, stack) for c in condition.all_)))
        if condition.any_ is not None:
            parts.append(sa.or_(sa.false(), *(self.condition(c, stack) for c in condition.any_)))
        if condition.not_ is not None:
            inner = self.condition(condition.not_, stack)
            parts.append(sa.not_(sa.func.coalesce(inner, sa.false())))
        if condition.segment is not None:
            parts.append(self.reference(condition.segment, stack))
        for name, operators in condition.tests.items():
            for operator, value in operators.items():
                parts.append(self.test(name, operator, value))
        return sa.and_(*parts) if len(parts) != 1 else parts[0]

    def reference(self, name: str, stack: tuple[str, ...]) -> ColumnElement[bool]:
        segment = self.workspace.segments.get(name)
        if segment is None or name in stack:  # validation reports both; never loop here
            raise UsageError(f"segment {name!r} cannot be evaluated (unknown or cyclic)")
        return self.condition(segment.where, (*stack, name))

    def expression(self, name: str) -> tuple[ColumnElement[Any], ColumnType | None]:
        column = self.audience.columns.get(name)
        column_type = column.type if column else None
        if name == "key":
            return RECORD.c.key, ColumnType.STRING
        if name == "category":
            return RECORD.c.category, ColumnType.STRING
        if column_type == ColumnType.EMAIL and name == self.audience.first_column(column_type):
            return RECORD.c.email, column_type
        if column_type == ColumnType.PHONE and name == self.audience.first_column(column_type):
            return RECORD.c.phone, column_type
        return attribute_sql(self.dialect, name, column_type), column_type

    def value(self, column_type: ColumnType | None, value: Any) -> Any:
        if column_type == ColumnType.DATE:
            return parse_relative_date(value).resolve(self.today).isoformat()
        if column_type in NUMERIC:
            return float(value) if not isinstance(value, bool) else int(value)
        if column_type == ColumnType.BOOL:
            truth = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
            return truth if self.dialect == "sqlite" else ("true" if truth else "false")
        if isinstance(value, date | datetime):
            return value.isoformat()
        return value if isinstance(value, str) else str(value) if value is not None else None

    def member(self, name: str, value: Any) -> ColumnElement[bool]:
        """A list attribute holds `value`."""
        if self.dialect == "postgresql":
            return sa.literal_column(f"(record.attributes -> '{name}')").op("@>")(
                sa.cast(sa.literal(json.dumps([value])), sa.dialects.postgresql.JSONB)
            )
        each = sa.func.json_each(RECORD.c.attributes, sa.literal_column(f"'$.{name}'"))
        each = each.table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == value))

    def test(self, name: str, operator: str, value: Any) -> ColumnElement[bool]:
        expr, column_type = self.expression(name)
        if operator == "exists":
            return expr.is_not(None) if value else expr.is_(None)
        if operator == "matches":
            return sa.cast(expr, sa.String).regexp_match(value)
        if column_type == ColumnType.LIST:
            if operator in ("eq", "contains"):
                return self.member(name, self.value(ColumnType.STRING, value))
            if operator == "in":
                return sa.or_(sa.false(), *(self.member(name, str(v)) for v in value))
            if operator == "ne":
                return sa.not_(self.member(name, str(value)))
            if operator == "not_in":
                return sa.not_(sa.or_(sa.false(), *(self.member(name, str(v)) for v in value)))
        if operator == "contains":
            return expr.contains(str(value), autoescape=True)
        if operator in ("in", "not_in"):
            values = [self.value(column_type, v) for v in value]
            if operator == "in":
                return expr.in_(values)
            return sa.or_(expr.is_(None), expr.not_in(values))
        if operator == "between":
            low, high = (self.value(column_type, v) for v in value)
            return expr.between(low, high)
        bound = self.value(column_type, value)
        if operator == "eq":
            return expr == bound if bound is not None else expr.is_(None)
        if operator == "ne":
            return sa.or_(expr.is_(None), expr != bound)
        comparisons = {"gt": expr > bound, "gte": expr >= bound, "lt": expr < bound}
        return comparisons.get(operator, expr <= bound)


def _segment(workspace: Workspace, name: str) -> tuple[Segment, Audience]:
    segment = workspace.segments.get(name)
    if segment is None:
        import difflib

        close = difflib.get_close_matches(name, list(workspace.segments), n=1)
        raise UsageError(
            f"segment {name!r} does not exist",
            hint=f"did you mean {close[0]!r}?"
            if close
            else f"segments: {', '.join(sorted(workspace.segments)) or 'none defined'}",
        )
    return segment, workspace.audiences[segment.audience]


def segment_condition(
    workspace: Workspace, name: str, today: date, dialect: str
) -> ColumnElement[bool]:
    """The boolean SQL expression selecting the segment's active records."""
    segment, audience = _segment(workspace, name)
    where = _Compiler(workspace, audience, dialect, today).condition(segment.where, (name,))
    return sa.and_(
        RECORD.c.audience == audience.name,
        RECORD.c.status == RecordStatus.ACTIVE.value,
        where,
    )


def segment_query(store: Store, workspace: Workspace, name: str, today: date) -> sa.Select[Any]:
    """`SELECT record.id` of the segment's records: compose it into plans, locks, exports."""
    return sa.select(RECORD.c.id).where(segment_condition(workspace, name, today, store.dialect))


def count_segment(store: Store, workspace: Workspace, name: str, today: date) -> int:
    """How many records the segment selects, counted in the store."""
    condition = segment_condition(workspace, name, today, store.dialect)
    with store.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(RECORD).where(condition)
            ).scalar_one()
        )


def show_segment(
    store: Store, workspace: Workspace, name: str, today: date, *, count: bool, sample: int
) -> SegmentView:
    """Count and/or sample a segment, timing the queries."""
    segment, _audience = _segment(workspace, name)
    store.ensure_schema()
    started = time.perf_counter()
    condition = segment_condition(workspace, name, today, store.dialect)
    total = count_segment(store, workspace, name, today) if count else None
    rows: list[dict[str, Any]] = []
    if sample:
        with store.read() as conn:
            query = sa.select(RECORD).where(condition).order_by(RECORD.c.key).limit(sample)
            rows = [record_json(r._mapping) for r in conn.execute(query)]
    elapsed = time.perf_counter() - started
    statement = sa.select(sa.func.count()).select_from(RECORD).where(condition)
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    return SegmentView(name, segment.audience, total, rows, today, elapsed, sql)


def list_records(
    store: Store,
    workspace: Workspace,
    *,
    segment: str | None,
    audience: str | None,
    limit: int,
    today: date,
) -> list[dict[str, Any]]:
    """Active records of a segment or an audience, by key, at most `limit`."""
    query = sa.select(RECORD).where(RECORD.c.status == "active")
    if segment:
        query = sa.select(RECORD).where(segment_condition(workspace, segment, today, store.dialect))
    elif audience:
        query = query.where(RECORD.c.audience == audience)
    with store.read() as conn:
        rows = conn.execute(query.order_by(RECORD.c.audience, RECORD.c.key).limit(limit))
        return [record_json(r._mapping) for r in rows]
