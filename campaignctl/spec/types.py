"""Value types shared by the spec models: durations, relative dates, time zones, addresses.

Each is an `Annotated` type with its parser and its JSON Schema, so the loader,
`validate` and `campaignctl schema` agree on what a valid value is.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from campaignctl import clock
from campaignctl.errors import InvalidValue

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_SLUG = re.compile(SLUG_PATTERN)
# The store keeps names in VARCHAR(100) columns (PostgreSQL enforces it) and wave keys
# such as `NAME/202703080900/1` in another: 64 leaves room for both.
SLUG_MAX_LENGTH = 64

# --------------------------------------------------------------------------- slugs


def _check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit (e.g. 'hotels-renewing-soon')"
        )
    if len(value) > SLUG_MAX_LENGTH:
        raise ValueError(
            f"the name {value[:24]!r}… has {len(value)} characters: a name has at most "
            f"{SLUG_MAX_LENGTH}"
        )
    return value


Slug = Annotated[
    str,
    AfterValidator(_check_slug),
    WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX_LENGTH}),
]

# Transport names: the built-in ones and those installed plugins register (spec/transports.py
# checks that one is installed; the JSON Schema suggests the built-in ones).
TRANSPORT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_TRANSPORT_NAME = re.compile(TRANSPORT_NAME_PATTERN)


def _check_transport_name(value: str) -> str:
    if not _TRANSPORT_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a transport name: use lower-case letters, digits, '.', '-' "
            "and '_' (e.g. 'smtp', or the name a transport plugin registers)"
        )
    return value


def transport_name(builtin: tuple[str, ...]) -> Any:
    """The type of a `transport:` setting whose built-in transports are `builtin`."""
    return Annotated[
        str,
        AfterValidator(_check_transport_name),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": TRANSPORT_NAME_PATTERN,
                "examples": list(builtin),
                "description": f"{', '.join(builtin)}, or a transport an installed plugin "
                "registers (entry point group campaignctl.transports)",
            }
        ),
    ]


# --------------------------------------------------------------------------- durations

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^-?(\d+[smhdw])+$"
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
# Waits, relaunches and lease timeouts are added to dates; ten years keeps every sum a date.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: Any) -> timedelta:
    """Parse `7d`, `5m`, `1d12h`, `-2d` (a sign for 'before') into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a duration such as 7d or 5m, got {value!r}")
    text = str(value).strip()
    if isinstance(value, int) or not _DURATION.match(text):
        raise InvalidValue(
            f"invalid duration {text!r}",
            hint="write a whole number followed by a unit s, m, h, d or w "
            "(e.g. 30s, 5m, 6h, 7d, 2w, or 1d12h)",
        )
    sign = -1 if text.startswith("-") else 1
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"duration {text!r} is too long: at most {format_duration(MAX_DURATION)} (ten years)"
        )
    return timedelta(seconds=sign * seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text that `parse_duration` reads back as `value`."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):  # 7d reads better than 1w
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["7d", "5m"]}),
]

# --------------------------------------------------------------------------- relative dates

RELATIVE_BASES = (
    "today",
    "start_of_week",
    "start_of_month",
    "start_of_year",
    "end_of_week",
    "end_of_month",
    "end_of_year",
)
RELATIVE_DATE_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2}|(" + "|".join(RELATIVE_BASES) + r")?([+-]\d+[dwmy])*)$"
)
_RELATIVE = re.compile(
    r"^(?P<base>" + "|".join(RELATIVE_BASES) + r")?(?P<offsets>([+-]\d+[dwmy])*)$"
)
_OFFSET = re.compile(r"([+-])(\d+)([dwmy])")
# Offsets move "today" (1970..2999, see clock.py) by at most a thousand years: still a date.
_OFFSET_DAYS = {"d": 1, "w": 7, "m": 31, "y": 366}
MAX_RELATIVE_DAYS = 366_000
# Strings that look like an attempt at a relative date; a typo in one is an error, not text.
_LOOKS_RELATIVE = re.compile(r"^(today|start_of|end_of|[+-]\d)")


def add_months(day: date, months: int) -> date:
    """Shift by whole months, clamping to the month's last day (31 Jan + 1m = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@dataclass(frozen=True)
class RelativeDate:
    """A date written relative to the day of evaluation: `today+15d`, `-2d`, `start_of_month`.

    An absolute ISO date is a RelativeDate with no base and a fixed `absolute` value.
    """

    text: str
    base: str | None = None
    offsets: tuple[tuple[int, str], ...] = ()
    absolute: date | None = None

    def resolve(self, today: date) -> date:
        if self.absolute is not None:
            return self.absolute
        day = today
        if self.base == "start_of_week":
            day = today - timedelta(days=today.weekday())
        elif self.base == "end_of_week":
            day = today + timedelta(days=6 - today.weekday())
        elif self.base == "start_of_month":
            day = today.replace(day=1)
        elif self.base == "end_of_month":
            day = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        elif self.base == "start_of_year":
            day = date(today.year, 1, 1)
        elif self.base == "end_of_year":
            day = date(today.year, 12, 31)
        for amount, unit in self.offsets:
            if unit == "d":
                day += timedelta(days=amount)
            elif unit == "w":
                day += timedelta(weeks=amount)
            elif unit == "m":
                day = add_months(day, amount)
            else:
                day = add_months(day, 12 * amount)
        return day

    @property
    def is_relative(self) -> bool:
        return self.absolute is None

    def __str__(self) -> str:
        return self.text


def parse_relative_date(value: Any) -> RelativeDate:
    """Read a date value of a filter: an ISO date or a relative expression."""
    if isinstance(value, RelativeDate):
        return value
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return RelativeDate(value.isoformat(), absolute=value)
    if not isinstance(value, str):
        raise ValueError(f"expected a date, got {value!r}")
    text = value.strip().replace(" ", "")
    try:
        return RelativeDate(text, absolute=date.fromisoformat(text))
    except ValueError:
        pass
    match = _RELATIVE.match(text)
    if not text or not match:
        raise ValueError(
            f"invalid date {value!r}: write an ISO date (2027-03-01) or a relative date: "
            f"a base ({', '.join(RELATIVE_BASES)}) and/or offsets such as +15d, -2w, +1m, +1y "
            "(units d, w, m, y), e.g. today+15d or start_of_month"
        )
    offsets = tuple(
        (int(n) * (-1 if sign == "-" else 1), unit)
        for sign, n, unit in _OFFSET.findall(match.group("offsets"))
    )
    reach = sum(abs(amount) * _OFFSET_DAYS[unit] for amount, unit in offsets)
    if reach > MAX_RELATIVE_DAYS:
        raise ValueError(
            f"relative date {value!r} reaches too far: offsets add up to at most "
            f"{MAX_RELATIVE_DAYS // 366} years ({MAX_RELATIVE_DAYS}d)"
        )
    return RelativeDate(text, base=match.group("base"), offsets=offsets)


def looks_like_relative_date(value: Any) -> bool:
    return isinstance(value, str) and bool(_LOOKS_RELATIVE.match(value.strip()))


# --------------------------------------------------------------------------- local date-times

# What pydantic reads as a datetime: seconds and the UTC offset are optional, so that
# `2027-03-01T09:00` means 09:00 in the schedule's time zone. JSON Schema's `date-time`
# format (RFC 3339) demands both, which made editors reject the documented form.
LOCAL_DATETIME_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
)


def _check_in_range(value: datetime) -> datetime:
    if not clock.in_range(value.date()):
        raise ValueError(f"{value.isoformat()} is out of range: {clock.RANGE_TEXT}")
    return value


LocalDateTime = Annotated[
    datetime,
    AfterValidator(_check_in_range),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": LOCAL_DATETIME_PATTERN,
            "examples": ["2027-03-01T09:00", "2027-03-01T09:00:00+01:00"],
        }
    ),
]

# --------------------------------------------------------------------------- time zones


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        import difflib

        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown time zone {value!r}{suggestion} Use an IANA name such as 'Europe/Paris'"
        ) from None
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_timezone),
    WithJsonSchema({"type": "string", "examples": ["Europe/Paris", "UTC"]}),
]

# --------------------------------------------------------------------------- times of day


def _parse_time_of_day(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 21:30 as the sexagesimal integer 1290
        return time(value // 60 % 24, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(p) for p in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ValueError(f'invalid time of day {value!r}: write HH:MM, e.g. "21:30"')


TimeOfDay = Annotated[
    time,
    BeforeValidator(_parse_time_of_day),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}$"}),
]

# --------------------------------------------------------------------------- email addresses


def check_email(value: str) -> str:
    """Validate an address by its syntax (no DNS: validation must work offline)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address {value!r}: {exc}") from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_mailbox(value: str) -> str:
    """A `From:`-style mailbox: `Name <addr@example.org>` or a bare address."""
    if not isinstance(value, str):
        raise ValueError(f"expected an address such as 'Name <contact@example.org>', got {value!r}")
    if _CONTROL.search(value):
        raise InvalidValue(
            f"sender {value!r} holds a control character (a line break would add headers "
            "of its own to every message)",
            hint="write the sender on one line: 'Name <address@example.org>'",
        )
    _name, address = parseaddr(value)
    if not address or "@" not in address:
        raise ValueError(
            f"invalid sender {value!r}: write 'Name <address@example.org>' or a bare address"
        )
    check_email(address)
    return value


EmailAddress = Annotated[
    str, AfterValidator(check_email), WithJsonSchema({"type": "string", "format": "email"})
]
Mailbox = Annotated[
    str,
    AfterValidator(_check_mailbox),
    WithJsonSchema({"type": "string", "examples": ["Office de tourisme <contact@example.org>"]}),
]

# --------------------------------------------------------------------------- store URLs

# The databases the store runs on (DESIGN.md §8), as SQLAlchemy URL schemes.
STORE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
STORE_URL_PATTERN = r"^(sqlite(\+pysqlite)?|postgresql(\+psycopg)?)://"
_URL_PASSWORD = re.compile(r"(://[^/?#@]*?:)[^/?#@]*@")


def hide_url_password(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def check_store_url(value: str) -> str:
    """A store URL campaignctl can open, or a ValueError that says what to write instead."""
    from urllib.parse import urlsplit

    scheme, separator, _rest = value.partition("://")
    if not separator or scheme not in STORE_SCHEMES:
        raise ValueError(
            f"unsupported store URL {hide_url_password(value)!r}: the store is SQLite "
            "(sqlite:///.campaignctl/store.db) or PostgreSQL (postgresql+psycopg://USER@HOST/DB)"
        )
    try:
        urlsplit(value).port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"invalid store URL {hide_url_password(value)!r}: {exc}") from None
    return value


StoreUrl = Annotated[
    str,
    AfterValidator(check_store_url),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": STORE_URL_PATTERN,
            "examples": ["sqlite:///.campaignctl/store.db", "postgresql+psycopg://user@host/db"],
        }
    ),
]
