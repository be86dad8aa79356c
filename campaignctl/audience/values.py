"""Typing and normalising the values of a contact source, one column type each.

Every converter takes the raw CSV text and returns the value stored in the
record's attributes (JSON-ready: ISO dates, E.164 phones, lists), or raises
`ValueProblem` with a reason code that the rejects file and the import summary
count. Converters are cached per distinct value (see the cache sizes below).
"""

from __future__ import annotations

import math
import re
import traceback
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache, partial
from typing import Any

from campaignctl.spec.models import Column, ColumnType

# Addresses repeat little (shared office mailboxes, neighbouring rows of a sorted export):
# a small cache keeps those cheap without holding megabytes of one-off values per process.
ADDRESS_CACHE = 8_192
# Dates and tag lists repeat a lot (a few thousand distinct dates, a few dozen tag sets).
VALUE_CACHE = 65_536


class ValueProblem(ValueError):
    """A value that cannot be used as its column's type; the message says why without
    repeating the value (`not a date (write …)`), which the caller shows beside it."""

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
            raise ValueProblem("invalid_date", f"does not match the format {fmt!r}") from None
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 and text[4] == "-" else _dmy(text)
    except ValueError:
        raise ValueProblem("invalid_date", "not a date (write 2027-03-01 or 01/03/2027)") from None


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


# Strict pre-checks for the shapes most files are made of. They only ever ACCEPT (with the
# exact result the full library would give); anything unusual goes to the library, so they
# can never accept what it rejects (tests/audience/test_fastpath.py proves it with
# hypothesis). email-validator and phonenumbers cost ~25-70 µs a value; these ~1-2 µs.

# Local parts: the ASCII atoms most addresses use, plus the precomposed Latin letters of
# French (and other European) names, U+00C0-U+024F without the two signs × and ÷. email-validator
# accepts those as an internationalised dot-atom (RFC 6531) and returns them unchanged
# (they are letters, already NFC), so the fast path can too.
_FAST_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+"
    r"(?:\.[A-Za-z0-9_+\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+)*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
# RFC 2142 role mailboxes: email-validator lower-cases these local parts; leave them to it
_ROLE_MAILBOXES = frozenset(
    {
        "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
        "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp",
    }
)  # fmt: skip


def _fast_email(text: str) -> str | None:
    match = _FAST_EMAIL.fullmatch(text)
    if match is None:
        return None
    local, domain = match.group("local", "domain")
    if text.isascii():
        if len(text) > 254:
            return None
    elif len(text.encode()) > 254 or not unicodedata.is_normalized("NFC", local):
        return None  # the library measures UTF-8 bytes and returns the NFC form
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None  # long parts and IDNA-like labels: let the library decide
    if local.lower() in _ROLE_MAILBOXES:
        return None
    domain = domain.lower()
    if domain.rsplit(".", 1)[1] in _SPECIAL_USE_TLDS:
        return None
    return f"{local}@{domain}"


@lru_cache(maxsize=ADDRESS_CACHE)
def normalize_email(text: str) -> str:
    """A syntactically valid address with its domain lower-cased (no DNS look-up)."""
    candidate = text.strip()
    fast = _fast_email(candidate)
    if fast is not None:
        return fast
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueProblem("invalid_email", f"not a valid email address: {exc}") from None
    return f"{result.local_part}@{result.domain.lower()}"


_FAST_PHONE_SHAPE = re.compile(r"\+?[0-9]+(?:[ .-][0-9]+)*")
MAX_NATIONAL_DIGITS = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN: longer does not parse


class _PhoneRules:
    """phonenumbers' own validity test (`is_valid_number`) for one region, precompiled.

    Valid = the national number matches the general description and at least one
    number type (fixed line, mobile, toll free…), each with its possible lengths:
    what `phonenumberutil._number_type_helper` does, minus the parsing.
    """

    def __init__(self, region: str) -> None:
        import phonenumbers

        self.usable = False
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            return
        cc = metadata.country_code
        self.cc = str(cc)
        self.prefix = metadata.national_prefix or ""
        self.international = re.compile(metadata.international_prefix or "(?!)")
        single = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc) == (region,)
        plain = (
            metadata.national_prefix_for_parsing in (None, self.prefix)
            and metadata.national_prefix_transform_rule is None
            and not metadata.leading_digits
        )
        if not (single and plain and self.prefix):
            return  # shared country codes, carrier codes, transforms: the library does it

        def rule(desc):  # type: ignore[no-untyped-def]
            if desc is None or desc.national_number_pattern is None:
                return None
            return (frozenset(desc.possible_length), re.compile(desc.national_number_pattern))

        self.general = rule(metadata.general_desc)
        kinds = (
            "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
            "pager", "uan", "voicemail", "fixed_line", "mobile",
        )  # fmt: skip
        types = [r for r in (rule(getattr(metadata, k)) for k in kinds) if r is not None]
        # one alternation per length: a single regex match instead of one per number type
        lengths = set().union(*(t[0] for t in types)) if types else set()
        self.by_length = {
            n: re.compile("|".join(f"(?:{t[1].pattern})" for t in types if not t[0] or n in t[0]))
            for n in lengths
        }
        self.any_length = [t for t in types if not t[0]]
        self.usable = self.general is not None

    @staticmethod
    def _matches(number: str, rule) -> bool:  # type: ignore[no-untyped-def]
        lengths, pattern = rule
        return (not lengths or len(number) in lengths) and pattern.fullmatch(number) is not None

    def _valid(self, national: str) -> bool:
        if not self._matches(national, self.general):
            return False
        combined = self.by_length.get(len(national))
        return (combined is not None and combined.fullmatch(national) is not None) or any(
            self._matches(national, r) for r in self.any_length
        )

    def check(self, text: str) -> str | bool | None:
        """The E.164 form of a valid number, False for an invalid one, None when only the
        library can tell.

        Both answers are the library's (`parse`, then `is_valid_number`). False is given
        only where the library parses the text without an error and reads either the
        same national number or the whole digits, and both are invalid; a number that
        starts with the international prefix or the country code is left to it.
        """
        if not self.usable or _FAST_PHONE_SHAPE.fullmatch(text) is None:
            return None
        digits = text.replace(" ", "").replace(".", "").replace("-", "")
        if digits[0] == "+":
            if not digits.startswith(self.cc, 1):
                return None
            national, whole = digits[1 + len(self.cc) :], None
        elif digits.startswith(self.prefix) and self.international.match(digits) is None:
            national, whole = digits[len(self.prefix) :], digits
        else:
            return None
        if not national or national[0] == "0":
            return None
        if self._valid(national):
            return f"+{self.cc}{national}"
        if not 2 <= len(national) <= MAX_NATIONAL_DIGITS or national.startswith(self.prefix):
            return None
        if whole is not None and (
            not 3 <= len(whole) <= MAX_NATIONAL_DIGITS
            or whole.startswith(self.cc)
            or self._matches(whole, self.general)
        ):
            return None
        return False


@lru_cache(maxsize=64)
def _phone_rules(region: str) -> _PhoneRules:
    return _PhoneRules(region)


def _normalize_phone(text: str, region: str) -> str:
    candidate = text.strip()
    fast = _phone_rules(region).check(candidate)
    if isinstance(fast, str):
        return fast
    if fast is None:
        import phonenumbers

        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException as exc:
            # parse() keeps the exception it caught in a local of its frame (`_, e, _ =
            # sys.exc_info()`): a reference cycle, which would hold that frame and its
            # callers' (an import worker's whole block of rows) until a garbage collection
            traceback.clear_frames(exc.__traceback__)
            raise ValueProblem("invalid_phone", f"not a phone number: {exc}") from None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise ValueProblem("invalid_phone", f"not a valid phone number for region {region}")


@lru_cache(maxsize=64)
def phone_normalizer(region: str) -> Callable[[str], str]:
    """`normalize_phone` for one region, cached per distinct value (the import's hot path)."""
    return lru_cache(maxsize=ADDRESS_CACHE)(partial(_normalize_phone, region=region))


def normalize_phone(text: str, region: str) -> str:
    """A valid phone number in E.164 (`+33450123456`); national numbers read in `region`."""
    return phone_normalizer(region)(text)


# ----------------------------------------------------------------------------- scalars

_TRUE = {"1", "true", "yes", "y", "oui", "o", "vrai", "x"}
_FALSE = {"0", "false", "no", "n", "non", "faux", ""}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueProblem("invalid_bool", "not a yes/no value")


INT_LIMIT = 2**63  # what orjson encodes and SQLite JSON functions read back as an integer


def parse_int(text: str) -> int:
    try:
        value = int(text.strip().replace(" ", "").replace("\u202f", ""))
    except ValueError:
        raise ValueProblem("invalid_number", "not a whole number") from None
    if not -INT_LIMIT <= value < INT_LIMIT:
        raise ValueProblem("invalid_number", "too large a whole number")
    return value


def parse_number(text: str) -> float:
    cleaned = text.strip().replace(" ", "").replace("\u202f", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # French decimal comma
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueProblem("invalid_number", "not a number") from None
    if not math.isfinite(value):  # "nan", "inf", 1e999: not a number JSON can hold
        raise ValueProblem("invalid_number", "not a finite number")
    return value


def _iso_date(text: str, fmt: str | None) -> str:
    return parse_date(text, fmt).isoformat()


def _list_items(text: str, separator: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(separator) if item.strip())


@lru_cache(maxsize=64)
def _cached(function: Callable[..., Any], option: str | None) -> Callable[[str], Any]:
    """`function(text, option)` cached per distinct text, for one option (format, separator)."""
    return lru_cache(maxsize=VALUE_CACHE)(lambda text: function(text, option))


def converter(column: Column, default_region: str) -> Callable[[str], Any]:
    """The function that turns a non-empty raw value of `column` into its stored value.

    Dates and lists repeat a lot in real files (a few thousand distinct dates, a few dozen
    tag combinations): they are converted once per distinct value (a bad one is not cached,
    it raises every time).
    """
    kind = column.type
    if kind == ColumnType.EMAIL:
        return normalize_email
    if kind == ColumnType.PHONE:
        return phone_normalizer(column.region or default_region)
    if kind == ColumnType.DATE:
        return _cached(_iso_date, column.format)
    if kind == ColumnType.LIST:
        cached = _cached(_list_items, column.separator)
        return lambda text: list(cached(text))  # a copy: callers may change their list
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
