"""Which questionnaire fields a record sees, with their labels, help and prefilled values.

A campaign selects fields of a questionnaire (default: all), overrides their label,
help or required flag, and each field may apply only to some record categories
(`only_for`). With `options.prefill` the current value of the record is suggested;
`periods` values follow `options.periods_mode` (none, same, or shifted by one year
with 29 February → 28 February).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from campaignctl.spec.models import (
    Audience,
    Column,
    ColumnType,
    FieldType,
    Options,
    PeriodsMode,
    Questionnaire,
    QuestionnaireUse,
)
from campaignctl.spec.models import QuestionField as FieldModel

_FIELD_TYPE_OF_COLUMN = {
    ColumnType.STRING: FieldType.TEXT,
    ColumnType.EMAIL: FieldType.EMAIL,
    ColumnType.PHONE: FieldType.PHONE,
    ColumnType.INT: FieldType.INT,
    ColumnType.NUMBER: FieldType.NUMBER,
    ColumnType.BOOL: FieldType.BOOL,
    ColumnType.DATE: FieldType.DATE,
    ColumnType.LIST: FieldType.LIST,
    ColumnType.PERIODS: FieldType.PERIODS,
}


def shift_one_year(day: date) -> date:
    """The same day one year later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def shifted(self) -> Period:
        return Period(shift_one_year(self.start), shift_one_year(self.end))


def periods_of(value: Any) -> list[Period]:
    """Periods from the store's form (a list of [start, end] ISO dates) or Period objects."""
    out: list[Period] = []
    for item in value or []:
        if isinstance(item, Period):
            out.append(item)
        else:
            start, end = item
            out.append(
                Period(
                    start if isinstance(start, date) else date.fromisoformat(start),
                    end if isinstance(end, date) else date.fromisoformat(end),
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field as the campaign asks it, before any record's value."""

    id: str
    label: str
    help: str | None
    required: bool
    type: FieldType
    choices: tuple[str, ...] | None
    only_for: frozenset[str] | None

    def applies_to(self, category: str | None) -> bool:
        return self.only_for is None or (category is not None and category in self.only_for)


@dataclass(frozen=True, slots=True)
class QuestionField:
    """A field as one record sees it (what templates and the form get)."""

    id: str
    label: str
    help: str | None
    required: bool
    type: str
    choices: tuple[str, ...] | None
    value: Any


class QuestionnairePlan:
    """The campaign's resolved fields; `fields_for` adds one record's values. Build once."""

    def __init__(
        self,
        questionnaire: Questionnaire | None,
        use: QuestionnaireUse | None,
        audience: Audience | None,
        options: Options,
        columns: Mapping[str, Column] | None = None,
    ) -> None:
        """`columns`: every attribute of the audience's records (its CSV header's included);
        the declared columns when not given."""
        self.title = questionnaire.title if questionnaire else None
        self.prefill = options.prefill
        self.periods_mode = options.periods_mode
        self.specs: list[FieldSpec] = []
        self._applicable: dict[str | None, list[FieldSpec]] = {}
        self._resolved: dict[tuple[Any, ...], list[QuestionField]] = {}
        if questionnaire is None or use is None:
            return
        if columns is None:
            columns = audience.columns if audience else {}
        if questionnaire.fields is not None:
            fields = list(questionnaire.fields)
        else:
            key = audience.key if audience else None
            fields = [FieldModel(id=name) for name in columns if name != key]
        selected = set(use.fields) if use.fields is not None else None
        for field in fields:
            if selected is not None and field.id not in selected:
                continue
            column = columns.get(field.id)
            override = use.overrides.get(field.id)
            label = (override and override.label) or field.label or (column and column.label)
            help_ = (override and override.help) or field.help
            required = field.required
            if override is not None and override.required is not None:
                required = override.required
            ftype = field.type or (_FIELD_TYPE_OF_COLUMN[column.type] if column else FieldType.TEXT)
            self.specs.append(
                FieldSpec(
                    field.id,
                    label or field.id.replace("_", " ").capitalize(),
                    help_,
                    required,
                    ftype,
                    tuple(field.choices) if field.choices else None,
                    frozenset(field.only_for) if field.only_for is not None else None,
                )
            )

    def _value(self, spec: FieldSpec, attributes: Mapping[str, Any]) -> Any:
        if not self.prefill:
            return None
        value = attributes.get(spec.id)
        if spec.type == FieldType.PERIODS:
            if self.periods_mode == PeriodsMode.NONE:
                return []
            periods = periods_of(value)
            if self.periods_mode == PeriodsMode.NEXT_YEAR:
                return [p.shifted() for p in periods]
            return periods
        return value

    def fields_for(
        self, category: str | None, attributes: Mapping[str, Any]
    ) -> list[QuestionField]:
        """The fields a record of `category` sees, with its values when prefilling.

        Records with the same category and the same values of the applicable fields
        see the same fields: they are resolved once (dates parsed, periods shifted) and
        cached. Lists are copied for each record, as a template could change them.
        """
        specs = self._applicable.get(category)
        if specs is None:
            specs = [s for s in self.specs if s.applies_to(category)]
            if len(self._applicable) < MAX_CACHED:
                self._applicable[category] = specs
        if not self.prefill:
            key: tuple[Any, ...] = (category,)
        else:
            try:
                key = (category, *(_frozen(s, attributes.get(s.id)) for s in specs))
            except _NotCacheable:
                return self._resolve(specs, attributes)
        cached = self._resolved.get(key)
        if cached is None:
            cached = self._resolve(specs, attributes)
            if len(self._resolved) >= MAX_CACHED:
                self._resolved.clear()
            self._resolved[key] = cached
        return [
            QuestionField(f.id, f.label, f.help, f.required, f.type, f.choices, list(f.value))
            if type(f.value) is list
            else f
            for f in cached
        ]

    def _resolve(
        self, specs: list[FieldSpec], attributes: Mapping[str, Any]
    ) -> list[QuestionField]:
        return [
            QuestionField(
                s.id,
                s.label,
                s.help,
                s.required,
                str(s.type),
                s.choices,
                self._value(s, attributes),
            )
            for s in specs
        ]


MAX_CACHED = 512  # resolved field lists kept per run (and categories): a few MB at most
# Values compared by type and value: 1, 1.0, True and "1" print differently.
_SCALARS = frozenset({str, int, float, bool, type(None), date, datetime, Period})


class _NotCacheable(Exception):
    pass


def _frozen(spec: FieldSpec, value: Any) -> Any:
    """A hashable stand-in for a prefill value, equal only for values that render alike."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is list or kind is tuple:
        if spec.type == FieldType.PERIODS:  # [[start, end], …]: parsed into Periods
            return kind, tuple(_frozen(spec, item) for item in value)
        if all(type(item) in _SCALARS for item in value):
            return kind, tuple((type(item), item) for item in value)
    raise _NotCacheable


class QuestionnaireView(Sequence[QuestionField]):
    """`questionnaire` in templates: iterable over the record's fields, falsy when none."""

    __slots__ = ("_by_key", "fields", "title")

    def __init__(
        self, title: str | None, fields: list[QuestionField], by_key: dict[str, list[QuestionField]]
    ) -> None:
        self.title = title
        self.fields = fields
        self._by_key = by_key

    def __iter__(self) -> Iterator[QuestionField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __getitem__(self, index: Any) -> Any:
        return self.fields[index]

    def fields_for(self, record: Any) -> list[QuestionField]:
        """The fields of another record of the recipient (when grouped by address)."""
        return self._by_key.get(getattr(record, "key", record), [])
