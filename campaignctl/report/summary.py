"""The report's summary: counters `report` brings up to date itself before reading (SQLite).

Aggregating a million messages and three million events takes seconds; the
summary keeps the same figures as counters and per-record sets, and each report
first adds what changed since the previous one (revision 0004):

- events are only ever added: those with a rowid above `report_mark.event_mark`
  are new. Each message event sets one bit of its message in `report_message.flags`
  (an email opened five times sets the "opened" bit once); each record event adds
  its record to the sets of its campaign, of the wave and of the segment × channel
  cell of the message it belongs to (`report_seen`), and a record new to a set adds
  one to that set's counter (`report_count`); the first answer of each record is
  kept per campaign (`report_first_answer`).
- an outbox row is counted once it reaches a final state (sent, bounced, failed,
  suppressed, skipped): the send engine never moves a row out of them. Its message
  goes into the counter of its (wave, segment, channel, state, event bits) key in
  `report_cell` (a later event moves it to the key of its new bits), and its
  records into the sets of records targeted and contacted. Rows become final only
  in waves that still had queued, sending or uncertain rows (`report_open_wave`)
  or that got new rows (an id above `report_mark.outbox_mark`), so only those
  waves are looked at again.
- rows not final yet (queued, sending, uncertain) are few and read live.

The last step of the refresh and the reading run in one transaction that holds
SQLite's write lock, so no event or send slips between them; a long backlog (the
first report after the upgrade reads every row) goes first in steps of a few
seconds each, in transactions of their own. The figures are exactly those
of the full aggregation in figures.py (a test compares them as events and sends
arrive), with one assumption the full aggregation does not make: an answer or
unsubscribe that does not name its message belongs to the last message sent to
its record before it, as known when `report` first sees the event (a message
sent afterwards with an earlier send time would not take it over).

PostgreSQL stores use the full aggregation: event ids there have no order that
tells what was added since a given moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from campaignctl.enums import OutboxState
from campaignctl.events.model import soft_bounce

FINAL = ("sent", "bounced", "failed", "suppressed", "skipped")  # rows never leave these
# the other states (queued, sending, uncertain, and any added later): read live
OPEN = tuple(s.value for s in OutboxState if s.value not in FINAL)
SENT = ("sent", "bounced")
SET_ASIDE = ("suppressed", "skipped")
# one bit per kind of message event
DELIVERED, SMS_DELIVERED, OPENED, CLICKED, SMS_FAILED, HARD, SOFT = 1, 2, 4, 8, 16, 32, 64
NO_RECORD = -1  # the one "record" of messages whose record was deleted (the full count's NULL)
# record event type -> the sets it adds its record to
RECORD_CLASSES = (
    ("form_opened", "form_opened"),
    ("form_submitted", "form_opened"),  # nobody submits a form without opening it
    ("form_submitted", "answered"),
    ("unsubscribed", "unsubscribed"),
    ("complained", "complained"),
)
_TEMP = ("rs_bits", "rs_moved", "rs_revents", "rs_cand", "rs_waves", "rs_fresh", "rs_behind")


def supported(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _run(conn: Connection, sql: str, **params: object) -> None:
    conn.execute(sa.text(sql), params)


# At most this many events and outbox ids per refresh transaction: a first refresh over
# millions of rows (or a long backlog) goes in steps of a few seconds, so that a sender
# waiting for the write lock (busy timeout: 10 s) never gives up.
EVENT_STEP = 100_000
OUTBOX_STEP = 50_000


def refresh(conn: Connection, *, events: int = EVENT_STEP, rows: int = OUTBOX_STEP) -> bool:
    """Add what changed since the last refresh, at most `events` events and `rows` outbox
    ids; True when the summary is up to date (False: call again, in a new transaction)."""
    mark = conn.execute(
        sa.text("SELECT event_mark, outbox_mark FROM report_mark WHERE id = 1")
    ).first()
    event_mark, outbox_mark = (int(mark[0]), int(mark[1])) if mark else (0, 0)
    last_event = int(conn.execute(sa.text("SELECT COALESCE(MAX(rowid), 0) FROM event")).scalar())
    last_outbox = int(conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM outbox")).scalar())
    new_events = min(last_event, event_mark + events)
    new_outbox = min(last_outbox, outbox_mark + rows)
    for name in _TEMP:
        _run(conn, f"DROP TABLE IF EXISTS temp.{name}")
    if new_events > event_mark:
        _events(conn, event_mark, new_events)
    _outbox(conn, outbox_mark, new_outbox)
    _run(
        conn,
        "INSERT INTO report_mark (id, event_mark, outbox_mark) VALUES (1, :e, :o) "
        "ON CONFLICT (id) DO UPDATE SET event_mark = excluded.event_mark, "
        "outbox_mark = excluded.outbox_mark",
        e=new_events,
        o=new_outbox,
    )
    for name in _TEMP:
        _run(conn, f"DROP TABLE IF EXISTS temp.{name}")
    return (new_events, new_outbox) == (last_event, last_outbox)


def _events(conn: Connection, low: int, high: int) -> None:
    new = "e.rowid > :low AND e.rowid <= :high"
    # the bits the new events set, per message
    _run(
        conn,
        f"""CREATE TEMP TABLE rs_bits AS
        SELECT outbox_id, SUM(DISTINCT bit) AS bits FROM (
          SELECT e.outbox_id, CASE e.type WHEN 'delivered' THEN {DELIVERED}
            WHEN 'sms_delivered' THEN {SMS_DELIVERED} WHEN 'opened' THEN {OPENED}
            WHEN 'clicked' THEN {CLICKED} WHEN 'sms_failed' THEN {SMS_FAILED}
            ELSE CASE WHEN {soft_bounce("sqlite")} THEN {SOFT} ELSE {HARD} END END AS bit
          FROM event e WHERE {new} AND e.outbox_id IS NOT NULL AND e.type IN
            ('delivered', 'sms_delivered', 'opened', 'clicked', 'sms_failed', 'bounced'))
        GROUP BY outbox_id""",
        low=low,
        high=high,
    )
    # messages already counted whose bits change move from one key to another
    _run(
        conn,
        """CREATE TEMP TABLE rs_moved AS
        SELECT o.campaign_id, o.wave_id, COALESCE(o.segment, '') AS segment, o.channel, o.state,
          COALESCE(o.sms_parts, 0) AS sms_parts, m.flags AS old, m.flags | b.bits AS new
        FROM rs_bits b JOIN report_message m ON m.outbox_id = b.outbox_id
        JOIN outbox o ON o.id = b.outbox_id
        WHERE m.counted = 1 AND (m.flags | b.bits) != m.flags""",
    )
    _run(
        conn,
        """UPDATE report_cell SET messages = report_cell.messages - d.n,
          sms_parts = report_cell.sms_parts - d.parts
        FROM (SELECT wave_id, segment, channel, state, old, COUNT(*) AS n,
                SUM(sms_parts) AS parts
              FROM rs_moved GROUP BY wave_id, segment, channel, state, old) AS d
        WHERE report_cell.wave_id = d.wave_id AND report_cell.segment = d.segment
          AND report_cell.channel = d.channel AND report_cell.state = d.state
          AND report_cell.flags = d.old""",
    )
    _add_cells(conn, "rs_moved", "new")
    _run(
        conn,
        """INSERT INTO report_message (outbox_id, flags, counted)
        SELECT outbox_id, bits, 0 FROM rs_bits WHERE true
        ON CONFLICT (outbox_id) DO UPDATE SET flags = report_message.flags | excluded.flags""",
    )
    # record events: the message each belongs to (named, or the last sent before it)
    _run(
        conn,
        f"""CREATE TEMP TABLE rs_revents AS
        SELECT e.type, e.campaign_id, e.record_id,
          COALESCE(e.outbox_id, (
            SELECT m.id FROM outbox m
            WHERE m.campaign_id = e.campaign_id AND m.record_id = e.record_id
              AND m.state IN {_in(SENT)} AND m.sent_at <= e.at
            ORDER BY m.sent_at DESC, m.id DESC LIMIT 1)) AS outbox_id
        FROM event e WHERE {new} AND e.campaign_id IS NOT NULL
          AND e.type IN ('form_opened', 'form_submitted', 'unsubscribed', 'complained')""",
        low=low,
        high=high,
    )
    classes = " UNION ALL ".join(f"SELECT '{t}' AS type, '{c}' AS cls" for t, c in RECORD_CLASSES)
    _run(conn, "CREATE TEMP TABLE rs_cand (campaign_id INTEGER, scope TEXT, record_id INTEGER)")
    _run(
        conn,
        f"""INSERT INTO rs_cand
        SELECT r.campaign_id, k.cls, r.record_id FROM rs_revents r JOIN ({classes}) k
          ON k.type = r.type WHERE r.record_id IS NOT NULL
        UNION ALL
        SELECT r.campaign_id, k.cls || '|w|' || o.wave_id, COALESCE(r.record_id, o.record_id)
        FROM rs_revents r JOIN ({classes}) k ON k.type = r.type JOIN outbox o ON o.id = r.outbox_id
        WHERE COALESCE(r.record_id, o.record_id) IS NOT NULL
        UNION ALL
        SELECT r.campaign_id, k.cls || '|c|' || COALESCE(o.segment, '') || '|' || o.channel,
          COALESCE(r.record_id, o.record_id)
        FROM rs_revents r JOIN ({classes}) k ON k.type = r.type JOIN outbox o ON o.id = r.outbox_id
        WHERE COALESCE(r.record_id, o.record_id) IS NOT NULL""",
    )
    _add_records(conn)
    _run(
        conn,
        f"""INSERT INTO report_first_answer (campaign_id, answer_key, first_at)
        SELECT e.campaign_id, COALESCE(CAST(e.record_id AS TEXT), e.id), MIN(e.at)
        FROM event e WHERE {new} AND e.campaign_id IS NOT NULL AND e.type = 'form_submitted'
        GROUP BY e.campaign_id, COALESCE(CAST(e.record_id AS TEXT), e.id)
        ON CONFLICT (campaign_id, answer_key)
        DO UPDATE SET first_at = MIN(report_first_answer.first_at, excluded.first_at)""",
        low=low,
        high=high,
    )


def _add_cells(conn: Connection, source: str, flags: str) -> None:
    _run(
        conn,
        f"""INSERT INTO report_cell
          (campaign_id, wave_id, segment, channel, state, flags, messages, sms_parts)
        SELECT campaign_id, wave_id, segment, channel, state, {flags}, COUNT(*), SUM(sms_parts)
        FROM {source} WHERE true GROUP BY campaign_id, wave_id, segment, channel, state, {flags}
        ON CONFLICT (wave_id, segment, channel, state, flags) DO UPDATE SET
          messages = report_cell.messages + excluded.messages,
          sms_parts = report_cell.sms_parts + excluded.sms_parts""",
    )
    _run(conn, "DELETE FROM report_cell WHERE messages = 0")


def _add_records(conn: Connection) -> None:
    """Add the records of rs_cand to their sets; each one new to a set counts one more."""
    _run(
        conn,
        """INSERT INTO report_count (campaign_id, scope, n)
        SELECT campaign_id, scope, COUNT(*) FROM (
          SELECT DISTINCT campaign_id, scope, record_id FROM rs_cand) AS c
        WHERE NOT EXISTS (SELECT 1 FROM report_seen s WHERE s.campaign_id = c.campaign_id
                            AND s.scope = c.scope AND s.record_id = c.record_id)
        GROUP BY campaign_id, scope
        ON CONFLICT (campaign_id, scope) DO UPDATE SET n = report_count.n + excluded.n""",
    )
    _run(
        conn,
        "INSERT OR IGNORE INTO report_seen (campaign_id, scope, record_id) "
        "SELECT DISTINCT campaign_id, scope, record_id FROM rs_cand",
    )
    _run(conn, "DELETE FROM rs_cand")


def _outbox(conn: Connection, low: int, high: int) -> None:
    # the waves where rows may have become final: open last time, or with new rows (a wave
    # with rows above `high` too is looked at again when the mark gets there)
    _run(
        conn,
        """CREATE TEMP TABLE rs_waves AS
        SELECT wave_id FROM report_open_wave
        UNION SELECT DISTINCT wave_id FROM outbox WHERE id > :low AND id <= :high""",
        low=low,
        high=high,
    )
    # a wave whose final rows are as many as those counted has no newly final row
    # (an index-only count, far cheaper than looking for the uncounted rows)
    _run(
        conn,
        f"""DELETE FROM rs_waves WHERE wave_id IN (
          SELECT f.wave_id FROM (
            SELECT o.wave_id, COUNT(*) AS n FROM outbox o INDEXED BY ix_outbox_claim
            WHERE o.wave_id IN (SELECT wave_id FROM rs_waves) AND o.state IN {_in(FINAL)}
            GROUP BY o.wave_id) AS f
          JOIN (SELECT wave_id, SUM(messages) AS n FROM report_cell
                WHERE wave_id IN (SELECT wave_id FROM rs_waves) GROUP BY wave_id) AS c
            ON c.wave_id = f.wave_id AND c.n = f.n)
          AND EXISTS (SELECT 1 FROM outbox o WHERE o.wave_id = rs_waves.wave_id
                        AND o.state IN {_in(OPEN)})""",
    )
    _run(
        conn,
        f"""CREATE TEMP TABLE rs_fresh AS
        SELECT o.id, o.campaign_id, o.wave_id, o.record_id, o.group_key,
          COALESCE(o.segment, '') AS segment, o.channel, o.state,
          COALESCE(o.sms_parts, 0) AS sms_parts, COALESCE(m.flags, 0) AS flags
        FROM outbox o INDEXED BY ix_outbox_claim LEFT JOIN report_message m ON m.outbox_id = o.id
        WHERE o.wave_id IN (SELECT wave_id FROM rs_waves) AND o.state IN {_in(FINAL)}
          AND COALESCE(m.counted, 0) = 0""",
    )
    _add_cells(conn, "rs_fresh", "flags")
    # the records behind each message: its own, and those of its group in the wave's lock
    _run(
        conn,
        """CREATE TEMP TABLE rs_behind AS
        SELECT f.campaign_id, f.wave_id, f.segment, f.channel, f.state, f.record_id AS own,
          rc.record_id AS member
        FROM rs_fresh f JOIN wave w ON w.id = f.wave_id
        LEFT JOIN recipient rc ON rc.lock_id = w.lock_id AND rc.channel = f.channel
          AND rc.group_key = f.group_key""",
    )
    _run(
        conn,
        "CREATE TEMP TABLE IF NOT EXISTS rs_cand "
        "(campaign_id INTEGER, scope TEXT, record_id INTEGER)",
    )
    targeted, sent = f"state NOT IN {_in(SET_ASIDE)}", f"state IN {_in(SENT)}"
    _run(
        conn,
        f"""INSERT INTO rs_cand
        SELECT campaign_id, 'targeted', COALESCE(own, {NO_RECORD}) FROM rs_behind WHERE {targeted}
        UNION ALL SELECT campaign_id, 'targeted', member FROM rs_behind
          WHERE {targeted} AND member IS NOT NULL
        UNION ALL SELECT campaign_id, 'contacted', COALESCE(own, {NO_RECORD}) FROM rs_behind
          WHERE {sent}
        UNION ALL SELECT campaign_id, 'contacted', member FROM rs_behind
          WHERE {sent} AND member IS NOT NULL
        UNION ALL SELECT campaign_id, 'contacted|w|' || wave_id, COALESCE(member, own)
          FROM rs_behind WHERE {sent} AND COALESCE(member, own) IS NOT NULL
        UNION ALL SELECT campaign_id, 'contacted|c|' || segment || '|' || channel,
          COALESCE(member, own)
          FROM rs_behind WHERE {sent} AND COALESCE(member, own) IS NOT NULL""",
    )
    _add_records(conn)
    _run(
        conn,
        """INSERT INTO report_message (outbox_id, flags, counted)
        SELECT id, flags, 1 FROM rs_fresh WHERE true
        ON CONFLICT (outbox_id) DO UPDATE SET counted = 1""",
    )
    _run(conn, "DELETE FROM report_open_wave WHERE wave_id IN (SELECT wave_id FROM rs_waves)")
    _run(
        conn,
        f"""INSERT INTO report_open_wave (wave_id)
        SELECT wave_id FROM rs_waves w WHERE EXISTS (
          SELECT 1 FROM outbox o WHERE o.wave_id = w.wave_id AND o.state IN {_in(OPEN)})""",
    )


# ----------------------------------------------------------------------------- reading


def message_counts(conn: Connection, campaign_id: int) -> dict[tuple, dict[str, int]]:
    """Message figures per (wave, segment, channel): the counters, plus the rows not final."""
    s = _in(SENT)
    hard = f"(state = 'bounced' OR (state IN {s} AND flags & {SMS_FAILED | HARD} != 0))"
    counted = f"""
        SELECT wave_id, segment, channel, 0 AS queued, 0 AS uncertain,
          SUM(CASE WHEN state IN {s} THEN messages ELSE 0 END) AS sent,
          SUM(CASE WHEN state = 'failed' THEN messages ELSE 0 END) AS failed,
          SUM(CASE WHEN state = 'suppressed' THEN messages ELSE 0 END) AS suppressed,
          SUM(CASE WHEN state = 'skipped' THEN messages ELSE 0 END) AS skipped,
          SUM(CASE WHEN state IN {s} AND flags & {DELIVERED | SMS_DELIVERED} != 0
              THEN messages ELSE 0 END) AS delivered,
          SUM(CASE WHEN {hard} THEN messages ELSE 0 END) AS bounced_hard,
          SUM(CASE WHEN state IN {s} AND flags & {SOFT} != 0 AND NOT {hard}
              THEN messages ELSE 0 END) AS bounced_soft,
          SUM(CASE WHEN state IN {s} AND flags & {OPENED} != 0 THEN messages ELSE 0 END)
            AS opened,
          SUM(CASE WHEN state IN {s} AND flags & {CLICKED} != 0 THEN messages ELSE 0 END)
            AS clicked,
          SUM(CASE WHEN state IN {s} THEN sms_parts ELSE 0 END) AS sms_parts,
          SUM(CASE WHEN state IN {s} AND channel = 'email'
              AND flags & {DELIVERED | SMS_DELIVERED} != 0 THEN messages ELSE 0 END)
            AS email_delivered,
          SUM(CASE WHEN state IN {s} AND channel = 'email' THEN messages ELSE 0 END)
            AS email_sent
        FROM report_cell WHERE campaign_id = :c GROUP BY wave_id, segment, channel"""
    live = f"""
        SELECT wave_id, COALESCE(segment, '') AS segment, channel,
          SUM(CASE WHEN state IN ('queued', 'sending') THEN 1 ELSE 0 END) AS queued,
          SUM(CASE WHEN state = 'uncertain' THEN 1 ELSE 0 END) AS uncertain,
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM outbox INDEXED BY ix_outbox_campaign_state
        WHERE campaign_id = :c AND state IN {_in(OPEN)}
        GROUP BY wave_id, COALESCE(segment, ''), channel"""
    out: dict[tuple, dict[str, int]] = {}
    for row in conn.execute(sa.text(f"{counted} UNION ALL {live}"), {"c": campaign_id}).mappings():
        values = list(row.values())
        key = (values[0], values[1] or None, values[2])
        into = out.setdefault(key, dict.fromkeys(list(row.keys())[3:], 0))
        for name, value in list(row.items())[3:]:
            into[name] += int(value or 0)
    return out


def scope_counts(conn: Connection, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """The size of every record set of these campaigns, by scope name."""
    ids = ", ".join(str(int(c)) for c in campaign_ids) or "NULL"
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for cid, scope, n in conn.execute(
        sa.text(f"SELECT campaign_id, scope, n FROM report_count WHERE campaign_id IN ({ids})")
    ):
        out[cid][scope] = int(n)
    return out


def grouped(scopes: dict[str, int], kind: str, level: str) -> dict[tuple, int]:
    """`contacted|w|12` -> {(12,): n}; `answered|c|seg|email` -> {("seg", "email"): n}."""
    out: dict[tuple, int] = {}
    prefix = f"{kind}|{level}|"
    for scope, n in scopes.items():
        if not scope.startswith(prefix):
            continue
        rest = scope[len(prefix) :]
        if level == "w":
            out[(int(rest),)] = n
        else:
            segment, channel = rest.rsplit("|", 1)
            out[(segment or None, channel)] = n
    return out


def per_campaign(conn: Connection, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Records targeted and contacted, messages, emails sent, messages delivered and opened
    (email receipts and opens, whatever the message's state), per campaign."""
    ids = ", ".join(str(int(c)) for c in campaign_ids) or "NULL"
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, messages, email_sent, delivered, opened in conn.execute(
        sa.text(
            f"""SELECT campaign_id,
              SUM(CASE WHEN state NOT IN {_in(SET_ASIDE)} THEN messages ELSE 0 END),
              SUM(CASE WHEN state IN {_in(SENT)} AND channel = 'email' THEN messages ELSE 0 END),
              SUM(CASE WHEN flags & {DELIVERED} != 0 THEN messages ELSE 0 END),
              SUM(CASE WHEN flags & {OPENED} != 0 THEN messages ELSE 0 END)
            FROM report_cell WHERE campaign_id IN ({ids}) GROUP BY campaign_id"""
        )
    ):
        out[cid].update(
            messages=int(messages or 0),
            email_sent=int(email_sent or 0),
            delivered=int(delivered or 0),
            opened=int(opened or 0),
        )
    # rows not final yet: messages, their events, and their records not targeted before
    for cid, messages, delivered, opened in conn.execute(
        sa.text(
            f"""SELECT o.campaign_id, COUNT(*),
              SUM(CASE WHEN COALESCE(m.flags, 0) & {DELIVERED} != 0 THEN 1 ELSE 0 END),
              SUM(CASE WHEN COALESCE(m.flags, 0) & {OPENED} != 0 THEN 1 ELSE 0 END)
            FROM outbox o INDEXED BY ix_outbox_campaign_state
            LEFT JOIN report_message m ON m.outbox_id = o.id
            WHERE o.campaign_id IN ({ids}) AND o.state IN {_in(OPEN)}
            GROUP BY o.campaign_id"""
        )
    ):
        out[cid]["messages"] += int(messages)
        out[cid]["delivered"] += int(delivered or 0)
        out[cid]["opened"] += int(opened or 0)
    for cid, records in conn.execute(
        sa.text(
            f"""SELECT campaign_id, COUNT(*) FROM (
              SELECT o.campaign_id, COALESCE(o.record_id, {NO_RECORD}) AS record_id
              FROM outbox o INDEXED BY ix_outbox_campaign_state
              WHERE o.campaign_id IN ({ids}) AND o.state IN {_in(OPEN)}
              UNION
              SELECT o.campaign_id, rc.record_id
              FROM outbox o INDEXED BY ix_outbox_campaign_state JOIN wave w ON w.id = o.wave_id
              JOIN recipient rc ON rc.lock_id = w.lock_id AND rc.channel = o.channel
                AND rc.group_key = o.group_key
              WHERE o.campaign_id IN ({ids}) AND o.state IN {_in(OPEN)}) AS live
            WHERE NOT EXISTS (SELECT 1 FROM report_seen s WHERE s.campaign_id = live.campaign_id
                                AND s.scope = 'targeted' AND s.record_id = live.record_id)
            GROUP BY campaign_id"""
        )
    ):
        out[cid]["records"] += int(records)
    scopes = scope_counts(conn, ids.split(", ") if ids != "NULL" else [])
    for cid, counts in scopes.items():
        out[cid]["records"] += counts.get("targeted", 0)
        out[cid]["contacted"] += counts.get("contacted", 0)
    return {cid: dict(v) for cid, v in out.items()}
