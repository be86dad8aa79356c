"""The questionnaire form's fields as inputs, and the submitted form read back as answers.

Each field becomes the HTML inputs of its type (periods: a start and an end date per
row, with two empty rows to add some). A submitted form is read field by field into
the values the record stores (the audience's converters: emails and phones
normalised, dates ISO, periods `[[start, end], …]`), with one message per field that
cannot be read, shown next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from campaignctl.audience.values import (
    ValueProblem,
    normalize_email,
    parse_date,
    parse_int,
    parse_number,
    phone_normalizer,
)
from campaignctl.render.questionnaire import Period, QuestionField, periods_of

EXTRA_PERIOD_ROWS = 2
MAX_PERIOD_ROWS = 24
MAX_TEXT = 5_000

INPUT_TYPES = {
    "text": "text",
    "email": "email",
    "phone": "tel",
    "url": "url",
    "int": "number",
    "number": "text",
    "date": "date",
    "list": "text",
}


@dataclass
class FieldView:
    """A field as the form shows it: its inputs' values and its error."""

    id: str
    label: str
    help: str | None
    required: bool
    type: str
    choices: tuple[str, ...]
    value: Any  # text for single inputs, list for multichoice, rows for periods
    error: str | None = None
    input_type: str = "text"
    rows: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def views(fields: list[QuestionField], values: Mapping[str, Any] | None = None) -> list[FieldView]:
    """The fields as the form shows them: with `values` (answers already given) when set,
    else each field's own value (the record's, when prefilled)."""
    out = []
    for f in fields:
        value = values[f.id] if values is not None and f.id in values else f.value
        view = FieldView(
            f.id,
            f.label,
            f.help,
            f.required,
            f.type,
            tuple(f.choices or ()),
            None,
            input_type=INPUT_TYPES.get(f.type, "text"),
        )
        if f.type == "periods":
            periods = periods_of(value) if value else []
            view.rows = [(p.start.isoformat(), p.end.isoformat()) for p in periods]
            view.rows += [("", "")] * EXTRA_PERIOD_ROWS
        elif f.type == "multichoice":
            view.value = [str(v) for v in value] if isinstance(value, (list, tuple)) else []
        elif f.type == "bool":
            view.value = (
                "" if value is None or value == "" else ("oui" if _truthy(value) else "non")
            )
        else:
            view.value = _text(value)
        out.append(view)
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("oui", "yes", "true", "1", "o", "y")
    return bool(value)


def read(
    fields: list[QuestionField], form: Any, region: str
) -> tuple[dict[str, Any], list[FieldView]]:
    """(answers, the fields as submitted with their errors); answers only when no error."""
    answers: dict[str, Any] = {}
    shown = views(fields, {})
    for f, view in zip(fields, shown, strict=True):
        try:
            value = _read_field(f, view, form, region)
        except ValueProblem as problem:
            view.error = problem.message
            continue
        if f.required and value in (None, "", []):
            view.error = "Ce champ est obligatoire."
            continue
        answers[f.id] = value
    return answers, shown


def _read_field(f: QuestionField, view: FieldView, form: Any, region: str) -> Any:
    if f.type == "periods":
        return _read_periods(f, view, form)
    if f.type == "multichoice":
        chosen = [v for v in form.getlist(f.id) if isinstance(v, str)]
        view.value = chosen
        unknown = [v for v in chosen if v not in (f.choices or ())]
        if unknown:
            raise ValueProblem("invalid_choice", "Choisissez parmi les propositions.")
        return [c for c in (f.choices or ()) if c in chosen]
    raw = form.get(f.id)
    text = raw.strip() if isinstance(raw, str) else ""
    view.value = text
    if len(text) > MAX_TEXT:
        raise ValueProblem("too_long", f"Au plus {MAX_TEXT} caractères.")
    if not text:
        return None
    kind = f.type
    if kind == "bool":
        if text not in ("oui", "non"):
            raise ValueProblem("invalid_bool", "Répondez oui ou non.")
        return text == "oui"
    if kind == "choice":
        if text not in (f.choices or ()):
            raise ValueProblem("invalid_choice", "Choisissez parmi les propositions.")
        return text
    if kind == "email":
        try:
            return normalize_email(text)
        except ValueProblem:
            raise ValueProblem(
                "invalid_email", "Cette adresse email n'est pas valide (exemple : nom@domaine.fr)."
            ) from None
    if kind == "phone":
        try:
            return phone_normalizer(region)(text)
        except ValueProblem:
            raise ValueProblem(
                "invalid_phone", "Ce numéro n'est pas valide (exemple : 04 65 71 12 34)."
            ) from None
    if kind == "url":
        if not text.lower().startswith(("https://", "http://")) or " " in text:
            raise ValueProblem(
                "invalid_url", "Indiquez l'adresse complète, commençant par https://"
            )
        return text
    if kind == "int":
        try:
            return parse_int(text)
        except ValueProblem:
            raise ValueProblem("invalid_int", "Indiquez un nombre entier.") from None
    if kind == "number":
        try:
            return parse_number(text)
        except ValueProblem:
            raise ValueProblem("invalid_number", "Indiquez un nombre.") from None
    if kind == "date":
        try:
            return parse_date(text).isoformat()
        except ValueProblem:
            raise ValueProblem(
                "invalid_date", "Indiquez une date (exemple : 2027-03-01)."
            ) from None
    if kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _read_periods(f: QuestionField, view: FieldView, form: Any) -> list[list[str]]:
    rows = []
    for i in range(MAX_PERIOD_ROWS):
        start = form.get(f"{f.id}-start-{i}")
        end = form.get(f"{f.id}-end-{i}")
        if start is None and end is None:
            break
        rows.append(((start or "").strip(), (end or "").strip()))
    view.rows = rows + [("", "")] * EXTRA_PERIOD_ROWS
    periods: list[Period] = []
    for start, end in rows:
        if not start and not end:
            continue
        if not start or not end:
            raise ValueProblem("invalid_periods", "Indiquez le début et la fin de chaque période.")
        try:
            period = Period(parse_date(start), parse_date(end))
        except ValueProblem:
            raise ValueProblem(
                "invalid_periods", "Indiquez des dates valides (exemple : 2027-06-15)."
            ) from None
        if period.end < period.start:
            raise ValueProblem(
                "invalid_periods", f"La période du {start} finit avant de commencer."
            )
        periods.append(period)
    view.rows = [(p.start.isoformat(), p.end.isoformat()) for p in periods]
    view.rows += [("", "")] * EXTRA_PERIOD_ROWS
    return [[p.start.isoformat(), p.end.isoformat()] for p in periods]
