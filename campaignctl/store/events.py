"""Events in the store: the one writer every producer's events go through.

`events.record.record_events` (what `events ingest`, the send engine and the web side
call) reads and checks the events, then stages them here in a temporary batch table;
`resolve` links each newly staged one to its message (or its record's latest message),
and `record_once` inserts those staged not recorded before, idempotent by event id,
whoever wrote them first. Each step is a few set-based statements whatever the batch's
size. A big ingest stages several batches (resolving each as it comes) before one
`record_once`: the event table's indexes then take the rows in one sorted pass, which
costs far less than one pass per small batch. An ingest links most events (those naming
a message, with no side effect) before its write transaction and inserts them with one
executemany (`messages`, `insert_linked`): the batch table is for the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from campaignctl.enums import OutboxState
from campaignctl.store.tables import JSONType

# a message the event may be about: one that went out
_SENT = "(" + ", ".join(f"'{state.value}'" for state in OutboxState.received()) + ")"

# One row per event of the batch being recorded: a temporary table (per connection), emptied
# before each batch and, on PostgreSQL, at commit.
BATCH = sa.Table(
    "event_batch",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line", sa.Integer),  # in the file, or the place in the batch from 1
    sa.Column("id", sa.String),
    sa.Column("type", sa.String),
    sa.Column("message_id", sa.String),
    sa.Column("campaign", sa.String),
    sa.Column("record", sa.String),
    sa.Column("audience", sa.String),  # events about a record alone: its audience, if given
    sa.Column("address", sa.String),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("data", JSONType),
    sa.Column("channel", sa.String),  # as far as the event itself tells
    sa.Column("wanted", sa.String),  # the channel of the message it may be attributed to
    sa.Column("effect", sa.String),  # the suppression it calls for
    sa.Column("outbox_id", sa.Integer),
    sa.Column("campaign_id", sa.Integer),
    sa.Column("record_id", sa.Integer),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
FILLED = [c.name for c in BATCH.columns][:14]  # the columns written from Python

# Joins of the rows staged since :since, a few statements whatever their number. Each is
# driven by the batch (SQLite's CROSS JOIN keeps the written order, as its planner knows
# nothing of the temporary table and would otherwise scan the whole outbox or recipient
# table for every batch); PostgreSQL, which ANALYZEs the batch, orders them as it likes.
RESOLVE = (
    # the message named by Message-ID, else by the provider's id
    """UPDATE event_batch SET outbox_id = o.id, campaign_id = o.campaign_id,
      record_id = o.record_id
    FROM outbox o WHERE o.message_id = event_batch.message_id AND event_batch.seq >= :since""",
    """UPDATE event_batch SET (outbox_id, campaign_id, record_id) = (
      SELECT o.id, o.campaign_id, o.record_id FROM outbox o
      WHERE o.provider_id = event_batch.message_id ORDER BY o.id LIMIT 1)
    WHERE seq >= :since AND outbox_id IS NULL AND message_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM outbox o WHERE o.provider_id = event_batch.message_id)""",
    # an event about a record alone (document_received…): the only record with that key
    # (in its audience, when the event names one)
    """UPDATE event_batch SET record_id = (
      SELECT MIN(r.id) FROM record r
      WHERE r.key = event_batch.record
        AND (event_batch.audience IS NULL OR r.audience = event_batch.audience)
      GROUP BY r.key HAVING COUNT(*) = 1)
    WHERE event_batch.seq >= :since
      AND event_batch.campaign IS NULL AND event_batch.record IS NOT NULL
      AND event_batch.outbox_id IS NULL AND event_batch.message_id IS NULL""",
    # else the campaign by name, and the record by key: the only record with that key,
    # else (a key in several audiences) the one the campaign's latest lock reached
    """UPDATE event_batch SET campaign_id = c.id FROM campaign c
    WHERE c.name = event_batch.campaign AND event_batch.seq >= :since
      AND event_batch.outbox_id IS NULL AND event_batch.record IS NOT NULL""",
    """UPDATE event_batch SET record_id = single.id
    FROM (SELECT r.key, MIN(r.id) AS id FROM record r
          WHERE r.key IN (SELECT record FROM event_batch WHERE seq >= :since
                          AND outbox_id IS NULL AND campaign_id IS NOT NULL)
          GROUP BY r.key HAVING COUNT(*) = 1) AS single
    WHERE single.key = event_batch.record AND event_batch.seq >= :since
      AND event_batch.outbox_id IS NULL AND event_batch.campaign_id IS NOT NULL""",
    """WITH reached AS (
      SELECT b.seq, r.id,
        ROW_NUMBER() OVER (PARTITION BY b.seq ORDER BY l.id DESC, r.id) AS n
      FROM event_batch b CROSS JOIN record r CROSS JOIN recipient rc CROSS JOIN campaign_lock l
      WHERE r.key = b.record AND rc.record_id = r.id AND l.id = rc.lock_id
        AND l.campaign_id = b.campaign_id AND b.seq >= :since AND b.outbox_id IS NULL
        AND b.campaign_id IS NOT NULL AND b.record IS NOT NULL
        AND b.record_id IS NULL
    )
    UPDATE event_batch SET record_id = reached.id FROM reached
    WHERE reached.seq = event_batch.seq AND reached.n = 1""",
    # a record's latest message of the campaign sent before the event: its own, or the
    # grouped email that listed it
    f"""WITH candidate AS (
      SELECT b.seq, m.id, m.sent_at FROM event_batch b CROSS JOIN outbox m
      WHERE m.record_id = b.record_id AND m.campaign_id = b.campaign_id
        AND b.seq >= :since AND b.outbox_id IS NULL
        AND b.record_id IS NOT NULL
        AND m.state IN {_SENT} AND m.sent_at <= b.at
        AND (b.wanted IS NULL OR m.channel = b.wanted)
      UNION ALL
      SELECT b.seq, m.id, m.sent_at
      FROM event_batch b CROSS JOIN recipient rc CROSS JOIN wave w CROSS JOIN outbox m
      WHERE rc.record_id = b.record_id AND rc.group_key IS NOT NULL
        AND w.lock_id = rc.lock_id AND w.campaign_id = b.campaign_id
        AND m.campaign_id = b.campaign_id AND m.wave_id = w.id AND m.channel = rc.channel
        AND m.group_key = rc.group_key AND b.seq >= :since AND b.outbox_id IS NULL
        AND b.record_id IS NOT NULL
        AND m.state IN {_SENT} AND m.sent_at <= b.at
        AND (b.wanted IS NULL OR m.channel = b.wanted)
    ), latest AS (
      SELECT seq, id, ROW_NUMBER() OVER (PARTITION BY seq ORDER BY sent_at DESC, id DESC) AS n
      FROM candidate
    )
    UPDATE event_batch SET outbox_id = latest.id FROM latest
    WHERE latest.seq = event_batch.seq AND latest.n = 1""",
)

# The event row's record key, address and channel: the event's own, else its message's,
# else its record's.
TARGET = """COALESCE(r.key, b.record) AS record_key,
      COALESCE(b.address, o.address,
               CASE WHEN b.channel = 'sms' THEN r.phone ELSE r.email_normalized END) AS address,
      COALESCE(o.channel, b.channel, CASE WHEN b.record_id IS NOT NULL THEN 'email' END)
        AS channel
    FROM event_batch b
      LEFT JOIN outbox o ON o.id = b.outbox_id
      LEFT JOIN record r ON r.id = b.record_id"""

INSERT = f"""INSERT INTO event (id, type, message_id, outbox_id, campaign_id, record_id,
      at, data, received_at, record_key, address, channel)
    SELECT b.id, b.type, b.message_id, b.outbox_id, b.campaign_id, b.record_id,
      b.at, b.data, :now, {TARGET}
    WHERE true
    ORDER BY b.outbox_id  -- the indexes on outbox_id, record_id, campaign_id fill in order
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""

# The events that count for no message, or call for a suppression: few, read back, with
# what the event itself said (to tell why it counts for none).
NOTABLE = f"""SELECT b.seq, b.line, b.id, b.type, b.message_id, b.campaign AS campaign_name,
      b.record AS record_name, b.audience, b.wanted, b.effect, b.at, b.data,
      b.campaign_id, b.record_id, b.outbox_id, c.category, {TARGET}
      LEFT JOIN campaign c ON c.id = b.campaign_id
    WHERE b.outbox_id IS NULL OR b.effect IS NOT NULL
    ORDER BY b.seq"""


# An ingest links most events to their message before the write transaction (`messages`,
# outside it, in the reading process) and inserts them straight into the event table with
# one executemany (`insert_linked`), in these columns: the batch table's staging, joins
# and INSERT … SELECT are for the others (no message, or one named by record, or calling
# for a suppression or a response).
LINKED = ("id", "type", "message_id", "outbox_id", "campaign_id", "record_id", "at", "data",
          "received_at", "record_key", "address", "channel")  # fmt: skip

_MESSAGES = """SELECT o.{key}, o.id, o.campaign_id, o.record_id, o.address, o.channel, r.key
    FROM outbox o LEFT JOIN record r ON r.id = o.record_id
    WHERE o.{key} {among}"""


def messages(conn: sa.Connection, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """The messages these ids name, as RESOLVE links them: the outbox row whose Message-ID
    it is, else the first whose SMS provider's id it is. Message id → (outbox id, campaign
    id, record id, address, channel, record key). Read with the driver's cursor: thousands
    of plain tuples, without SQLAlchemy's rows."""
    postgresql = conn.dialect.name == "postgresql"
    # one parameter, whatever the number of ids: an array, or a JSON list on SQLite
    among = "= ANY(%s)" if postgresql else "IN (SELECT value FROM json_each(?))"
    found: dict[str, tuple[Any, ...]] = {}
    wanted = list(ids)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for key, order in (("message_id", ""), ("provider_id", " ORDER BY o.id")):
            if not wanted:
                break
            cursor.execute(
                _MESSAGES.format(key=key, among=among) + order,
                (wanted if postgresql else json.dumps(wanted),),
            )
            for named, *message in cursor.fetchall():
                found.setdefault(named, tuple(message))
            wanted = [i for i in wanted if i not in found]
    finally:
        cursor.close()
    return found


def insert_linked(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert events already linked to their message (the LINKED columns, the type
    processors applied), those recorded before left out (ON CONFLICT DO NOTHING): how
    many were inserted. One executemany of the driver. Raises IntegrityError when a
    message, campaign or record a row names is gone: the caller links them again."""
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    result = conn.exec_driver_sql(
        f"INSERT INTO event ({', '.join(LINKED)}) VALUES ({', '.join([marker] * len(LINKED))}) "
        "ON CONFLICT (id) DO NOTHING",
        rows,
    )
    return result.rowcount


def bind_processor(column: str, dialect: sa.Dialect) -> Any:
    """How the driver wants a value of that batch column (None: as it is). On SQLite,
    `data` is JSON text written by orjson, several times faster than the standard library,
    the same text whoever writes the event (PostgreSQL keeps jsonb in a form of its own)."""
    if column == "data" and dialect.name == "sqlite":
        return json_text
    if column == "at" and dialect.name == "sqlite":
        return sqlite_time
    return BATCH.c[column].type.dialect_impl(dialect).bind_processor(dialect)


def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy keeps on SQLite for a UTC time ("2027-03-01 08:00:00.000000"),
    written by `isoformat`, several times faster than its own % formatting."""
    if value.tzinfo is not None:
        value = (value if value.tzinfo is UTC else value.astimezone(UTC)).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def json_text(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # an integer past 64 bits
        return json.dumps(data, ensure_ascii=False)


def stage(conn: sa.Connection, rows: Sequence[tuple[Any, ...]], *, fresh: bool = True) -> None:
    """Add rows to the batch table (created once per connection; emptied first when
    `fresh`) with one executemany (SQLite) or COPY (PostgreSQL) of the driver (`rows` are
    the FILLED columns, the columns' type processors already applied), without
    SQLAlchemy's per-row machinery."""
    conn.execute(sa.schema.CreateTable(BATCH, if_not_exists=True))
    if fresh:
        conn.execute(sa.delete(BATCH))
    if conn.dialect.name == "postgresql":
        # COPY: an INSERT per row costs PostgreSQL ten times as much
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY event_batch ({', '.join(FILLED)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # nothing gathers statistics on a temporary table: without them PostgreSQL
        # takes the batch for a few rows and joins it by nested loops
        conn.exec_driver_sql("ANALYZE event_batch")
        return
    conn.exec_driver_sql(
        f"INSERT INTO event_batch ({', '.join(FILLED)}) VALUES ({', '.join(['?'] * len(FILLED))})",
        rows,
    )


def resolve(conn: sa.Connection, since: int = 0) -> None:
    """Link each event staged from place `since` on to its message, campaign and record
    (see RESOLVE)."""
    for statement in RESOLVE:
        conn.execute(sa.text(statement), {"since": since})


def batch_campaign_ids(conn: sa.Connection, since: int = 0) -> set[int]:
    """The campaigns the events staged from place `since` on name."""
    return set(
        conn.execute(
            sa.text(
                "SELECT DISTINCT campaign_id FROM event_batch "
                "WHERE seq >= :since AND campaign_id IS NOT NULL"
            ),
            {"since": since},
        ).scalars()
    )


def campaigns(conn: sa.Connection, ids: set[int]) -> list[Any]:
    """(id, name, first_sent_at, applied_at) of these campaigns."""
    if not ids:
        return []
    return conn.execute(
        sa.text(
            "SELECT id, name, first_sent_at, applied_at FROM campaign WHERE id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True)),
        {"ids": sorted(ids)},
    ).all()


def batch_campaign_of(conn: sa.Connection, since: int = 0) -> list[Any]:
    """(seq, campaign id, line, id, at) of the events staged from place `since` on, linked
    to a campaign."""
    return conn.execute(
        sa.text(
            "SELECT seq, campaign_id, line, id, at FROM event_batch "
            "WHERE seq >= :since AND campaign_id IS NOT NULL"
        ),
        {"since": since},
    ).all()


def drop_from_batch(conn: sa.Connection, seqs: Sequence[int]) -> None:
    """Leave these staged events out (refused): they will not be recorded."""
    if seqs:
        conn.execute(
            sa.text("DELETE FROM event_batch WHERE seq IN :early").bindparams(
                sa.bindparam("early", expanding=True)
            ),
            {"early": list(seqs)},
        )


def record_once(conn: sa.Connection, now: datetime) -> set[str]:
    """Insert the staged events not recorded before (INSERT … ON CONFLICT DO NOTHING
    RETURNING): the ids inserted. Exact when writers overlap: an event counts as recorded
    only when its row was inserted by this call."""
    insert = sa.text(INSERT).bindparams(sa.bindparam("now", type_=BATCH.c.at.type))
    return set(conn.execute(insert, {"now": now}).scalars().all())


def notable(conn: sa.Connection) -> list[Any]:
    """The staged events that count for no message, or call for a suppression (few), with
    their record key, address, channel and campaign category."""
    return conn.execute(sa.text(NOTABLE)).all()


def staged_answers(conn: sa.Connection) -> list[Any]:
    """The staged `form_submitted` events that name their campaign and record: (id,
    campaign_id, record_id, outbox_id, data, at), for the responses they make."""
    return list(
        conn.execute(
            sa.text(
                "SELECT id, campaign_id, record_id, outbox_id, data, at FROM event_batch "
                "WHERE type = 'form_submitted' AND campaign_id IS NOT NULL "
                "AND record_id IS NOT NULL ORDER BY seq"
            )
        )
    )


# The web side's opens and clicks (serve's `/o/` and `/c/`): each names a Message-ID its
# signed link carried, so it is inserted straight from that outbox row, one prepared
# statement for the whole batch, as `record_events` would have recorded it (record key,
# address and channel of the message; no suppression, no response). A hit whose
# Message-ID matches no outbox row inserts nothing here: the caller records it through
# `record_events`, which says why it counts for no message.
HIT = """INSERT INTO event (id, type, message_id, outbox_id, campaign_id, record_id,
      at, data, received_at, record_key, address, channel)
    SELECT {p}, {p}, o.message_id, o.id, o.campaign_id, o.record_id, {p}, {p}, {p},
      r.key, o.address, o.channel
    FROM outbox o LEFT JOIN record r ON r.id = o.record_id
    WHERE o.message_id = {p}
    ON CONFLICT (id) DO NOTHING"""


def record_hits(conn: sa.Connection, hits: Sequence[tuple[Any, ...]], now: datetime) -> set[str]:
    """Insert `hits`, (id, type, message_id, at, data) each, from their messages' outbox
    rows (one executemany of the driver); the ids that found no message (not inserted)."""
    dialect = conn.dialect
    at = bind_processor("at", dialect)
    data = bind_processor("data", dialect)
    received = at(now) if at else now  # as every writer stores a time (text on SQLite)
    rows = [
        (
            id_,
            type_,
            at(when) if at else when,
            (data(value) if data else value) if value else None,
            received,
            message_id,
        )
        for id_, type_, message_id, when, value in hits
    ]
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(HIT.format(p=marker), rows)
        inserted = cursor.rowcount
    finally:
        cursor.close()
    if inserted == len(rows):
        return set()
    ids = [h[0] for h in hits]
    found = conn.execute(
        sa.text("SELECT id FROM event WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        ),
        {"ids": ids},
    )
    return set(ids) - set(found.scalars())
