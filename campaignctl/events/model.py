"""The event vocabulary (DESIGN.md §3) and the reading of JSON-lines event files.

Whoever produces an event (`events ingest`, the web side, delivery receipts,
the send engine) describes it with `Event`; one function in the store layer
records it. A bad line is reported with its number and skipped: it never
aborts the batch.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from campaignctl.spec.models import EventType


class Event(BaseModel):
    """One event. It names its message (`message_id`), or its record (`campaign` + `record`),
    or an `address` (a bounce or complaint known only by address)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, max_length=200, description="Default: a hash of the line.")
    type: EventType
    message_id: str | None = None
    campaign: str | None = None
    record: str | None = None
    address: str | None = None
    at: datetime | None = Field(None, description="Default: the time of ingestion.")
    data: dict[str, Any] = {}

    @field_validator("message_id")
    @classmethod
    def _strip_brackets(cls, value: str | None) -> str | None:
        return value.strip().strip("<>") if value else value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _target(self) -> Event:
        if not (self.message_id or (self.campaign and self.record) or self.address):
            raise ValueError(
                "an event names its message (message_id), its record (campaign and record), "
                "or an address"
            )
        if self.type == EventType.BOUNCED and self.data.get("kind", "hard") not in ("hard", "soft"):
            raise ValueError("a bounce's data.kind is 'hard' or 'soft'")
        return self

    @property
    def hard_bounce(self) -> bool:
        if self.type != EventType.BOUNCED:
            return False
        # the one rule, also written in SQL for the report (report.figures.soft_bounce):
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


def event_id(event: Event, raw_line: str) -> str:
    """The given id, or a hash of the line's JSON content (so re-ingesting adds nothing)."""
    if event.id:
        return event.id
    try:
        canonical = json.dumps(json.loads(raw_line), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = raw_line.strip()
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def read_events(lines: Iterable[str]) -> Iterator[tuple[int, Event | LineProblem, str]]:
    """(line number, event or problem, its id or "") for each non-blank line."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            yield number, LineProblem(number, f"not JSON: {exc}"), ""
            continue
        if not isinstance(payload, dict):
            yield number, LineProblem(number, "each line must be a JSON object"), ""
            continue
        try:
            event = Event.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            yield number, LineProblem(number, f"{where + ': ' if where else ''}{message}"), ""
            continue
        yield number, event, event_id(event, raw)
