"""`report` after a real send and real events: every figure and rate, in every format.

The demo's mise-a-jour-2027 goes out through `campaignctl send` (file transports:
106 + 39 grouped emails for 113 + 40 records, 6 + 3 SMS), then `campaignctl events
ingest` reads a JSON-lines file of events naming the messages the transports
wrote (and one answer naming only its record). The expected figures below follow
from that file by hand, cell by cell; each format (table, JSON, CSV, HTML) must
show all of them, and each rate with its denominator.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.report.model import Figures
from tests.delivery.locking import open_store
from tests.report.test_cli import _Page

CAMPAIGN = "mise-a-jour-2027"
NOW = "2026-11-23T10:00:00+01:00"  # a Monday morning, outside the SMS quiet hours


def cli(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@dataclass
class Sent:
    root: Path
    messages: dict[tuple[str, str], list[tuple[str, str]]]  # (segment, channel) -> [(mid, key)]


def _record_key(sms_text: str, root: Path) -> str:
    """The record an SMS is for, read from the short form link it carries (signed with the
    development secret: the file transport sends without CAMPAIGNCTL_SECRET)."""
    from campaignctl.render.links import DEVELOPMENT_SECRET, LinkSigner
    from campaignctl.spec.workspace import load_workspace

    config = load_workspace(root).require_valid().config
    assert config is not None
    code = sms_text.split("/q/", 1)[1].split()[0]
    _purpose, payload = LinkSigner(config.tracking, DEVELOPMENT_SECRET).load_short(code)
    return payload["r"]


@pytest.fixture
def sent(demo: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Sent:
    """The demo's campaign sent through the CLI, on SQLite and on PostgreSQL (`backend`)."""
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.delenv("CAMPAIGNCTL_SECRET", raising=False)
    for args in (
        ["audience", "import"],
        ["apply", CAMPAIGN, "--auto-approve"],
        ["lock", CAMPAIGN],
        ["send", CAMPAIGN, "--now"],
    ):
        result = cli(demo, *args)
        assert result.exit_code == 0, (args, result.output)
    store = open_store(demo)
    with store.read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.segment, o.channel, o.message_id, r.key FROM outbox o "
                "JOIN record r ON r.id = o.record_id ORDER BY r.key"
            )
        ).all()
    store.close()
    messages: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for segment, channel, mid, key in rows:
        messages.setdefault((segment, channel), []).append((mid, key))
    # the ids the events name are those the transports wrote
    folder = demo / ".campaignctl" / "outbox" / CAMPAIGN
    sms = [json.loads(line) for line in (folder / "sms.jsonl").read_text().splitlines()]
    emails = {p.stem for p in folder.glob("*.eml")}
    assert emails == {m for (_, ch), ms in messages.items() if ch == "email" for m, _ in ms}
    assert {s["client_ref"]: _record_key(s["text"], demo) for s in sms} == {
        m: k for (_, ch), ms in messages.items() if ch == "sms" for m, k in ms
    }
    # 9 SMS of 1 part each: the text and its short form link fit in 160 GSM characters
    assert all(len(s["text"]) <= 160 for s in sms)
    return Sent(demo, messages)


def _events(sent: Sent) -> list[dict]:
    a = [m for m, _ in sent.messages[("accommodation", "email")]]
    r = [m for m, _ in sent.messages[("restaurants", "email")]]
    sa_, sa_keys = zip(*sent.messages[("accommodation", "sms")], strict=True)
    sr = [m for m, _ in sent.messages[("restaurants", "sms")]]

    def ev(type_: str, mid: str, at: str, **data) -> dict:
        line = {"type": type_, "message_id": f"<{mid}>", "at": at}
        return {**line, "data": data} if data else line

    day = "2026-11-23T{}:00+01:00"
    return [
        *(ev("delivered", m, day.format("10:01")) for m in a[:8]),
        *(ev("delivered", m, day.format("10:01")) for m in r[:2]),
        *(ev("sms_delivered", m, day.format("10:02")) for m in sa_[:3]),
        ev("sms_delivered", sr[0], day.format("10:02")),
        ev("opened", a[0], day.format("11:00")),
        ev("opened", a[0], day.format("11:05")),  # three opens of one email: one open
        ev("opened", a[0], day.format("11:10")),
        *(ev("opened", m, day.format("11:20")) for m in a[1:4]),
        *(ev("opened", m, day.format("11:30")) for m in r[:2]),
        ev("clicked", a[0], day.format("11:40")),
        ev("clicked", a[0], day.format("11:41")),
        ev("clicked", a[1], day.format("11:42")),
        ev("clicked", r[0], day.format("11:43")),
        ev("form_opened", a[0], day.format("12:00")),
        ev("form_opened", a[0], day.format("12:01")),
        ev("form_opened", a[1], day.format("12:02")),
        ev("form_opened", a[2], day.format("12:03")),
        ev("form_opened", r[0], day.format("12:04")),
        ev("form_submitted", a[0], day.format("14:00")),
        ev("form_submitted", a[1], "2026-11-24T09:00:00+01:00"),
        ev("form_submitted", r[0], "2026-11-24T23:30:00+00:00"),  # 00:30 on the 25th in Paris
        # an answer known only by its record: it belongs to the SMS that record got
        {
            "type": "form_submitted",
            "campaign": CAMPAIGN,
            "record": sa_keys[0],
            "at": "2026-11-25T10:00:00+01:00",
        },
        ev("bounced", a[8], day.format("10:03"), kind="hard", code="5.1.1"),
        ev("bounced", r[2], day.format("10:03"), kind="soft", code="4.2.2"),
        ev("sms_failed", sr[1], day.format("10:03")),
        ev("unsubscribed", a[3], day.format("15:00")),
        ev("complained", r[1], day.format("15:00")),
    ]


ACC_EMAIL = Figures(sent=106, delivered=8, bounced_hard=1, opened=4, clicked=2, form_opened=3,
                    answered=2, unsubscribed=1, records_contacted=113, email_delivered=8,
                    email_sent=106)  # fmt: skip
RES_EMAIL = Figures(sent=39, delivered=2, bounced_soft=1, opened=2, clicked=1, form_opened=1,
                    answered=1, complained=1, records_contacted=40, email_delivered=2,
                    email_sent=39)  # fmt: skip
ACC_SMS = Figures(sent=6, delivered=3, form_opened=1, answered=1, sms_parts=6,
                  records_contacted=6)  # fmt: skip
RES_SMS = Figures(sent=3, delivered=1, bounced_hard=1, sms_parts=3, records_contacted=3)
TOTAL = Figures(sent=154, delivered=14, bounced_hard=2, bounced_soft=1, opened=6, clicked=3,
                form_opened=5, answered=4, unsubscribed=1, complained=1, sms_parts=9,
                records_contacted=162, email_delivered=10, email_sent=145)  # fmt: skip
CELLS = [
    ("accommodation", "email", ACC_EMAIL),
    ("accommodation", "sms", ACC_SMS),
    ("restaurants", "email", RES_EMAIL),
    ("restaurants", "sms", RES_SMS),
]
DAYS = [("2026-11-23", 1, 1), ("2026-11-24", 1, 2), ("2026-11-25", 2, 4)]
SUMMARY = (
    "mise-a-jour-2027 (questionnaire, administrative): done; 162 records, 154 messages; "
    "answers: 4 / 162 records contacted (2.5%); opens: 6 / 10 delivered (60.0%); "
    "form opened without answering: 1 / 162 records contacted (0.6%); responses to process: 4"
)


def _pct(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.1%}"


def _cells(figures: Figures) -> list[str]:
    """A figure row as the table, CSV and HTML show it: 17 counts, open and response rates."""
    return [
        *(str(v) for v in figures.counts().values()),
        _pct(figures.opened, figures.email_delivered) if figures.email_delivered else "—",
        _pct(figures.answered, figures.records_contacted),
    ]


@pytest.fixture
def reported(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Path:
    # ingested after the last event (events more than a day ahead of the clock are refused)
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-26T09:00:00+01:00")
    path = sent.root / "events.jsonl"
    lines = _events(sent)
    path.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    result = cli(sent.root, "events", "ingest", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith(
        f"read {len(lines)} line(s): {len(lines)} recorded, 0 already recorded, "
    )
    return sent.root


def test_json_holds_every_figure_and_rate_with_its_denominator(reported: Path) -> None:
    result = cli(reported, "report", CAMPAIGN, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["records"], doc["messages"], doc["responses_to_process"]) == (
        "done",
        162,
        154,
        4,  # the four answers: each a response to process (events/responses.py)
    )
    (wave,) = doc["waves"]
    for figures in (wave["figures"], doc["totals"]):
        assert {k: v for k, v in figures.items() if k != "rates"} == {
            **TOTAL.counts(),
            "bounced": 3,
        }
        assert figures["rates"] == {
            # on the 10 emails delivered: the 4 SMS delivered are never opened
            "open": {"numerator": 6, "denominator": 10, "basis": "delivered", "value": 6 / 10},
            "click": {"numerator": 3, "denominator": 10, "basis": "delivered", "value": 3 / 10},
            "response": {
                "numerator": 4,
                "denominator": 162,
                "basis": "records contacted",
                "value": 4 / 162,
            },
            "form_open_without_answer": {
                "numerator": 1,
                "denominator": 162,
                "basis": "records contacted",
                "value": 1 / 162,
            },
        }
    assert [(c["segment"], c["channel"]) for c in doc["matrix"]] == [(s, c) for s, c, _ in CELLS]
    for cell, (_, _, expected) in zip(doc["matrix"], CELLS, strict=True):
        figures = cell["figures"]
        assert {k: v for k, v in figures.items() if k not in ("rates", "bounced")} == (
            expected.counts()
        )
        assert figures["rates"] == {
            name: getattr(expected, attr).as_dict()
            for name, attr in [("open", "open_rate"), ("click", "click_rate"),
                               ("response", "response_rate"),
                               ("form_open_without_answer", "form_open_rate")]
        }  # fmt: skip
    rates = {(c["segment"], c["channel"]): c["figures"]["rates"] for c in doc["matrix"]}
    assert rates[("restaurants", "email")]["open"] == {
        "numerator": 2, "denominator": 2, "basis": "delivered", "value": 1.0}  # fmt: skip
    assert rates[("accommodation", "sms")]["response"] == {
        "numerator": 1, "denominator": 6, "basis": "records contacted", "value": 1 / 6}  # fmt: skip
    assert [tuple(d.values()) for d in doc["answers_per_day"]] == DAYS
    assert wave["skipped_reasons"] == {}


def _ascii_table(text: str, title: str) -> dict[str, list[str]]:
    """The rows of one plain-text table, by label: `| sent | 154 | 154 |` -> {"sent": [...]}."""
    lines = text.splitlines()
    start = lines.index(title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line.startswith(("|", "+")):
            break
        if line.startswith("|"):
            label, *values = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(label, values)
    return rows


def test_table_shows_every_figure_and_rate(reported: Path) -> None:
    result = cli(reported, "report", CAMPAIGN)
    assert result.exit_code == 0, result.output
    # the summary sentence comes first, wrapped between words to the terminal's width
    assert result.stdout.split(f"{CAMPAIGN}: waves\n")[0].replace("\n", " ").strip() == SUMMARY
    labels = [
        "queued", "uncertain", "sent", "delivered", "failed", "bounced hard", "bounced soft",
        "suppressed",
        "skipped", "opened", "clicked", "form opened", "answered", "unsubscribed", "complained",
        "SMS parts", "records contacted", "open rate", "response rate",
    ]  # fmt: skip
    waves = _ascii_table(result.stdout, f"{CAMPAIGN}: waves")
    assert [waves[label] for label in labels] == [[v, v] for v in _cells(TOTAL)]
    matrix = _ascii_table(result.stdout, f"{CAMPAIGN}: segment × channel")
    assert [matrix[label] for label in labels] == [
        list(column) for column in zip(*(_cells(f) for _, _, f in CELLS), strict=True)
    ]
    days = _ascii_table(result.stdout, f"{CAMPAIGN}: answers per day")
    assert [(d, *days[d]) for d, _, _ in DAYS] == [(d, str(a), str(c)) for d, a, c in DAYS]


def test_csv_holds_every_figure_and_rate(reported: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = cli(reported, "report", CAMPAIGN, "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "answers.csv", "matrix.csv", "not_contacted.csv", "waves.csv",
    ]  # fmt: skip

    def read(name: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO((out / name).read_text(encoding="utf-8"))))

    waves = read("waves.csv")
    assert waves[0][4:] == [
        "queued", "uncertain", "sent", "delivered", "failed", "bounced hard", "bounced soft",
        "suppressed",
        "skipped", "opened", "clicked", "form opened", "answered", "unsubscribed", "complained",
        "SMS parts", "records contacted", "open rate", "response rate",
    ]  # fmt: skip
    assert waves[1][:3] == ["1", "initial", "done"]
    assert waves[1][4:] == waves[2][4:] == _cells(TOTAL)
    assert waves[2][:4] == ["total", "", "", ""]
    assert read("matrix.csv")[1:] == [[s, c, *_cells(f)] for s, c, f in CELLS]
    assert read("answers.csv")[1:] == [[d, str(a), str(c)] for d, a, c in DAYS]
    # the 8 records the lock left out (162 recipients of 170 targeted), as `plan` says
    assert read("not_contacted.csv") == [
        ["reason", "other campaign", "records"],
        ["no_address", "", "4"],
        ["invalid_address", "", "4"],
    ]
    listing = cli(reported, "report", "--format", "csv")
    row = next(r for r in csv.reader(io.StringIO(listing.stdout)) if r[0] == CAMPAIGN)
    # the list's email open rate is the report's: on the 10 emails delivered
    assert row[1:11] == [
        "questionnaire", "administrative", "done", "162", "154", "0", "2.5%", "0.6%", "60.0%", "4",
    ]  # fmt: skip


def test_csv_neutralises_formulas_the_store_holds(reported: Path) -> None:
    # values another tool wrote into the store: a spreadsheet must not run them
    formula = '=HYPERLINK("https://evil.example","click")'
    store = open_store(reported)
    with store.transaction() as conn:
        conn.execute(
            sa.text("UPDATE campaign SET category = :f, type = '@SUM(A1)' WHERE name = :n"),
            {"f": formula, "n": CAMPAIGN},
        )
    store.close()
    listing = cli(reported, "report", "--format", "csv")
    assert listing.exit_code == 0, listing.output
    rows = list(csv.reader(io.StringIO(listing.stdout)))
    row = next(r for r in rows if r[0] == CAMPAIGN)
    assert row[1:3] == ["'@SUM(A1)", f"'{formula}"]
    assert row[3:11] == ["done", "162", "154", "0", "2.5%", "0.6%", "60.0%", "4"]  # intact
    for cells in rows:
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    doc = json.loads(cli(reported, "report", "--format", "json").stdout)
    entry = next(r for r in doc["rows"] if r["name"] == CAMPAIGN)
    assert (entry["type"], entry["category"]) == ("@SUM(A1)", formula)  # JSON: as it is


def test_html_page_holds_every_figure_and_rate(reported: Path, tmp_path: Path) -> None:
    page = tmp_path / "rapport.html"
    result = cli(reported, "report", CAMPAIGN, "--format", "html", "--out", str(page))
    assert result.exit_code == 0, result.output
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    text = " ".join(parser.text)
    for part in SUMMARY.split("; ")[2:5]:  # the three rates, each with its denominator
        assert part in text
    # the parser of test_cli keeps the white space between the tags: drop it
    rows = [[c for c in r if c.strip()] for r in parser.cells]
    rows = [r for r in rows if r]
    assert [r for r in rows if r[0] in ("1", "total")] == [
        ["1", "initial", "done", "23/11 10:00 CET", *_cells(TOTAL)],
        ["total", *_cells(TOTAL)],
    ]
    assert [r for r in rows if r[0] in ("accommodation", "restaurants")] == [
        [s, c, *_cells(f)] for s, c, f in CELLS
    ]
    assert [tuple(r) for r in rows if r[0].startswith("2026-11-")] == [
        (d, str(a), str(c)) for d, a, c in DAYS
    ]
