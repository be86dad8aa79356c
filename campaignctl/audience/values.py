"""Typing and normalising the values of a contact source, one column type each.

Every converter takes the raw CSV text and returns the value stored in the
record's attributes (JSON-ready: ISO dates, E.164 phones, lists), or raises
`ValueProblem` with a reason code that the rejects file and the import summary
count. Email and phone normalisation are cached per distinct value: real files
repeat the same addresses and numbers a lot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from campaignctl.spec.models import Column, ColumnType


class ValueProblem(ValueError):
    """A value that cannot be used as its column's type."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # stable code: invalid_email, invalid_phone, invalid_date, …
        self.message = message


# ----------------------------------------------------------------------------- dates

_DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def parse_date(text: str, fmt: str | None = None) -> date:
    """ISO dates, and the day-first forms French files use (31/12/2027, 31.12.2027)."""
    text = text.strip()
    if fmt:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            raise ValueProblem(
                "invalid_date", f"{text!r} does not match the format {fmt!r}"
            ) from None
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 and text[4] == "-" else _dmy(text)
    except ValueError:
        raise ValueProblem(
            "invalid_date", f"{text!r} is not a date (write 2027-03-01 or 01/03/2027)"
        ) from None


def _dmy(text: str) -> date:
    match = _DMY.match(text)
    if not match:
        raise ValueError(text)
    day, month, year = (int(g) for g in match.groups())
    return date(year, month, day)


def parse_periods(text: str, separator: str = ";") -> list[list[str]]:
    """`2026-04-01..2026-10-31;2026-12-20..2027-01-05` → [[start, end], …] as ISO strings."""
    periods = []
    for part in (p.strip() for p in text.split(separator)):
        if not part:
            continue
        if ".." not in part:
            raise ValueProblem(
                "invalid_periods",
                f"{part!r} is not a period: write START..END (2026-04-01..2026-10-31)",
            )
        start_text, end_text = part.split("..", 1)
        start, end = parse_date(start_text), parse_date(end_text)
        if end < start:
            raise ValueProblem("invalid_periods", f"period {part!r} ends before it starts")
        periods.append([start.isoformat(), end.isoformat()])
    return periods


# ----------------------------------------------------------------------------- contacts


@lru_cache(maxsize=200_000)
def normalize_email(text: str) -> str:
    """A syntactically valid address with its domain lower-cased (no DNS look-up)."""
    from email_validator import EmailNotValidError, validate_email

    candidate = text.strip()
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueProblem(
            "invalid_email", f"{candidate!r} is not a valid email address: {exc}"
        ) from None
    return f"{result.local_part}@{result.domain.lower()}"


@lru_cache(maxsize=200_000)
def normalize_phone(text: str, region: str) -> str:
    """A valid phone number in E.164 (`+33450123456`); national numbers read in `region`."""
    import phonenumbers

    candidate = text.strip()
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueProblem("invalid_phone", f"{candidate!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueProblem(
            "invalid_phone", f"{candidate!r} is not a valid phone number for region {region}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ----------------------------------------------------------------------------- scalars

_TRUE = {"1", "true", "yes", "y", "oui", "o", "vrai", "x"}
_FALSE = {"0", "false", "no", "n", "non", "faux", ""}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueProblem("invalid_bool", f"{text!r} is not a yes/no value")


def parse_int(text: str) -> int:
    try:
        return int(text.strip().replace(" ", "").replace("\u202f", ""))
    except ValueError:
        raise ValueProblem("invalid_number", f"{text!r} is not a whole number") from None


def parse_number(text: str) -> float:
    cleaned = text.strip().replace(" ", "").replace("\u202f", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # French decimal comma
    try:
        return float(cleaned)
    except ValueError:
        raise ValueProblem("invalid_number", f"{text!r} is not a number") from None


def converter(column: Column, default_region: str) -> Callable[[str], Any]:
    """The function that turns a non-empty raw value of `column` into its stored value."""
    kind = column.type
    if kind == ColumnType.EMAIL:
        return normalize_email
    if kind == ColumnType.PHONE:
        region = column.region or default_region
        return lambda text: normalize_phone(text, region)
    if kind == ColumnType.DATE:
        fmt = column.format
        return lambda text: parse_date(text, fmt).isoformat()
    if kind == ColumnType.LIST:
        separator = column.separator
        return lambda text: [item.strip() for item in text.split(separator) if item.strip()]
    if kind == ColumnType.PERIODS:
        separator = column.separator
        return lambda text: parse_periods(text, separator)
    if kind == ColumnType.INT:
        return parse_int
    if kind == ColumnType.NUMBER:
        return parse_number
    if kind == ColumnType.BOOL:
        return parse_bool
    return str.strip
