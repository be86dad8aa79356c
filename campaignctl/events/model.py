"""The event vocabulary (DESIGN.md §3) and the reading of JSON-lines event files.

Whoever produces an event (`events ingest`, the web side, delivery receipts,
the send engine) describes it with `Event`; one function (`events.record.
record_events`) records it. A bad line is reported with its number and skipped:
it never aborts the batch. Every field is bounded (`LIMITS`), so that no line
can make the store hold megabytes or a structure its JSON functions refuse.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from campaignctl.spec.models import RECORD_EVENTS, EventType


@dataclass(frozen=True)
class Limits:
    """The largest event `events ingest` (and every other producer) accepts."""

    line_bytes: int = 128 * 1024
    id: int = 64  # the event table's key
    message_id: int = 320  # a Message-ID: 32 hex digits @ a domain of at most 253
    campaign: int = 100  # a campaign name (the campaign table's)
    record: int = 200  # a record key (the record table's)
    address: int = 320
    data_bytes: int = 64 * 1024  # `data` as compact JSON
    data_depth: int = 16  # nested objects and lists in `data`


LIMITS = Limits()


class Event(BaseModel):
    """One event. It names its message (`message_id`), or its record (`campaign` + `record`),
    or an `address` (a bounce or complaint known only by address)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, max_length=LIMITS.id, description="Default: a hash of the line.")
    type: EventType
    message_id: str | None = Field(None, max_length=LIMITS.message_id)
    campaign: str | None = Field(None, max_length=LIMITS.campaign)
    record: str | None = Field(None, max_length=LIMITS.record)
    audience: str | None = Field(
        None, max_length=LIMITS.campaign, description="The record's audience, when several."
    )
    address: str | None = Field(None, max_length=LIMITS.address)
    at: datetime | None = Field(None, description="Default: the time of ingestion.")
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("message_id")
    @classmethod
    def _strip_brackets(cls, value: str | None) -> str | None:
        return value.strip().strip("<>") if value else value

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Stored in UTC: a naive time is taken as UTC, an offset is converted."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError("not a time the store can keep") from None

    @model_validator(mode="after")
    def _target(self) -> Event:
        about_record = self.record and self.type in RECORD_EVENTS
        if not (self.message_id or (self.campaign and self.record) or self.address or about_record):
            raise ValueError(
                "an event names its message (message_id), its record (campaign and record; "
                "record alone, with audience when several, for "
                f"{', '.join(sorted(RECORD_EVENTS))}), or an address"
            )
        texts = (self.id, self.message_id, self.campaign, self.record, self.address, self.audience)
        for text in texts:
            if text and ("\x00" in text or not text.isascii()):  # else plainly fine
                for name, value in zip(_TEXT_FIELDS, texts, strict=True):
                    if value:
                        _check_text(value, name)
        if self.data:
            if self.type == EventType.BOUNCED and self.data.get("kind", "hard") not in (
                "hard",
                "soft",
            ):
                raise ValueError("a bounce's data.kind is 'hard' or 'soft'")
            _check_data(self.data)
        return self

    @property
    def hard_bounce(self) -> bool:
        if self.type != EventType.BOUNCED:
            return False
        # the one rule, also written in SQL for the report and relaunches (soft_bounce below):
        # a 5.1.x code (no such user or domain) is hard whatever the kind says; without a
        # kind, a 4.x.x code is soft and anything else (a 5.x.x code, or no code) is hard
        kind = self.data.get("kind")
        code = str(self.data.get("code") or "")
        return (
            kind == "hard" or code.startswith("5.1.") or (kind is None and not code.startswith("4"))
        )

    @property
    def opt_out(self) -> bool:
        """Whether this event asks never to be contacted again (in its category)."""
        if self.type in (EventType.UNSUBSCRIBED, EventType.COMPLAINED):
            return True
        return self.type == EventType.SMS_REPLY and is_stop_reply(str(self.data.get("text", "")))


def soft_bounce(dialect: str, alias: str = "e") -> str:
    """SQL: whether the `bounced` event `alias` is soft, the negation of `Event.hard_bounce`
    (kind soft, or no kind and a 4.x.x code; never with a 5.1.x code). Never NULL: a bounce
    with neither kind nor code is hard."""
    if dialect == "postgresql":
        kind, code = f"{alias}.data->>'kind'", f"{alias}.data->>'code'"
    else:
        kind, code = (
            f"json_extract({alias}.data, '$.kind')",
            f"CAST(json_extract({alias}.data, '$.code') AS TEXT)",
        )
    return (
        f"(COALESCE({kind} = 'soft' OR ({kind} IS NULL AND {code} LIKE '4%'), FALSE)"
        f" AND COALESCE({code}, '') NOT LIKE '5.1.%')"
    )


_TEXT_FIELDS = ("id", "message_id", "campaign", "record", "address", "audience")


def _check_text(text: str, where: str = "data") -> None:
    """Text the store can keep: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if "\x00" in text:
        raise ValueError(f"{where}: a NUL character (\\u0000) cannot be stored")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: a lone surrogate (\\ud800-\\udfff) is not text") from None


def _check_data(data: dict[str, Any]) -> None:
    """`data` is plain JSON of bounded depth and size (SQLite's JSON functions refuse a deep
    nesting; NaN is not JSON and PostgreSQL refuses it)."""
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(data, 1)]
    while pending:
        container, depth = pending.pop()
        if depth > LIMITS.data_depth:
            raise ValueError(f"data is nested more than {LIMITS.data_depth} levels deep")
        if isinstance(container, dict):
            for key in container:
                if type(key) is not str:
                    raise ValueError("data keys are strings")
                _check_text(key)
            values: Iterable[Any] = container.values()
        else:
            values = container
        for value in values:
            kind = type(value)
            if kind is str:
                _check_text(value)
            elif kind is dict or kind is list:
                pending.append((value, depth + 1))
            elif kind is float:
                if not math.isfinite(value):
                    raise ValueError("data holds NaN or Infinity, which is not JSON")
            elif not (value is None or kind is bool or kind is int):
                raise ValueError(f"data holds a {kind.__name__}, which is not JSON")
    try:
        size = len(orjson.dumps(data))
    except TypeError:  # an integer past 64 bits: measured by the standard library
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    if size > LIMITS.data_bytes:
        raise ValueError(f"data is {size} bytes of JSON, more than {LIMITS.data_bytes}")


_STOP_WORDS = {"stop", "arret", "arreter", "stop pub", "stoppub", "unsubscribe", "desabonner"}


def is_stop_reply(text: str) -> bool:
    """STOP, ARRET, Arrêt, "STOP PUB"… an SMS reply that opts out (accents and case ignored)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = re.sub(r"[^a-z ]", " ", folded).split()
    if not words:
        return False
    return " ".join(words[:2]) in _STOP_WORDS or words[0] in _STOP_WORDS


@dataclass(frozen=True)
class LineProblem:
    line: int
    message: str


@dataclass(frozen=True)
class Incoming:
    """An event to record, with its id and the line it came from (0: not from a file)."""

    event: Event
    id: str
    line: int = 0


# A number token of the canonical JSON that orjson may write unlike the standard library
# (floats: 1e16 against 1e+16); false positives inside strings only cost the slow path.
_FLOATISH = re.compile(rb"[:,\[]-?\d+[.eE]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def line_hash(payload: dict[str, Any], raw: bytes) -> str:
    """The id of a line without one: a hash of its JSON content (re-ingesting adds nothing).

    The content is the standard library's canonical form (sorted keys, no spaces,
    ASCII escapes), which ids recorded by earlier versions were hashed from; orjson
    writes the same bytes for ASCII text without floats, several times faster.
    """
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    if not canonical.isascii() or _FLOATISH.search(canonical):
        exact = json.loads(raw, parse_constant=_reject_constant)
        canonical = json.dumps(exact, sort_keys=True, separators=(",", ":")).encode("ascii")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:32]


def numbered_lines(
    stream: IO[bytes], limit: int = LIMITS.line_bytes
) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line, reading at most `limit` bytes of any one: a longer
    line comes back cut to `limit + 1` bytes (and is refused), the rest of it skipped."""
    number = 0
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            rest = raw
            while rest and not rest.endswith(b"\n"):
                rest = stream.readline(1 << 16)
        yield number, raw


def _utf8_problem(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start + 1}: {exc.reason})"
    return None


def read_event(number: int, raw: bytes) -> Incoming | LineProblem | None:
    """One line: the event with its id, the reason it cannot be read, or None when blank."""
    if len(raw) > LIMITS.line_bytes and len(raw.rstrip(b"\r\n")) > LIMITS.line_bytes:
        return LineProblem(number, f"longer than {LIMITS.line_bytes} bytes")
    if number == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
    if not raw.strip():
        return None
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return LineProblem(number, _utf8_problem(raw) or f"not JSON: {exc}")
    if not isinstance(payload, dict):
        return LineProblem(number, "each line must be a JSON object")
    try:
        event = Event.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        return LineProblem(number, f"{where + ': ' if where else ''}{message}")
    return Incoming(event, event.id or line_hash(payload, raw), number)


def read_events(lines: Iterable[bytes | str]) -> Iterator[Incoming | LineProblem]:
    """Each non-blank line's event (with its id and number), or why it cannot be read."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, str):
            try:
                line = line.encode("utf-8")
            except UnicodeEncodeError:
                yield LineProblem(number, "not UTF-8 text (a lone surrogate)")
                continue
        item = read_event(number, line)
        if item is not None:
            yield item
