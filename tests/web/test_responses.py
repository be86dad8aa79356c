"""`responses list/show/accept/reject/export` after answers arrive through `events ingest`
and `POST /api/events` (the form's own path is in test_form.py)."""

from __future__ import annotations

import csv
import io
import json

import httpx

from tests.web.conftest import API_TOKEN, QUESTIONNAIRE, Sent, Server, cli


def answer_line(key: str, **answers) -> dict:
    return {
        "id": f"answer-{key}",
        "type": "form_submitted",
        "campaign": QUESTIONNAIRE,
        "record": key,
        "at": "2026-11-23T11:00:00+01:00",
        "data": answers,
    }


def record(sent: Sent, key: str) -> tuple:
    email, phone, attributes = sent.query(
        "SELECT email_normalized, phone, attributes FROM record WHERE key = :k", k=key
    )[0]
    return email, phone, json.loads(attributes) if isinstance(attributes, str) else attributes


def test_ingested_answers_are_listed_accepted_into_the_record_and_exported(
    sent: Sent,
) -> None:
    lines = [
        answer_line("HOT-002", capacity=24, email="reservation@le-fenil.example"),
        answer_line("HOT-003", capacity=42),  # the value it has: no change proposed
        answer_line("RES-001", website="https://=cmd.example"),
    ]
    path = sent.root / "answers.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = cli(sent.root, "events", "ingest", str(path))
    assert result.exit_code == 0, result.output

    listed = cli(sent.root, "responses", "list", QUESTIONNAIRE, "--json")
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert [(r["record"], r["status"]) for r in document["responses"]] == [
        ("HOT-002", "to_process"),
        ("HOT-003", "to_process"),
        ("RES-001", "to_process"),
    ]
    first = document["responses"][0]
    assert first["changes"] == [
        {"field": "capacity", "old": 20, "new": 24},
        {
            "field": "email",
            "old": "info@hotel-restaurant-le-fenil.example",
            "new": "reservation@le-fenil.example",
        },
    ]
    assert document["responses"][1]["changes"] == []

    shown = cli(sent.root, "responses", "show", str(first["id"]))
    assert shown.exit_code == 0, shown.output
    assert "capacity | 20                                     | 24" in shown.stdout

    report = cli(sent.root, "report", QUESTIONNAIRE, "--format", "json")
    assert report.exit_code == 0, report.output
    assert '"responses_to_process": 3' in report.stdout

    accepted = cli(sent.root, "responses", "accept", str(first["id"]))
    assert accepted.exit_code == 0, accepted.output
    assert "1 response(s) accepted; 2 field(s) written to their records" in accepted.output
    email, _phone, attributes = record(sent, "HOT-002")
    assert (email, attributes["capacity"], attributes["email"]) == (
        "reservation@le-fenil.example",
        24,
        "reservation@le-fenil.example",
    )
    assert sent.query("SELECT action, object FROM audit_log WHERE action LIKE 'response.%'") == [
        ("response.accept", "record:providers:HOT-002")
    ]
    again = cli(sent.root, "responses", "accept", str(first["id"]))
    assert again.exit_code == 65
    assert f"response {first['id']} is already accepted" in again.output

    rejected = cli(sent.root, "responses", "reject", str(document["responses"][2]["id"]))
    assert rejected.exit_code == 0, rejected.output
    assert record(sent, "RES-001")[2]["website"] != "https://=cmd.example"

    exported = cli(sent.root, "responses", "export", "--format", "csv")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert rows[0] == ["response", "campaign", "audience", "record", "field", "old", "new",
                       "accepted_at"]  # fmt: skip
    assert [r[3:7] for r in rows[1:]] == [
        ["HOT-002", "capacity", "20", "24"],
        [
            "HOT-002",
            "email",
            "info@hotel-restaurant-le-fenil.example",
            "reservation@le-fenil.example",
        ],
    ]


def test_accept_all_without_a_terminal_asks_for_yes(sent: Sent) -> None:
    path = sent.root / "answers.jsonl"
    path.write_text(json.dumps(answer_line("HOT-002", capacity=30)) + "\n", encoding="utf-8")
    assert cli(sent.root, "events", "ingest", str(path)).exit_code == 0
    result = cli(sent.root, "responses", "accept", "--all")
    assert result.exit_code == 64
    assert "hint: add --yes to confirm" in result.output
    assert cli(sent.root, "responses", "accept", "--all", "--yes").exit_code == 0
    assert record(sent, "HOT-002")[2]["capacity"] == 30


def test_the_events_api_takes_json_lines_with_its_bearer_token(server: Server) -> None:
    body = json.dumps(answer_line("HOT-002", capacity=26)) + "\n" + "not json\n"
    url = f"{server.base}/api/events"
    anonymous = httpx.post(url, content=body)
    wrong = httpx.post(url, content=body, headers={"authorization": "Bearer nope"})
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert server.sent.query("SELECT COUNT(*) FROM response") == [(0,)]
    answer = httpx.post(url, content=body, headers={"authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["read"], summary["recorded"], summary["bad_lines"]) == (2, 1, 1)
    assert summary["problems"][0]["line"] == 2
    assert server.sent.query("SELECT COUNT(*) FROM response WHERE status = 'to_process'") == [(1,)]


def test_the_events_api_is_rate_limited(limited_server: Server) -> None:
    url = f"{limited_server.base}/api/events"
    headers = {"authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client() as client:
        answers = [client.post(url, content=b"\n", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].headers["retry-after"] == "20"


def test_a_later_import_keeps_the_values_accepted_responses_wrote_and_says_so(
    sent: Sent,
) -> None:
    path = sent.root / "answers.jsonl"
    answer = answer_line("HOT-002", capacity=24, email="reservation@le-fenil.example")
    path.write_text(json.dumps(answer) + "\n", encoding="utf-8")
    assert cli(sent.root, "events", "ingest", str(path)).exit_code == 0
    assert cli(sent.root, "responses", "accept", "--all", "--yes").exit_code == 0
    source = sent.root / "audiences" / "contacts.csv"
    original = source.read_text(encoding="utf-8")
    old_row = "HOT-002;Hôtel-Restaurant Le Fenil;"
    assert old_row in original and ";20;4;https://www.hotel-restaurant-le-fenil" in original
    # the office renames the hotel in its own system, which still holds the old capacity
    # and email: the row changed, and its import would write them back
    source.write_text(original.replace(old_row, "HOT-002;Le Fenil;"), encoding="utf-8")

    result = cli(sent.root, "audience", "import", "--json")
    assert result.exit_code == 0, result.output
    assert (
        "kept 2 values changed by accepted responses (HOT-002 capacity, HOT-002 email)"
        in result.output
    )
    assert "update it from `campaignctl responses export --format csv`" in result.output
    document = json.loads(result.stdout)
    assert [(i["updated"], i["kept_accepted"]) for i in document["imports"]] == [(1, 2)]
    email, _phone, attributes = record(sent, "HOT-002")
    assert (email, attributes["capacity"], attributes["email"], attributes["name"]) == (
        "reservation@le-fenil.example",
        24,
        "reservation@le-fenil.example",
        "Le Fenil",
    )
    [(data,)] = sent.query(
        "SELECT data FROM audit_log WHERE action = 'audience.import' ORDER BY id DESC LIMIT 1"
    )
    data = json.loads(data) if isinstance(data, str) else data
    assert [
        (k["record"], k["field"], k["kept"], k["source"]) for k in data["kept_accepted_values"]
    ] == [
        ("HOT-002", "capacity", 24, 20),
        (
            "HOT-002",
            "email",
            "reservation@le-fenil.example",
            "info@hotel-restaurant-le-fenil.example",
        ),
    ]

    # the same file again: nothing to keep, nothing said
    again = cli(sent.root, "audience", "import")
    assert again.exit_code == 0 and "accepted responses" not in again.output
    # a value typed in the source since (neither the old nor the accepted one) is imported
    edited = source.read_text(encoding="utf-8").replace(
        ";20;4;https://www.hotel-restaurant-le-fenil", ";30;4;https://www.hotel-restaurant-le-fenil"
    )
    source.write_text(edited, encoding="utf-8")
    third = cli(sent.root, "audience", "import")
    assert third.exit_code == 0, third.output
    assert "kept 1 value changed by accepted responses (HOT-002 email)" in third.output
    email, _phone, attributes = record(sent, "HOT-002")
    assert (email, attributes["capacity"]) == ("reservation@le-fenil.example", 30)
