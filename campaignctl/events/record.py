"""Recording events: the one writer every producer calls (DESIGN.md §3).

`events ingest`, the web side (`serve`), delivery receipts and the send engine
all describe what happened with an `Event` and hand a batch of them to
`record_events`, inside their own transaction (`record_event` is the same for
one event). The batch is resolved in the store (`store.events`: staged, linked,
then inserted by `record_once`), set-based, a few statements whatever its size:

- idempotent by event id: an id already recorded (or met earlier in the batch)
  adds nothing;
- the event is linked to its message: `message_id` (the Message-ID, or the SMS
  provider's id) → outbox row → campaign, record; or `campaign` + `record` key →
  that record's latest message of the campaign sent before the event (an email
  for delivered, bounced, opened, complained; an SMS for sms_* and for a click on
  a short link, `data.short`; either for other clicks, form_*, unsubscribed), so
  that it counts in reports and relaunches exactly as an event naming that message.
  When no such message was sent before it, the event is kept (a record event still
  counts in its campaign's totals) and said "not attributable", with the reason;
- its time must be sane: at most a day after now, not before 1970, and not more
  than a day before its campaign's first send (or, never sent, its apply);
  otherwise the event is refused with the reason;
- a `form_submitted` makes (or, still to process, updates) the record's response to
  process (events/responses.py);
- the events that say "never again" add the suppression at once:
  - a hard bounce → the address, every category, reason `bounced` (a soft bounce
    adds nothing: the send engine retries it);
  - a complaint → the address, every category, reason `complained`;
  - an unsubscribe → the address, the category its `data.category` names, else the
    campaign's (every category when the campaign is unknown), reason `unsubscribed`;
  - an SMS reply STOP / ARRET / STOP PUB → the phone number, the campaign's
    category (every category when unknown), reason `sms_stop`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from campaignctl import clock
from campaignctl.audience.privacy import guess_channel
from campaignctl.audience.values import ValueProblem, normalize_email, normalize_phone
from campaignctl.enums import Channel, SuppressionReason
from campaignctl.errors import InputError
from campaignctl.events.model import (
    Event,
    Incoming,
    LineProblem,
    numbered_lines,
    read_event,
)
from campaignctl.events.responses import open_responses
from campaignctl.lifeline import bind_to_parent
from campaignctl.spec.models import EventType
from campaignctl.store import events as store_events
from campaignctl.store.store import Store
from campaignctl.store.suppressions import SuppressionEntry
from campaignctl.store.suppressions import add as add_suppressions

BATCH_SIZE = 5_000  # lines read, staged and resolved at once when ingesting a file
FLUSH_ROWS = 50_000  # then recorded at once (sorted), when so many are staged
INGEST_CACHE_KIB = 32 * 1024  # SQLite's page cache while ingesting a file (default: 2 MiB)
TRANSACTION_SECONDS = 2.0  # then committed, when a transaction has lasted this long
AHEAD = 12  # batches read ahead at most, a little more than a transaction holds (FLUSH_ROWS)
LISTED = 1_000  # problems, uncounted events and suppressions listed one by one (all counted)
SLACK = timedelta(days=1)  # clocks differ: an event may say a day after now, a day before a send
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SMS_TYPES = frozenset({EventType.SMS_DELIVERED, EventType.SMS_FAILED, EventType.SMS_REPLY})
EMAIL_TYPES = frozenset(
    {EventType.DELIVERED, EventType.BOUNCED, EventType.OPENED, EventType.COMPLAINED}
)


@dataclass
class Recording:
    """What `record_events` did with a batch: counts, and per event (its line, or its place
    in the batch from 1) what was refused or recorded without counting for a message."""

    recorded: int = 0
    duplicates: int = 0  # this id was recorded before: nothing added
    unknown: int = 0  # recorded, but its message, campaign or record is not in the store
    unattributed: int = 0  # recorded, but no message of its campaign reached its record before
    refused: list[LineProblem] = field(default_factory=list)  # not recorded (time)
    not_counted: list[LineProblem] = field(default_factory=list)  # unknown + unattributed
    suppressions: list[str] = field(default_factory=list)  # added: "email x@y (all, bounced)"


def _effect(event: Event) -> SuppressionReason | None:
    if event.hard_bounce:
        return SuppressionReason.BOUNCED
    if event.type == EventType.COMPLAINED:
        return SuppressionReason.COMPLAINED
    if event.type == EventType.UNSUBSCRIBED:
        return SuppressionReason.UNSUBSCRIBED
    if event.type == EventType.SMS_REPLY and event.opt_out:
        return SuppressionReason.SMS_STOP
    return None


def _wanted(event: Event) -> str | None:
    if event.type in SMS_TYPES or (event.type == EventType.CLICKED and event.data.get("short")):
        return str(Channel.SMS)  # a short link (`/q/`, data.short) is only ever in an SMS
    return str(Channel.EMAIL) if event.type in EMAIL_TYPES else None


def _time_problem(at: datetime, now: datetime) -> str | None:
    if at > now + SLACK:
        return f"at: {at.isoformat()} is more than a day after now ({now.isoformat()})"
    if at < EPOCH:
        return f"at: {at.isoformat()} is before 1970"
    return None


def _quoted(text: str | None) -> str:
    """A value from the input, quoted with its control characters escaped."""
    return json.dumps(text, ensure_ascii=False)


def _json(value: Any) -> Any:
    """A JSON column read through a text() query: text on SQLite, decoded on PostgreSQL."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


@dataclass
class _Prepared:
    """Events read and checked, ready for the batch table: `rows` (the FILLED columns after
    `seq`: the line, then the id…), the earliest of their times, and the events refused for
    their time. Plain tuples: batches of them go from the reading process to the recording
    one, and tuples cross fastest."""

    rows: list[tuple[Any, ...]]
    earliest: datetime | None
    refused: list[LineProblem]
    # events already linked to their message (`_link`): the line, then the LINKED columns
    linked: list[tuple[Any, ...]] = field(default_factory=list)


def _processors(dialect: Any) -> list[tuple[int, Any]]:
    """(index in a row without `seq`, bind processor) of the batch columns that have one."""
    return [
        (i - 1, process)
        for i, name in enumerate(store_events.FILLED)
        if (process := store_events.bind_processor(name, dialect))
    ]


def _prepare(items: Sequence[Incoming], now: datetime, dialect: Any) -> _Prepared:
    """The batch table rows of the events (Python only, no store: `events ingest` prepares
    the next batch in its reading process while the store records this one)."""
    processors = _processors(dialect)
    rows, refused, earliest = [], [], None
    for place, item in enumerate(items, start=1):
        event = item.event
        at = event.at or now
        line = item.line or place
        problem = _time_problem(at, now)
        if problem:
            refused.append(LineProblem(line, problem))
            continue
        if earliest is None or at < earliest:
            earliest = at
        effect = _effect(event)
        wanted = _wanted(event)
        if wanted == Channel.SMS:
            channel = wanted
        else:
            channel = str(guess_channel(event.address)) if event.address else None
        values = [
            line, item.id, str(event.type), event.message_id, event.campaign, event.record,
            event.audience, event.address, at, event.data or None, channel, wanted,
            effect and str(effect),
        ]  # fmt: skip
        for i, process in processors:
            if values[i] is not None:
                values[i] = process(values[i])
        rows.append(tuple(values))
    return _Prepared(rows, earliest, refused)


# a row of the batch table without `seq` (FILLED), and of the linked ones (the line, LINKED)
_LINE, _ID, _TYPE, _MESSAGE, _CAMPAIGN, _RECORD, _AUDIENCE, _ADDRESS, _AT, _DATA = range(10)
_CHANNEL, _WANTED, _EFFECT = range(10, 13)
_OUTBOX, _CAMPAIGN_ID = 4, 5  # in a linked row


def _link(prepared: _Prepared, conn: Connection, received: Any) -> None:
    """Link the events that name a message in the store straight to it, as `resolve` would
    (Message-ID, else the SMS provider's id): they move from `rows` to `linked`, sorted by
    message (the event table's indexes take them in that order). Those calling for a
    suppression or making a response stay in `rows`: their recording does more."""

    def linkable(row: tuple[Any, ...]) -> bool:
        return row[_EFFECT] is None and row[_TYPE] != EventType.FORM_SUBMITTED

    named = {row[_MESSAGE] for row in prepared.rows if row[_MESSAGE] is not None and linkable(row)}
    if not named:
        return
    found = store_events.messages(conn, list(named))
    rows, linked = [], []
    for row in prepared.rows:
        message = found.get(row[_MESSAGE]) if linkable(row) else None
        if message is None:
            rows.append(row)
            continue
        outbox, campaign, record, address, channel, key = message
        address, channel = row[_ADDRESS] or address, channel or row[_CHANNEL]
        if address is None or channel is None:  # the record's address: `resolve` knows it
            rows.append(row)
            continue
        linked.append((
            row[_LINE], row[_ID], row[_TYPE], row[_MESSAGE], outbox, campaign, record,
            row[_AT], row[_DATA], received, key or row[_RECORD], address, channel,
        ))  # fmt: skip
    linked.sort(key=lambda row: row[_OUTBOX])
    prepared.rows, prepared.linked = rows, linked


def _unlinked(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A linked row back in the batch table's form (FILLED without `seq`), to be linked
    again in the write transaction."""
    line, id_, type_, message_id, *_, at, data, _received, _key, address, channel = row
    return (line, id_, type_, message_id, None, None, None, address, at, data, channel, None, None)


class _Recorder:
    """Events staged in the store's batch table (`stage`, any number of times), then
    recorded at once (`flush`), in the caller's transaction; `done` says what came of them."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn, self.now = conn, now
        self.done = Recording()
        self.staged = 0  # places taken in the batch table (its `seq`)
        self.pending = 0  # staged rows still to record
        self.ids: set[str] = set()  # of the staged events: a second one is a duplicate
        self.linked: list[tuple[Any, ...]] = []  # linked already (`_link`), to insert
        # campaign id → (its first send, or its apply when it has sent nothing; name; sent)
        self.starts: dict[int, tuple[datetime, str, bool]] = {}

    @property
    def size(self) -> int:
        """Events to record at the next `flush`."""
        return self.pending + len(self.linked)

    def stage(self, prepared: _Prepared) -> None:
        """Stage the events, each linked to its message, campaign and record; refuse those
        out of their time window, count those met before in this recording."""
        self.done.refused.extend(prepared.refused)
        unlinked = self._keep_linked(prepared)
        rows, ids = [], self.ids
        for row in [*prepared.rows, *unlinked]:
            if row[1] in ids:
                self.done.duplicates += 1
                continue
            ids.add(row[1])
            rows.append((self.staged + len(rows), *row))
        self._stage(rows, prepared.earliest)

    def _keep_linked(self, prepared: _Prepared) -> list[tuple[Any, ...]]:
        """Keep the linked events not met before in this recording, those of a campaign
        that started after the batch's earliest event aside: they go through the batch
        table, whose `_refuse_early` looks at each event's time (returned, unlinked)."""
        if not prepared.linked:
            return []
        late = self._late({row[_CAMPAIGN_ID] for row in prepared.linked}, prepared.earliest)
        ids, kept, unlinked = self.ids, self.linked, []
        for row in prepared.linked:
            if row[_CAMPAIGN_ID] in late:
                unlinked.append(_unlinked(row))
            elif row[_ID] in ids:
                self.done.duplicates += 1
            else:
                ids.add(row[_ID])
                kept.append(row)
        return unlinked

    def _stage(self, rows: list[tuple[Any, ...]], earliest: datetime | None) -> None:
        """Stage these rows (`seq` first) in the batch table and link them."""
        if not rows:
            return
        since, fresh = self.staged, self.staged == 0
        store_events.stage(self.conn, rows, fresh=fresh)
        store_events.resolve(self.conn, since)
        self.staged += len(rows)
        self.pending += len(rows) - self._refuse_early(since, earliest)

    def _refuse_early(self, since: int, earliest: datetime | None) -> int:
        """Refuse the events staged from place `since` on that are more than a day before
        their campaign's first send (or, never sent, its apply): how many. The per-event
        look-up is skipped when no campaign of the batch started after its earliest event."""
        bounds = self._late(store_events.batch_campaign_ids(self.conn, since), earliest)
        if not bounds:
            return 0
        early = []
        for seq, cid, line, event_id, at in store_events.batch_campaign_of(self.conn, since):
            at = clock.aware(at)
            if cid in bounds and at < bounds[cid][0] - SLACK:
                start, name, sent = bounds[cid]
                what = "first sent" if sent else "was applied (it has sent nothing yet)"
                self.done.refused.append(
                    LineProblem(
                        line,
                        f"at: {at.isoformat()} is more than a day before campaign "
                        f"{_quoted(name)} {what}, at {start.isoformat()}",
                    )
                )
                early.append(seq)
                self.ids.discard(event_id)
        store_events.drop_from_batch(self.conn, early)
        return len(early)

    def _late(
        self, campaigns: set[int], earliest: datetime | None
    ) -> dict[int, tuple[datetime, str, bool]]:
        """Of these campaigns, those that started more than a day after `earliest`: id →
        (start, name, sent). Each campaign is read once per recording."""
        missing = campaigns - self.starts.keys()
        for cid, name, first_sent, applied in store_events.campaigns(self.conn, missing):
            self.starts[cid] = (clock.aware(first_sent or applied), name, first_sent is not None)
        if earliest is None:
            return {}
        return {
            cid: self.starts[cid]
            for cid in campaigns
            if cid in self.starts and self.starts[cid][0] - SLACK > earliest
        }

    def flush(self, listed: int | None, region: str) -> Recording:
        """Record the staged events not recorded before; count them, open the responses of
        the answers, add the suppressions. Then the next `stage` starts afresh."""
        done = self.done
        if self.linked:
            self._insert_linked()
        if self.pending:
            inserted = store_events.record_once(self.conn, self.now)
            done.duplicates += self.pending - len(inserted)
            if inserted:
                self._respond(inserted)
            uncounted, suppressions = [], []
            for row in store_events.notable(self.conn):
                if row.id not in inserted:
                    continue  # recorded before
                if row.outbox_id is None:
                    why = self._uncounted(row)
                    if why is not None:
                        uncounted.append((row.line, why))
                if row.effect is not None:
                    chosen = (_json(row.data) or {}).get("category")
                    entry = _suppression(row, SuppressionReason(row.effect), region, chosen)
                    if entry is not None:
                        suppressions.append(entry)
            done.recorded += len(inserted) - done.unknown - done.unattributed
            uncounted.sort()
            done.not_counted = [LineProblem(line, why) for line, why in uncounted[:listed]]
            done.suppressions = [
                f"{e.channel} {e.normal} ({e.category or 'all categories'}, {e.reason})"
                for e in add_suppressions(self.conn, suppressions)
            ]
        done.refused.sort(key=lambda p: p.line)
        self.done, self.staged, self.pending = Recording(), 0, 0
        self.ids.clear()
        return done

    def _insert_linked(self) -> None:
        """Insert the linked events (sorted by message, batch after batch), with one
        executemany. When a message, campaign or record one names was deleted since it was
        looked up (outside this transaction), they are staged and linked again here."""
        rows, self.linked = self.linked, []
        rows.sort(key=lambda row: row[_OUTBOX])
        try:
            with self.conn.begin_nested():
                inserted = store_events.insert_linked(self.conn, [row[1:] for row in rows])
        except IntegrityError:
            # their times are the store's form here: each is looked at (EPOCH: none skipped)
            self._stage([(self.staged + n, *_unlinked(row)) for n, row in enumerate(rows)], EPOCH)
            return
        self.done.recorded += inserted
        self.done.duplicates += len(rows) - inserted

    def _respond(self, inserted: set[str]) -> None:
        """The responses to process of the answers inserted (events/responses.py)."""
        open_responses(
            self.conn,
            [
                (r.campaign_id, r.record_id, r.outbox_id, _json(r.data), clock.aware(r.at))
                for r in store_events.staged_answers(self.conn)
                if r.id in inserted
            ],
        )

    def _uncounted(self, row: Any) -> str | None:
        """Why an event without a message counts for none (None: named by its address)."""
        campaign, record = _quoted(row.campaign_name), _quoted(row.record_name)
        if row.campaign_name and row.record_name:
            if row.campaign_id is None:
                self.done.unknown += 1
                return f"unknown: campaign {campaign} is not in the store"
            if row.record_id is None:
                self.done.unknown += 1
                return (
                    f"unknown: campaign {campaign} reached no record {record}, "
                    "and no single record has that key"
                )
            self.done.unattributed += 1
            message = {"email": "email", "sms": "SMS"}.get(row.wanted or "", "message")
            return (
                f"not attributable: no {message} of campaign {campaign} was sent to record "
                f"{record} before {clock.aware(row.at).isoformat()}"
            )
        if row.message_id:
            self.done.unknown += 1
            return f"unknown: message {_quoted(row.message_id)} is not in the store"
        if row.record_name and row.record_id is None:
            self.done.unknown += 1
            if row.audience:
                return f"unknown: audience {_quoted(row.audience)} has no record {record}"
            return (
                f"unknown: no single record has the key {record} "
                "(none, or one in several audiences: add `audience`)"
            )
        return None


def _suppression(
    row: Any, reason: SuppressionReason, region: str, chosen: Any = None
) -> SuppressionEntry | None:
    """The suppression an event calls for, on its address (normalised); None without one.
    An unsubscribe or STOP is for the campaign's category, or the one its `data.category`
    names (the preference centre's choice)."""
    channel = str(Channel.SMS) if reason == SuppressionReason.SMS_STOP else row.channel
    if not row.address or not channel:
        return None
    try:
        if channel == Channel.EMAIL:
            normal = normalize_email(row.address).lower()
        else:
            normal = normalize_phone(row.address, region)
    except ValueProblem:
        return None
    per_category = reason in (SuppressionReason.UNSUBSCRIBED, SuppressionReason.SMS_STOP)
    category = (
        (chosen if isinstance(chosen, str) and chosen else row.category) if per_category else None
    )
    return SuppressionEntry(Channel(channel), normal, category, reason, f"event:{row.id}")


def record_events(
    conn: Connection,
    events: Iterable[Incoming],
    *,
    now: datetime | None = None,
    region: str = "FR",
    listed: int | None = None,
) -> Recording:
    """Record a batch of events in the caller's transaction; idempotent by event id.

    Adds the suppressions hard bounces, complaints, unsubscribes and STOP replies call
    for. Lists at most `listed` uncounted events (all are counted). Counts are exact when
    writers overlap: an event counts as recorded only when its row was inserted
    (INSERT … ON CONFLICT DO NOTHING RETURNING).
    """
    now = (now or clock.now()).astimezone(UTC)
    recorder = _Recorder(conn, now)
    recorder.stage(_prepare(list(events), now, conn.dialect))
    return recorder.flush(listed, region)


def record_event(
    conn: Connection,
    event: Event,
    event_id: str,
    *,
    now: datetime | None = None,
    region: str = "FR",
) -> Recording:
    """Record one event in the caller's transaction: `record_events` of one."""
    return record_events(conn, [Incoming(event, event_id)], now=now, region=region)


@dataclass
class IngestSummary:
    """The figures `events ingest` prints (and --json)."""

    read: int = 0  # non-blank lines
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0  # recorded, but naming a message or record the store does not know
    unattributed: int = 0  # recorded, but no message of its campaign reached its record before
    bad_lines: int = 0  # refused: unreadable, out of bounds, or a time outside the window
    suppressions_added: int = 0
    suppressions: list[str] = field(default_factory=list)  # the first LISTED
    problems: list[LineProblem] = field(default_factory=list)  # the first LISTED
    not_counted: list[LineProblem] = field(default_factory=list)  # the first LISTED

    def add(self, done: Recording) -> None:
        self.recorded += done.recorded
        self.duplicates += done.duplicates
        self.unknown += done.unknown
        self.unattributed += done.unattributed
        self.bad_lines += len(done.refused)
        self.suppressions_added += len(done.suppressions)
        _extend(self.problems, done.refused)
        self.problems.sort(key=lambda p: p.line)
        _extend(self.not_counted, done.not_counted)
        _extend(self.suppressions, done.suppressions)

    def refuse(self, problem: LineProblem) -> None:
        self.bad_lines += 1
        _extend(self.problems, [problem])

    def unlisted(self) -> list[str]:
        """What the lists leave out (they keep the first LISTED of each)."""
        more = [
            (self.bad_lines - len(self.problems), "bad line(s) skipped"),
            (self.unknown + self.unattributed - len(self.not_counted), "event(s) not counted"),
            (self.suppressions_added - len(self.suppressions), "suppression(s) added"),
        ]
        return [f"{n} more {what}, not listed" for n, what in more if n > 0]

    def check(self) -> None:
        """InputError (exit 65) when there were lines and not one could be read: the input is
        not an event file at all. Some bad lines among good ones are reported, not fatal."""
        if self.read and self.bad_lines == self.read:
            first = self.problems[0]
            raise InputError(
                f"none of the {self.read} line(s) is an event (line {first.line}: {first.message})",
                hint='each line is a JSON object such as {"type": "opened", "message_id": "..."}',
            )

    def text(self) -> str:
        return (
            f"read {self.read} line(s): {self.recorded} recorded, {self.duplicates} already "
            f"recorded, {self.unknown} for an unknown message or record, {self.unattributed} "
            f"not attributable to a message, {self.bad_lines} bad line(s) skipped; "
            f"{self.suppressions_added} suppression(s) added"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "read": self.read,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "unattributed": self.unattributed,
            "bad_lines": self.bad_lines,
            "suppressions_added": self.suppressions_added,
            "suppressions": self.suppressions,
            "problems": [{"line": p.line, "message": p.message} for p in self.problems],
            "not_counted": [{"line": p.line, "message": p.message} for p in self.not_counted],
        }


def _extend(into: list, more: Sequence) -> None:
    into.extend(more[: max(LISTED - len(into), 0)])


@dataclass
class _Read:
    """A batch of events read from the stream and prepared, with the lines read and refused
    on the way."""

    events: _Prepared
    read: int
    refused: list[LineProblem]


def _batches(stream: IO[bytes], now: datetime, store: Store) -> Iterator[_Read]:
    """The stream's events, BATCH_SIZE at a time, each with the bad lines met before it,
    those naming a message in the store linked to it (`_link`)."""
    dialect = store.engine.dialect
    at = store_events.bind_processor("at", dialect)
    received = at(now) if at else now

    def prepared(batch: list[Incoming]) -> _Prepared:
        events = _prepare(batch, now, dialect)
        with store.read() as conn:
            _link(events, conn, received)
        return events

    batch: list[Incoming] = []
    read, refused = 0, []
    for number, raw in numbered_lines(stream):
        item = read_event(number, raw)
        if item is None:
            continue
        read += 1
        if isinstance(item, LineProblem):
            refused.append(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            yield _Read(prepared(batch), read, refused)
            batch, read, refused = [], 0, []
    if batch or read:
        yield _Read(prepared(batch), read, refused)


def _read_ahead(items: Iterator[_Read], store: Store) -> Iterator[_Read]:
    """The items, each read while the caller stores the one before: by a child process on
    Linux when there are more than two batches (a thread would share the interpreter's
    lock with the caller: the store's work, which lets go of it row by row, and the
    reading, Python through and through, would take turns instead of running side by
    side), else in a thread. One batch at most is read ahead (the pipe holds it)."""
    first = next(items, None)
    second = next(items, None) if first is not None else None
    if second is None:
        yield from [first] if first is not None else []
        return
    if sys.platform.startswith("linux"):
        # forked before the caller's first transaction: the child holds no lock of it
        rest = _from_child(items, store)
        yield first
        yield second
        yield from rest
        return
    yield first
    yield second
    with ThreadPoolExecutor(1, thread_name_prefix="events-read") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _from_child(items: Iterator[_Read], store: Store) -> Iterator[_Read]:
    """The rest of `items`, read by a child forked at once (it goes on with its copy of
    the iterator, stream included; this process never reads it again). The child reads the
    store through connections of its own."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_read_in_child,
        args=(items, sender, os.getpid(), store),
        name="events-read",
        daemon=True,
    )
    child.start()
    sender.close()
    return _received(child, receiver)


def _received(child: Any, receiver: Any) -> Iterator[_Read]:
    """What the child sends, until its None. A thread takes it off the pipe as it comes,
    AHEAD batches at most: the child reads on while this process records what it staged
    (else each would wait for the other in turn)."""
    ahead: queue.Queue[Any] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def take() -> None:
        message: Any = None
        while not stop.is_set():
            try:
                message = receiver.recv()
            except Exception:  # EOFError: the child ended; OSError: closed below
                message = EOFError
            while not stop.is_set():
                try:
                    ahead.put(message, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if message is None or message is EOFError or isinstance(message, str):
                return

    taker = threading.Thread(target=take, name="events-receive", daemon=True)
    taker.start()
    try:
        while True:
            message = ahead.get()
            if message is EOFError:
                raise RuntimeError(f"the events reading process ended ({child.exitcode})")
            if message is None:
                return
            if isinstance(message, str):  # what went wrong there
                raise RuntimeError(f"the events reading process failed:\n{message}")
            yield message
    finally:
        stop.set()
        receiver.close()  # a child still sending stops at once (broken pipe)
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)
        taker.join(5)


def _read_in_child(items: Iterator[_Read], sender: Any, parent: int, store: Store) -> None:
    """In the forked child: send each batch, then None (or the traceback, a str)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    bind_to_parent(parent)
    store.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    try:
        for item in items:
            sender.send(item)
        sender.send(None)
    except BrokenPipeError:  # the parent stopped listening
        pass
    except BaseException:
        sender.send(traceback.format_exc())
    finally:
        sender.close()
        store.engine.dispose()


def ingest_events(
    store: Store, stream: IO[bytes], *, region: str = "FR", now: datetime | None = None
) -> IngestSummary:
    """Record every event of a JSON-lines byte stream; bad lines are counted (the first
    LISTED kept) and skipped. BATCH_SIZE lines at a time are read, and those naming a
    message in the store linked to it (`_link`), by the reading process; the others are
    staged and resolved in the write transaction, which records what came (FLUSH_ROWS
    events, or what came in TRANSACTION_SECONDS) at once, in one sorted pass over the
    event table's indexes, then commits. A sender waiting for SQLite's write lock (10 s at
    most) is never kept out for long.

    Never raises for bad lines: `summary.check()` does, when none could be read.
    """
    summary = IngestSummary()
    now = (now or clock.now()).astimezone(UTC)
    batches = _read_ahead(_batches(stream, now, store), store)
    batch = next(batches, None)
    while batch is not None:
        with store.transaction(immediate=True) as conn:
            if store.dialect == "sqlite":
                # each event adds an entry to three indexes: with SQLite's default 2 MiB page
                # cache their pages are written out and read back again and again; the
                # connection keeps the larger cache afterwards
                conn.exec_driver_sql(f"PRAGMA cache_size = -{INGEST_CACHE_KIB}")
            recorder = _Recorder(conn, now)
            started = time.monotonic()
            while batch is not None:
                summary.read += batch.read
                for problem in batch.refused:
                    summary.refuse(problem)
                recorder.stage(batch.events)
                batch = next(batches, None)
                if recorder.size >= FLUSH_ROWS or time.monotonic() - started >= TRANSACTION_SECONDS:
                    break
            summary.add(recorder.flush(LISTED - len(summary.not_counted), region))
    return summary
