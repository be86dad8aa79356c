"""Event lines that used to poison the store, crash `report` or reject a whole file (issue 17).

Each line that cannot be kept is refused on its own, with its number and the
reason; the other lines of the file are recorded. Stores already holding such
events (written before) still report, with a bounded answers series.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, Seeded, open_store, seed
from typer.testing import CliRunner

from campaignctl.cli.main import app

runner = CliRunner()

CAMPAIGN = "update-2027"
NOW = "2027-03-02T09:00:00+01:00"
AT = "2027-03-01T10:00:00+01:00"


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)


@pytest.fixture
def sent(scaffold: Path, backend: str) -> Seeded:
    return seed(scaffold)


def cli(root: Path, *args: str):
    return runner.invoke(app, ["--workspace", str(root), *args])


def ingest_bytes(root: Path, data: bytes, *args: str):
    path = root / "events.jsonl"
    path.write_bytes(data)
    result = cli(root, "events", "ingest", str(path), *args)
    return result, [line.replace(str(path), "FILE") for line in result.stderr.splitlines()]


def stored_events(root: Path) -> int:
    with open_store(root).read() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one()


def opened(n: int, **fields: object) -> bytes:
    line = {"type": "opened", "message_id": "H001.1@example.org", "id": f"e{n}", "at": AT}
    return json.dumps({**line, **fields}).encode() + b"\n"


def test_a_line_that_is_not_utf8_is_skipped_with_its_number_and_the_others_kept(
    scaffold: Path, sent: Seeded
) -> None:
    lines = [opened(n) for n in range(1, 64)]
    lines[40] = (
        b'{"type": "opened", "message_id": "H001.1@example.org", "data": {"ua": "\xff\xfe"}}\n'
    )
    result, stderr = ingest_bytes(scaffold, b"".join(lines))
    assert result.exit_code == 0, result.output
    assert stderr == [
        "FILE:41: skipped: not UTF-8 text (byte 72: invalid start byte)",
        "read 63 line(s): 62 recorded, 0 already recorded, 0 for an unknown message or record, "
        "0 not attributable to a message, 1 bad line(s) skipped; 0 suppression(s) added",
    ]
    assert stored_events(scaffold) == 62


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"at": "9999-12-31T23:59:59Z"}, "at: 9999-12-31T23:59:59+00:00 is more than a day after "
         "now (2027-03-02T08:00:00+00:00)"),
        ({"at": "2999-01-01T00:00:00Z"}, "at: 2999-01-01T00:00:00+00:00 is more than a day after "
         "now (2027-03-02T08:00:00+00:00)"),
        ({"at": "1900-01-01T00:00:00Z"}, "at: 1900-01-01T00:00:00+00:00 is before 1970"),
        ({"at": "2027-02-27T07:59:59Z"}, 'at: 2027-02-27T07:59:59+00:00 is more than a day before '
         'campaign "update-2027" was applied (it has sent nothing yet), at 2027-03-01T08:00:00+00:00'),
        ({"at": "0001-01-01T00:00:00+01:00"}, "at: not a time the store can keep"),
        ({"message_id": "x" * 400}, "message_id: String should have at most 320 characters"),
        ({"id": "i" * 65}, "id: String should have at most 64 characters"),
        ({"message_id": None, "campaign": "c" * 101, "record": "H001"},
         "campaign: String should have at most 100 characters"),
        ({"message_id": None, "campaign": CAMPAIGN, "record": "r" * 201},
         "record: String should have at most 200 characters"),
        ({"address": "a" * 321}, "address: String should have at most 320 characters"),
        ({"data": {"text": "x" * 70_000}}, "data is 70011 bytes of JSON, more than 65536"),
        ({"data": {"a": [[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]}},
         "data is nested more than 16 levels deep"),
        ({"message_id": "H001.1\u0000@example.org"},
         "message_id: a NUL character (\\u0000) cannot be stored"),
        ({"data": {"ua": "\u0000"}}, "data: a NUL character (\\u0000) cannot be stored"),
    ],
)  # fmt: skip
def test_an_event_out_of_bounds_is_refused_with_its_line_and_reason(
    scaffold: Path, sent: Seeded, fields: dict, reason: str
) -> None:
    data = opened(1) + opened(2, **fields) + opened(3)
    result, stderr = ingest_bytes(scaffold, data)
    assert result.exit_code == 0, result.output
    assert stderr == [
        f"FILE:2: skipped: {reason}",
        "read 3 line(s): 2 recorded, 0 already recorded, 0 for an unknown message or record, "
        "0 not attributable to a message, 1 bad line(s) skipped; 0 suppression(s) added",
    ]
    assert stored_events(scaffold) == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"type": "opened", "message_id": "m", "data": {"x": NaN}}', "not JSON: unexpected "
         "character, expected a JSON value: line 1 column 53 (char 52)"),
        (b'{"type": "opened", "message_id": "m", "data": {"x": "\\ud800"}}', "not JSON: no low "
         "surrogate in string: line 1 column 54 (char 53)"),
        (b"[" * 5000 + b"]" * 5000, "not JSON: depth limit exceeded: line 1 column 1026 (char 1025)"),
        (b'{"type": "opened", "message_id": "' + b"m" * 5_000_000 + b'"}',
         "longer than 131072 bytes"),
    ],
)  # fmt: skip
def test_a_line_that_cannot_be_read_is_refused_alone(
    scaffold: Path, sent: Seeded, line: bytes, reason: str
) -> None:
    result, stderr = ingest_bytes(scaffold, opened(1) + line + b"\n" + opened(3))
    assert result.exit_code == 0, result.output
    assert stderr[0] == f"FILE:2: skipped: {reason}"
    assert stored_events(scaffold) == 2


def test_a_line_just_within_the_size_limit_is_read(scaffold: Path, sent: Seeded) -> None:
    head = b'{"type": "opened", "message_id": "H001.1@example.org", "data": {"t": "'
    line = head + b"x" * (131072 - len(head) - 3) + b'"}}'
    assert len(line) == 131072
    result, stderr = ingest_bytes(scaffold, opened(1) + line + b"\n")
    assert result.exit_code == 0, result.output
    # read, then refused for its data over 64 KiB, not for its length
    assert stderr[0] == "FILE:2: skipped: data is 131007 bytes of JSON, more than 65536"


def test_a_store_poisoned_before_still_reports_with_a_bounded_series(
    scaffold: Path, sent: Seeded
) -> None:
    """Answers dated 9999, 2999 and 1900, as earlier versions stored them: `report` exited
    70 (OverflowError) or spent a minute and a gigabyte on a thousand years of days."""
    with sent.store.transaction() as conn:
        for n, at in enumerate(
            [
                datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
                datetime(2999, 1, 1, tzinfo=UTC),
                datetime(1900, 1, 1, tzinfo=UTC),
                T0.replace(hour=12),
            ]
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO event (id, type, campaign_id, record_id, at, received_at) "
                    "VALUES (:id, 'form_submitted', :c, :r, :at, :at)"
                ),
                {"id": f"old-{n}", "c": sent.campaign_id, "r": n + 1, "at": at},
            )
    for fmt in ("table", "json", "csv", "html"):
        result = cli(scaffold, "report", CAMPAIGN, "--format", fmt)
        assert result.exit_code == 0, (fmt, result.output)
        assert len(result.stdout) < 20_000, fmt
    days = json.loads(cli(scaffold, "report", CAMPAIGN, "--format", "json").stdout)[
        "answers_per_day"
    ]
    # from the day before the first send (the 1900 answer) to the day after now (the later
    # ones): every answer counted, on the edge days
    assert days == [
        {"day": "2027-02-28", "answers": 1, "cumulative": 1},
        {"day": "2027-03-01", "answers": 1, "cumulative": 2},
        {"day": "2027-03-02", "answers": 0, "cumulative": 2},
        {"day": "2027-03-03", "answers": 2, "cumulative": 4},
    ]
