"""Campaign figures by SQL aggregation over the outbox, the events and the responses (§7).

Every count is computed in the store (GROUP BY, COUNT(DISTINCT …), conditional
sums), a few queries per report; Python only folds the already-aggregated rows
into the report dataclasses. What each figure counts:

- message states (queued, sent, failed, suppressed, skipped) come from the outbox:
  `sent` is every message the transport accepted (outbox state `sent`, or
  `bounced` when a bounce came back afterwards);
- message events (delivered, opened, clicked, bounced) are distinct messages,
  however many events each has (an email opened five times is one open);
  `sms_delivered` counts as delivered and `sms_failed` as a hard bounce;
- record events (form_opened, form_submitted, unsubscribed, complained) are
  distinct records; "form opened" includes the records that submitted (nobody
  submits a form without opening it), so "opened without answering" is exact;
- a record event belongs to the message it names (`outbox_id`) or else to the
  last message the campaign sent that record before the event: an answer after
  a relaunch counts for the relaunch, which is how the effect of each wave shows;
- records contacted are the records behind the messages sent (a grouped email
  lists every record of its `group_key` in the wave's lock);
- answers per day are the first `form_submitted` of each record, per local day.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from campaignctl import clock
from campaignctl.automation.engine import applied_campaign
from campaignctl.automation.figures import step_counts
from campaignctl.clock import aware
from campaignctl.enums import ListStatus, OutboxState, ResponseStatus
from campaignctl.events.model import soft_bounce
from campaignctl.plan.lock import not_contacted_counts
from campaignctl.plan.plan import NotContactedCount
from campaignctl.report import summary
from campaignctl.report.model import (
    CampaignList,
    CampaignListRow,
    CampaignReport,
    DailyAnswers,
    Figures,
    MatrixCell,
    Rate,
    SentWave,
    StepFigures,
    WaveReport,
)
from campaignctl.store import campaigns
from campaignctl.store.tables import CAMPAIGN
from campaignctl.store.wave_state import wave_progress

NEVER_SENT = ListStatus.NEVER_SENT.value

_SENT = tuple(state.value for state in OutboxState.received())
_SET_ASIDE = (OutboxState.SUPPRESSED.value, OutboxState.SKIPPED.value)
_RECORD_EVENTS = ("form_opened", "form_submitted", "unsubscribed", "complained")
# The records behind a message: its record, or every record of its group in the wave's lock.
_BEHIND = (
    "JOIN wave w ON w.id = o.wave_id LEFT JOIN recipient rc ON rc.lock_id = w.lock_id "
    "AND rc.channel = o.channel AND rc.group_key = o.group_key"
)
_RECORD = "COALESCE(rc.record_id, o.record_id)"


@dataclass(frozen=True)
class ListFilter:
    """`report --status --type --since`: which campaigns the list shows."""

    status: str | None = None  # of the last wave, or "never sent"
    type: str | None = None
    since: date | None = None  # a wave sent or scheduled on or after this local day


# ----------------------------------------------------------------------------- SQL pieces


def _in(values: Iterable[str]) -> str:
    """A literal IN list of fixed vocabulary values (enum members, never user input)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _hour(column: str, dialect: str) -> str:
    """The UTC hour an instant falls in, as text `YYYY-MM-DD HH` (folded to local days later)."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"
    return f"strftime('%Y-%m-%d %H', {column})"


def _message_flags(dialect: str) -> str:
    """Per message of campaign :c, which events it has had: one probe of ix_event_campaign
    (campaign, type, message) per type each.

    Probing the index per sent message is three times faster than grouping the campaign's
    events by message and joining the result back.
    """

    def has(condition: str) -> str:
        return (
            f"CASE WHEN o.state IN {_in(_SENT)} AND EXISTS (SELECT 1 FROM event e "
            f"WHERE e.campaign_id = o.campaign_id AND e.outbox_id = o.id AND {condition}) "
            "THEN 1 ELSE 0 END"
        )

    soft = soft_bounce(dialect)
    return f"""
        SELECT o.id, o.wave_id, o.segment, o.channel, o.state, o.sms_parts,
          {has("e.type IN ('delivered', 'sms_delivered')")} AS delivered,
          {has("e.type = 'opened'")} AS opened,
          {has("e.type = 'clicked'")} AS clicked,
          CASE WHEN o.state = '{OutboxState.BOUNCED.value}' THEN 1 ELSE
            {has("e.type = 'sms_failed'")} + {has(f"e.type = 'bounced' AND NOT {soft}")} END
            AS hard,
          {has(f"e.type = 'bounced' AND {soft}")} AS soft
        FROM outbox o
        WHERE o.campaign_id = :c"""


def _group_select(group: Sequence[str], alias: str = "o") -> tuple[str, str]:
    """(select list, GROUP BY clause) for a grouping over outbox columns (empty = totals)."""
    if not group:
        return "", ""
    cols = ", ".join(f"{alias}.{g}" for g in group)
    return cols + ", ", f" GROUP BY {cols}"


def _message_counts(conn: Connection, campaign_id: int, group: Sequence[str]) -> dict[tuple, dict]:
    cols, group_by = _group_select(group)
    sql = f"""
        SELECT {cols}
          SUM(CASE WHEN o.state IN ('queued', 'sending') THEN 1 ELSE 0 END) AS queued,
          SUM(CASE WHEN o.state = 'uncertain' THEN 1 ELSE 0 END) AS uncertain,
          SUM(CASE WHEN o.state IN {_in(_SENT)} THEN 1 ELSE 0 END) AS sent,
          SUM(CASE WHEN o.state = 'failed' THEN 1 ELSE 0 END) AS failed,
          SUM(CASE WHEN o.state = 'suppressed' THEN 1 ELSE 0 END) AS suppressed,
          SUM(CASE WHEN o.state = 'skipped' THEN 1 ELSE 0 END) AS skipped,
          SUM(o.delivered) AS delivered,
          SUM(CASE WHEN o.hard > 0 THEN 1 ELSE 0 END) AS bounced_hard,
          SUM(CASE WHEN o.soft = 1 AND o.hard = 0 THEN 1 ELSE 0 END) AS bounced_soft,
          SUM(o.opened) AS opened,
          SUM(o.clicked) AS clicked,
          SUM(CASE WHEN o.state IN {_in(_SENT)} THEN COALESCE(o.sms_parts, 0) ELSE 0 END)
            AS sms_parts,
          SUM(CASE WHEN o.channel = 'email' THEN o.delivered ELSE 0 END) AS email_delivered,
          SUM(CASE WHEN o.state IN {_in(_SENT)} AND o.channel = 'email' THEN 1 ELSE 0 END)
            AS email_sent
        FROM ({_message_flags(conn.dialect.name)}) AS o{group_by}"""
    return _keyed(conn.execute(sa.text(sql), {"c": campaign_id}), len(group))


def _records_contacted(
    conn: Connection, campaign_id: int, group: Sequence[str]
) -> dict[tuple, dict]:
    cols, group_by = _group_select(group)
    sql = f"""
        SELECT {cols} COUNT(DISTINCT {_RECORD}) AS records_contacted
        FROM outbox o {_BEHIND}
        WHERE o.campaign_id = :c AND o.state IN {_in(_SENT)}{group_by}"""
    return _keyed(conn.execute(sa.text(sql), {"c": campaign_id}), len(group))


def _record_events(conn: Connection, campaign_id: int, group: Sequence[str]) -> dict[tuple, dict]:
    """Distinct records per record-event type, grouped by the message each event belongs to."""
    if not group:  # the whole campaign: no attribution to a message needed
        return _keyed(
            conn.execute(
                sa.text(
                    """SELECT
                      COUNT(DISTINCT CASE WHEN type IN ('form_opened', 'form_submitted')
                            THEN record_id END) AS form_opened,
                      COUNT(DISTINCT CASE WHEN type = 'form_submitted' THEN record_id END)
                        AS answered,
                      COUNT(DISTINCT CASE WHEN type = 'unsubscribed' THEN record_id END)
                        AS unsubscribed,
                      COUNT(DISTINCT CASE WHEN type = 'complained' THEN record_id END)
                        AS complained
                    FROM event WHERE campaign_id = :c AND type IN """
                    + _in(_RECORD_EVENTS)
                ),
                {"c": campaign_id},
            ),
            0,
        )
    cols, group_by = _group_select(group)
    sql = f"""
        WITH attributed AS (
          SELECT e.type AS type, e.record_id AS record_id,
            COALESCE(e.outbox_id, (
              SELECT m.id FROM outbox m
              WHERE m.campaign_id = e.campaign_id AND m.record_id = e.record_id
                AND m.state IN {_in(_SENT)} AND m.sent_at <= e.at
              ORDER BY m.sent_at DESC, m.id DESC LIMIT 1)) AS outbox_id
          FROM event e
          WHERE e.campaign_id = :c AND e.type IN {_in(_RECORD_EVENTS)}
        )
        SELECT {cols}
          COUNT(DISTINCT CASE WHEN a.type IN ('form_opened', 'form_submitted')
                THEN COALESCE(a.record_id, o.record_id) END) AS form_opened,
          COUNT(DISTINCT CASE WHEN a.type = 'form_submitted'
                THEN COALESCE(a.record_id, o.record_id) END) AS answered,
          COUNT(DISTINCT CASE WHEN a.type = 'unsubscribed'
                THEN COALESCE(a.record_id, o.record_id) END) AS unsubscribed,
          COUNT(DISTINCT CASE WHEN a.type = 'complained'
                THEN COALESCE(a.record_id, o.record_id) END) AS complained
        FROM attributed a
        JOIN outbox o ON o.id = a.outbox_id{group_by}"""
    return _keyed(conn.execute(sa.text(sql), {"c": campaign_id}), len(group))


def _summary_records(scopes: dict[str, int]) -> tuple[dict, dict]:
    """(records contacted, record events) per grouping, from the summary's set sizes."""
    contacted: dict[tuple, dict[tuple, dict]] = {}
    events: dict[tuple, dict[tuple, dict]] = {}
    for group, level in ((("wave_id",), "w"), (("segment", "channel"), "c")):
        contacted[group] = {
            k: {"records_contacted": n}
            for k, n in summary.grouped(scopes, "contacted", level).items()
        }
        events[group] = defaultdict(dict)
        for kind in _EVENT_FIGURES:
            for key, n in summary.grouped(scopes, kind, level).items():
                events[group][key][kind] = n
    events[()] = {(): {kind: scopes.get(kind, 0) for kind in _EVENT_FIGURES}}
    return contacted, events


_EVENT_FIGURES = ("form_opened", "answered", "unsubscribed", "complained")


def _keyed(result: Any, width: int) -> dict[tuple, dict]:
    out = {}
    for row in result.mappings():
        values = list(row.values())
        out[tuple(values[:width])] = {k: int(v or 0) for k, v in list(row.items())[width:]}
    return out


_FINEST = ("wave_id", "segment", "channel")


def _sum_up(finest: dict[tuple, dict], group: Sequence[str]) -> dict[tuple, dict]:
    """Sum counts per (wave, segment, channel) into a coarser grouping (already-aggregated rows)."""
    out: dict[tuple, dict] = {}
    for key, counts in finest.items():
        coarse = tuple(key[_FINEST.index(g)] for g in group)
        into = out.setdefault(coarse, dict.fromkeys(counts, 0))
        for name, value in counts.items():
            into[name] += value
    return out


def _figures(key: tuple, *parts: dict[tuple, dict]) -> Figures:
    counts: dict[str, int] = {}
    for part in parts:
        counts.update(part.get(key, {}))
    return Figures(**counts)


# ----------------------------------------------------------------------------- time


SERIES_DAYS = 3660  # the answers series never spans more than ten years of days
# Instants a day's arithmetic in any time zone cannot overflow.
_FIRST_INSTANT = datetime(1, 1, 3, tzinfo=UTC)
_LAST_INSTANT = datetime(9999, 12, 29, tzinfo=UTC)


def _within(instant: datetime) -> datetime:
    return min(max(instant, _FIRST_INSTANT), _LAST_INSTANT)


def _answers_per_day(
    conn: Connection,
    campaign_id: int,
    tz: str,
    first_send: datetime | None,
    from_summary: bool,
    now: datetime | None,
) -> list[DailyAnswers]:
    """Records answering for the first time, per local day, every day from the first wave.

    The series runs from the first wave (else the campaign's first send or apply; a day
    earlier at most, for an answer that early)
    to the last answer, never past `now` (and a day), never over SERIES_DAYS days: an answer
    outside (only a store written before `events ingest` refused such times holds any) is
    counted on the first or last day, so that the series always adds up to the answers.
    """
    hour = _hour("first_at", conn.dialect.name)
    sql = (
        f"SELECT {hour} AS hour, COUNT(*) AS answers FROM report_first_answer "
        f"WHERE campaign_id = :c GROUP BY {hour}"
    )
    if not from_summary:
        sql = f"""
        SELECT {hour} AS hour, COUNT(*) AS answers
        FROM (SELECT MIN(e.at) AS first_at FROM event e
              WHERE e.campaign_id = :c AND e.type = 'form_submitted'
              GROUP BY COALESCE(CAST(e.record_id AS TEXT), e.id)) AS firsts
        GROUP BY {hour}"""
    per_hour = [
        (_within(datetime.strptime(hour_text, "%Y-%m-%d %H").replace(tzinfo=UTC)), int(answers))
        for hour_text, answers in conn.execute(sa.text(sql), {"c": campaign_id})
    ]
    if not per_hour:
        return []
    earliest = min(instant for instant, _ in per_hour)
    latest = max(instant for instant, _ in per_hour)
    slack, span = timedelta(days=1), timedelta(days=SERIES_DAYS - 1)
    end = min(latest, _within(now) + slack) if now else latest
    if first_send is None:  # no wave started: the campaign's first send, or its apply
        first_send = aware(
            conn.execute(
                sa.text("SELECT COALESCE(first_sent_at, applied_at) FROM campaign WHERE id = :c"),
                {"c": campaign_id},
            ).scalar_one()
        )
    start = _within(first_send)
    start = max(earliest, start - slack) if earliest < start else start
    end = min(max(end, start), start + min(span, _LAST_INSTANT - start))
    zone = ZoneInfo(tz)
    per_day: dict[date, int] = defaultdict(int)
    for instant, answers in per_hour:
        per_day[min(max(instant, start), end).astimezone(zone).date()] += answers
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days, cumulative = [], 0
    while day <= last:
        cumulative += per_day.get(day, 0)
        days.append(DailyAnswers(day, per_day.get(day, 0), cumulative))
        day += timedelta(days=1)
    return days


# ----------------------------------------------------------------------------- reading


@contextmanager
def _reading(store: Any, use_summary: bool | None) -> Iterator[tuple[Connection, bool]]:
    """A connection to read the figures from, and whether they come from the summary.

    With the summary (SQLite, unless `use_summary=False`), the summary is brought up to
    date first; its last step and the reading share one transaction, which holds the
    write lock so that nothing changes between them (no serial bump: plans stay valid).
    """
    if use_summary is False or store.dialect != "sqlite":
        with store.read() as conn:
            yield conn, False
        return
    reading = False
    try:
        while True:  # a backlog goes in steps, each in its own transaction
            with store.transaction(immediate=True, bump=False) as conn:
                if summary.refresh(conn):
                    reading = True
                    yield conn, True
                    return
    except OperationalError as exc:
        # the write lock stayed taken past the busy timeout (a long import), or the
        # store is read-only to this user: the same figures from the raw rows
        if reading or not re.search(r"locked|readonly", str(exc.orig)):
            raise
        with store.read() as conn:
            yield conn, False


# ----------------------------------------------------------------------------- campaign report


def _campaign_row(conn: Connection, name: str) -> Any:
    # a name the store does not know: the one error every command gives
    return campaigns.by_name(conn, name)


def campaign_report(
    store: Any,
    name: str,
    *,
    timezone: str = "UTC",
    now: datetime | None = None,
    use_summary: bool | None = None,
) -> CampaignReport:
    """The figures of one campaign: per wave, per segment × channel, in total, per day.

    `use_summary=False` aggregates the raw rows even where the summary is kept.
    """
    with _reading(store, use_summary) as (conn, from_summary):
        campaign = _campaign_row(conn, name)
        cid = campaign.id
        steps = _steps(conn, cid, campaign)
        waves = conn.execute(
            sa.text(
                "SELECT id, number, kind, status, scheduled_for, started_at FROM wave "
                "WHERE campaign_id = :c ORDER BY number"
            ),
            {"c": cid},
        ).all()
        progress = wave_progress(conn, [w.id for w in waves], now or clock.now())
        by_wave = [("wave_id",), ("segment", "channel"), ()]
        # message counts add up across cells: one pass at the finest grain, summed here;
        # distinct records do not, so they are counted per grouping
        if from_summary:
            finest = summary.message_counts(conn, cid)
            per_campaign = summary.per_campaign(conn, [cid]).get(cid, {})
            contacted, events = _summary_records(summary.scope_counts(conn, [cid]).get(cid, {}))
        else:
            finest = _message_counts(conn, cid, ("wave_id", "segment", "channel"))
            per_campaign = _outbox_per_campaign(conn, str(int(cid))).get(cid, {})
            contacted = {g: _records_contacted(conn, cid, g) for g in by_wave[:2]}
            events = {g: _record_events(conn, cid, g) for g in by_wave}
        msgs = {g: _sum_up(finest, g) for g in by_wave}
        records, messages = per_campaign.get("records", 0), per_campaign.get("messages", 0)
        contacted[()] = {(): {"records_contacted": per_campaign.get("contacted", 0)}}
        reasons: dict[Any, dict[str, int]] = defaultdict(dict)
        for wave_id, state, reason, count in conn.execute(
            sa.text(
                "SELECT wave_id, state, COALESCE(reason, 'no reason given'), COUNT(*) FROM outbox "
                f"WHERE campaign_id = :c AND state IN {_in(_SET_ASIDE)} "
                "GROUP BY wave_id, state, COALESCE(reason, 'no reason given') "
                "ORDER BY wave_id, state, COUNT(*) DESC"
            ),
            {"c": cid},
        ):
            reasons[wave_id][f"{state}: {reason}"] = int(count)
        totals_key: tuple = ()
        to_process = conn.execute(
            sa.text("SELECT COUNT(*) FROM response WHERE campaign_id = :c AND status = :s"),
            {"c": cid, "s": ResponseStatus.TO_PROCESS.value},
        ).scalar_one()
        not_contacted = _not_contacted(conn, cid)
        started = [aware(w.started_at) for w in waves if w.started_at is not None]
        first_send = min(started) if started else None  # type: ignore[type-var]
        answers = _answers_per_day(conn, cid, timezone, first_send, from_summary, now)

    def parts(group: tuple) -> list[dict[tuple, dict]]:
        return [msgs[group], contacted[group], events[group]]

    wave_reports = [
        WaveReport(
            number=w.number,
            kind=str(w.kind),
            status=str(progress[w.id].state),
            scheduled_for=aware(w.scheduled_for),
            started_at=aware(w.started_at),
            figures=_figures((w.id,), *parts(("wave_id",))),
            skipped_reasons=reasons.get(w.id, {}),
            held=progress[w.id].held,
            held_until=progress[w.id].held_until,
        )
        for w in waves
    ]
    cells = sorted(
        set(msgs[("segment", "channel")]) | set(events[("segment", "channel")]),
        key=lambda k: (k[0] or "", k[1] or ""),
    )
    matrix = [
        MatrixCell(
            seg or "(no segment)", ch or "", _figures((seg, ch), *parts(("segment", "channel")))
        )
        for seg, ch in cells
    ]
    return CampaignReport(
        name=campaign.name,
        type=campaign.type,
        category=campaign.category or "",
        status=wave_reports[-1].status if wave_reports else NEVER_SENT,
        timezone=timezone,
        records=int(records or 0),
        messages=int(messages or 0),
        responses_to_process=int(to_process),
        totals=_figures(totals_key, *parts(())),
        waves=wave_reports,
        matrix=matrix,
        answers_per_day=answers,
        generated_at=now,
        not_contacted=not_contacted,
        steps=steps,
    )


def _not_contacted(conn: Connection, campaign_id: int) -> list[NotContactedCount]:
    """The records the campaign's latest lock left out, per reason, as the lock froze them."""
    latest = sa.text(
        "SELECT counts FROM campaign_lock WHERE campaign_id = :c ORDER BY id DESC LIMIT 1"
    ).columns(counts=sa.JSON)
    return not_contacted_counts(conn.execute(latest, {"c": campaign_id}).scalar())


# ----------------------------------------------------------------------------- campaign list


def campaign_list(
    store: Any,
    *,
    timezone: str = "UTC",
    filters: ListFilter | None = None,
    now: datetime | None = None,
    use_summary: bool | None = None,
) -> CampaignList:
    """One row per campaign applied to the store, latest activity first (seed 000's list)."""
    filters = filters or ListFilter()
    zone = ZoneInfo(timezone)
    params: dict[str, Any] = {}
    where = ""
    if filters.type:
        where, params["t"] = " WHERE type = :t", filters.type
    with _reading(store, use_summary) as (conn, from_summary):
        campaigns = conn.execute(
            sa.text(f"SELECT id, name, type, category, applied_at FROM campaign{where}"), params
        ).all()
        waves: dict[int, list[Any]] = defaultdict(list)
        for w in conn.execute(
            sa.text(
                "SELECT id, campaign_id, number, kind, status, scheduled_for, started_at FROM wave "
                "ORDER BY campaign_id, number"
            )
        ):
            waves[w.campaign_id].append(w)
        progress = wave_progress(
            conn, [w.id for c in campaigns for w in waves.get(c.id, [])], now or clock.now()
        )
        ids = ", ".join(str(int(c.id)) for c in campaigns) or "NULL"
        if from_summary:
            outbox, email_events, form_events = _list_from_summary(conn, [c.id for c in campaigns])
        else:
            outbox, email_events, form_events = _list_from_rows(conn, ids)
        to_process = _by_campaign(
            conn,
            "SELECT campaign_id, COUNT(*) AS n FROM response WHERE status = :s "
            "GROUP BY campaign_id",
            {"s": ResponseStatus.TO_PROCESS.value},
        )
    rows = []
    for c in campaigns:
        cw = waves.get(c.id, [])
        status = str(progress[cw[-1].id].state) if cw else NEVER_SENT
        held = [progress[w.id] for w in cw if progress[w.id].held]
        sent = [(aware(w.started_at), str(w.kind)) for w in cw if w.started_at is not None]
        moments = [m for w in cw for m in (aware(w.started_at), aware(w.scheduled_for)) if m]
        latest = max(moments) if moments else aware(c.applied_at)
        if filters.status and status != filters.status:
            continue
        if filters.since and (latest is None or latest.astimezone(zone).date() < filters.since):
            continue
        o, ev, fe = outbox.get(c.id, {}), email_events.get(c.id, {}), form_events.get(c.id, {})
        contacted = o.get("contacted", 0)
        answered = fe.get("answered", 0)
        delivered = ev.get("delivered", 0)
        rows.append(
            (
                latest,
                CampaignListRow(
                    name=c.name,
                    type=c.type,
                    category=c.category or "",
                    status=status,
                    records=o.get("records", 0),
                    messages=o.get("messages", 0),
                    response_rate=Rate(answered, contacted, "records contacted"),
                    form_open_rate=Rate(
                        max(fe.get("form_opened", 0) - answered, 0), contacted, "records contacted"
                    ),
                    email_open_rate=(
                        Rate(ev.get("opened", 0), delivered, "delivered")
                        if delivered
                        else Rate(ev.get("opened", 0), o.get("email_sent", 0), "emails sent")
                    ),
                    responses_to_process=to_process.get(c.id, {}).get("n", 0),
                    waves=[SentWave(at, kind) for at, kind in sent if at is not None],
                    uncertain=sum(progress[w.id].uncertain for w in cw),
                    held=sum(p.held for p in held),
                    held_until=max((p.held_until for p in held if p.held_until), default=None),
                ),
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda pair: (-(pair[0] or epoch).timestamp(), pair[1].name))
    filtered = filters != ListFilter()
    return CampaignList([row for _, row in rows], timezone, generated_at=now, filtered=filtered)


def _list_from_rows(conn: Connection, ids: str) -> tuple[dict, dict, dict]:
    """The list's figures per campaign by aggregating the raw rows (ids: a SQL list)."""
    outbox = _outbox_per_campaign(conn, ids)
    # Distinct messages per campaign and type: ordered scans of ix_event_campaign.
    email_events: dict[int, dict[str, int]] = defaultdict(dict)
    for cid, type_, n in conn.execute(
        sa.text(
            f"""SELECT campaign_id, type, COUNT(*) FROM (
                  SELECT DISTINCT campaign_id, type, outbox_id FROM event
                  WHERE campaign_id IN ({ids}) AND type IN ('delivered', 'opened')
                    AND outbox_id IS NOT NULL) AS messages
                GROUP BY campaign_id, type"""
        )
    ):
        email_events[cid][type_] = int(n)
    form_events = _by_campaign(
        conn,
        f"""SELECT e.campaign_id,
             COUNT(DISTINCT e.record_id) AS form_opened,
             COUNT(DISTINCT CASE WHEN e.type = 'form_submitted' THEN e.record_id END)
               AS answered
           FROM event e
           WHERE e.campaign_id IN ({ids}) AND e.type IN ('form_opened', 'form_submitted')
           GROUP BY e.campaign_id""",
    )
    return outbox, email_events, form_events


def _list_from_summary(conn: Connection, ids: list[int]) -> tuple[dict, dict, dict]:
    """The same figures from the summary's counters."""
    outbox = summary.per_campaign(conn, ids)
    email_events = {
        cid: {"delivered": o.get("delivered", 0), "opened": o.get("opened", 0)}
        for cid, o in outbox.items()
    }
    form_events = {
        cid: {"form_opened": s.get("form_opened", 0), "answered": s.get("answered", 0)}
        for cid, s in summary.scope_counts(conn, ids).items()
    }
    return outbox, email_events, form_events


def _by_campaign(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> dict:
    out: dict[int, dict[str, int]] = {}
    for row in conn.execute(sa.text(sql), params or {}).mappings():
        values = dict(row)
        out[values.pop("campaign_id")] = {k: int(v or 0) for k, v in values.items()}
    return out


def _outbox_per_campaign(conn: Connection, ids: str) -> dict[int, dict[str, int]]:
    """Records targeted and contacted, messages and emails sent, per campaign (ids: a SQL list).

    One ordered pass over ix_outbox_campaign_record (per record, then per campaign),
    plus the records of grouped emails not counted through a message of their own.
    """
    outbox = _by_campaign(
        conn,
        f"""SELECT campaign_id, SUM(targeted) AS records, SUM(contacted) AS contacted,
              SUM(messages) AS messages, SUM(email_sent) AS email_sent
            FROM (SELECT campaign_id, record_id,
                    MAX(CASE WHEN state NOT IN {_in(_SET_ASIDE)} THEN 1 ELSE 0 END) AS targeted,
                    MAX(CASE WHEN state IN {_in(_SENT)} THEN 1 ELSE 0 END) AS contacted,
                    SUM(CASE WHEN state NOT IN {_in(_SET_ASIDE)} THEN 1 ELSE 0 END) AS messages,
                    SUM(CASE WHEN state IN {_in(_SENT)} AND channel = 'email'
                        THEN 1 ELSE 0 END) AS email_sent
                  FROM outbox WHERE campaign_id IN ({ids})
                  GROUP BY campaign_id, record_id) AS per_record
            GROUP BY campaign_id""",
    )
    # The other records of grouped emails (they have no message of their own).
    grouped = _by_campaign(
        conn,
        f"""SELECT o.campaign_id,
              COUNT(DISTINCT CASE WHEN NOT EXISTS (
                  SELECT 1 FROM outbox m WHERE m.campaign_id = o.campaign_id
                    AND m.record_id = rc.record_id AND m.state NOT IN {_in(_SET_ASIDE)})
                THEN rc.record_id END) AS records,
              COUNT(DISTINCT CASE WHEN o.state IN {_in(_SENT)} AND NOT EXISTS (
                  SELECT 1 FROM outbox m WHERE m.campaign_id = o.campaign_id
                    AND m.record_id = rc.record_id AND m.state IN {_in(_SENT)})
                THEN rc.record_id END) AS contacted
            FROM outbox o {_BEHIND}
            WHERE o.campaign_id IN ({ids}) AND o.group_key IS NOT NULL
              AND o.state NOT IN {_in(_SET_ASIDE)}
            GROUP BY o.campaign_id""",
    )
    for cid, extra in grouped.items():
        into = outbox.setdefault(cid, {"records": 0, "contacted": 0, "messages": 0})
        into["records"] = into.get("records", 0) + extra["records"]
        into["contacted"] = into.get("contacted", 0) + extra["contacted"]
    return outbox


def _steps(conn: sa.Connection, campaign_id: int, campaign: Any) -> list[StepFigures]:
    """Automations: per step of the tree, what it did (automation.figures)."""
    row = conn.execute(sa.select(CAMPAIGN).where(CAMPAIGN.c.id == campaign_id)).first()
    if row is None or not row.definition or not row.definition.get("trigger"):
        return []
    out = []
    for c in step_counts(conn, campaign_id, applied_campaign(row).spec):
        not_sent = sum(n for state, n in c.messages.items() if state not in ("sent", "queued"))
        out.append(
            StepFigures(
                c.path, c.affected, c.processed, c.label, c.action, c.waiting,
                c.messages.get("sent", 0), c.outcomes.get("no_address", 0), not_sent, c.opened,
                c.clicked, c.outcomes,
            )
        )  # fmt: skip
    return out
