"""Reading event lines: the vocabulary, bad lines with their numbers, stable ids."""

from __future__ import annotations

import pytest

from campaignctl.events.model import (
    Event,
    EventType,
    Incoming,
    LineProblem,
    is_stop_reply,
    read_events,
)

LINES = [
    '{"type": "delivered", "message_id": "<abc@example.org>", "at": "2027-03-01T09:01:00+01:00"}',
    "",
    '{"type": "bounced", "address": "x@example.org", "data": {"code": "5.1.1"}}',
    "not json",
    '{"type": "opend", "message_id": "m1"}',
    '{"type": "opened"}',
    "[1, 2]",
    '{"id": "evt-9", "type": "sms_reply", "campaign": "promo", "record": "H001", "data": {"text": "Arrêt"}}',
]


def test_read_events_reports_bad_lines_and_keeps_good_ones() -> None:
    results = list(read_events(LINES))
    assert [r.line for r in results] == [1, 3, 4, 5, 6, 7, 8]
    problems = [(r.line, r.message) for r in results if isinstance(r, LineProblem)]
    assert problems[0][0] == 4 and problems[0][1].startswith("not JSON: ")
    assert problems[1:] == [
        (
            5,
            "type: Input should be 'delivered', 'bounced', 'opened', 'clicked', 'form_opened', "
            "'form_submitted', 'unsubscribed', 'complained', 'sms_delivered', 'sms_failed', 'sms_reply', "
            "'document_signed', 'document_received', 'space_visited', 'api_call' or 'score_changed'",
        ),
        (
            6,
            "an event names its message (message_id), its record (campaign and record; record "
            "alone, with audience when several, for api_call, document_received, score_changed, "
            "space_visited), or an address",
        ),
        (7, "each line must be a JSON object"),
    ]
    events = [r for r in results if isinstance(r, Incoming)]
    assert events[0].event.message_id == "abc@example.org"
    assert events[0].event.at.isoformat() == "2027-03-01T08:01:00+00:00"  # stored in UTC
    assert events[1].event.hard_bounce is True
    assert events[2].id == "evt-9" and events[2].event.opt_out is True


def test_ids_are_stable_hashes_of_the_line_content() -> None:
    def id_of(line: str) -> str:
        (incoming,) = read_events([line])
        return incoming.id

    a = id_of('{"type": "opened", "message_id": "m1"}')
    b = id_of('{"message_id": "m1",   "type": "opened"}')
    c = id_of('{"type": "clicked", "message_id": "m1"}')
    assert a == b != c and a.startswith("sha256:")


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("STOP", True),
        ("stop", True),
        ("Arrêt", True),
        ("ARRET", True),
        ("STOP PUB", True),
        ("stop.", True),
        ("Merci, c'est noté", False),
        ("", False),
        ("Stopper la pub?", False),
    ],
)
def test_stop_replies(text: str, stop: bool) -> None:
    assert is_stop_reply(text) is stop


def test_soft_bounce_is_not_hard() -> None:
    event = Event(type=EventType.BOUNCED, address="a@b.c", data={"kind": "soft", "code": "4.2.2"})
    assert event.hard_bounce is False


@pytest.mark.parametrize(
    ("data", "hard"),
    [
        ({"kind": "hard"}, True),
        ({"kind": "soft"}, False),
        ({"kind": "soft", "code": "4.2.2"}, False),
        ({"kind": "soft", "code": "5.1.1"}, True),  # no such user: hard whatever the kind
        ({"code": "5.1.1"}, True),
        ({"code": "5.7.1"}, True),
        ({"code": "4.4.1"}, False),
        ({"code": 550}, True),
        ({}, True),  # a bare bounce: hard, the address is suppressed
    ],
)
def test_ingest_and_report_classify_a_bounce_alike(data: dict, hard: bool) -> None:
    """`events ingest` suppresses by Event.hard_bounce; the report counts by its SQL twin."""
    import json
    import sqlite3

    from campaignctl.events.model import soft_bounce

    event = Event.model_validate({"type": "bounced", "address": "x@example.org", "data": data})
    assert event.hard_bounce is hard
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE e (data TEXT)")
        conn.execute("INSERT INTO e VALUES (?)", (json.dumps(data),))
        (soft,) = conn.execute(f"SELECT {soft_bounce('sqlite')} FROM e").fetchone()
    assert bool(soft) is not hard
