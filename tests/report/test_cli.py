"""`campaignctl report` through the CLI: every figure in every format, compared whole."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from golden import Goldens
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.report import expected as x

golden = Goldens(Path(__file__).with_name("golden"))


@pytest.fixture
def reported(reported_any):
    """The scenario of conftest.py on SQLite (whose report reads its summary tables) and on
    PostgreSQL (the full aggregation): the same whole outputs from both."""
    return reported_any


def run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), "report", *args])


def test_list_table_is_printed_whole(reported) -> None:
    result = run(reported.root)
    assert result.exit_code == 0, result.output
    golden("list.txt", result.stdout)
    assert result.stderr == ""


def test_campaign_table_is_printed_whole(reported) -> None:
    result = run(reported.root, "mise-a-jour-2027")
    assert result.exit_code == 0, result.output
    golden("campaign.txt", result.stdout)
    # the summary sentence, wrapped between words to the terminal's width
    assert result.stdout.startswith(
        "mise-a-jour-2027 (questionnaire, administrative): sending; 27 records, 35 messages; answers: 9 / 24\n"
        "records contacted (37.5%); opens: 13 / 24 delivered (54.2%); form opened without answering: 2 / 24\n"
        "records contacted (8.3%); responses to process: 4\n"
        "mise-a-jour-2027: waves\n"
    )


def test_report_reads_the_store_when_a_definition_is_broken_and_says_so(reported) -> None:
    # a teammate's broken branch: a campaign with an unknown key, a template that does not parse
    campaign = reported.root / "campaigns" / "medias-2027.yaml"
    campaign.write_text(campaign.read_text(encoding="utf-8") + "bogus_key: 1\n", encoding="utf-8")
    (reported.root / "templates" / "broken.txt.j2").write_text("{% if %}", encoding="utf-8")
    warning = (
        "warning: 2 error(s) in the workspace definitions (`campaignctl validate` lists them); "
        "this command reads only the store\n"
    )
    result = run(reported.root)
    assert result.exit_code == 0, result.output
    golden("list.txt", result.stdout)
    assert result.stderr == warning
    one = run(reported.root, "mise-a-jour-2027", "--format", "json")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["name"] == "mise-a-jour-2027"
    assert one.stderr == warning


def test_report_still_needs_a_valid_campaignctl_yaml(reported) -> None:
    config = reported.root / "campaignctl.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "bogus_key: 1\n", encoding="utf-8")
    result = run(reported.root)
    assert result.exit_code == 65, result.output
    assert result.stderr.startswith("campaignctl.yaml:")
    assert "error[unknown-key]: unknown key 'bogus_key'" in result.stderr


def _boxed_headers(text: str) -> list[list[str]]:
    """The column headers of each boxed table in `text`, the lines of a wrapped one joined."""
    tables, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if not lines[i].startswith("+-"):
            i += 1
            continue
        end = i + 1
        while not lines[end].startswith("+-"):
            end += 1
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[i + 1 : end]]
        tables.append(
            [" ".join(part for part in column if part) for column in zip(*cells, strict=True)]
        )
        i = end + 1
        while not lines[i].startswith("+-"):  # the body, up to the closing rule
            i += 1
        i += 1
    return tables


def test_on_80_columns_report_tables_fit_and_never_split_a_header_word(
    reported, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    listing = run(reported.root)
    assert listing.exit_code == 0, listing.output
    one = run(reported.root, "mise-a-jour-2027")
    assert one.exit_code == 0, one.output
    for text in (listing.stdout, one.stdout):
        too_wide = [line for line in text.splitlines() if len(line) > 80]
        assert too_wide == [], text
    # stacked tables repeat the campaign; each header reads whole once its lines are joined
    headers = [h for table in _boxed_headers(listing.stdout) for h in table if h != "campaign"]
    assert headers == [
        "type", "category", "status", "records", "messages", "uncertain", "response rate",
        "form opened, no answer", "email open rate", "to process", "waves",
    ]  # fmt: skip
    assert _boxed_headers(one.stdout) == [
        ["wave / kind / status / when", "1 initial done 01/03 09:00 CET",
         "2 relaunch done 08/03 09:00 CET", "3 relaunch sending 15/03 09:00 CET", "total"],
        ["segment / channel", "accommodation email", "restaurants sms"],
        ["day", "answers", "cumulative"],
        ["wave", "reason", "messages"],
    ]  # fmt: skip
    # the list of a campaign's waves shows one wave a line
    assert [line.rstrip(" |").rsplit("| ", 1)[-1] for line in listing.stdout.splitlines()
            if "(relance)" in line or "01/03" in line] == [
        "01/03 09:00 CET,", "08/03 09:00 CET (relance),", "15/03 09:00 CET (relance)"
    ]  # fmt: skip


def _figures(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in ("bounced", "rates")}


def test_json_carries_every_figure_and_rate(reported) -> None:
    result = run(reported.root, "mise-a-jour-2027", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["format_version"], doc["report"], doc["timezone"]) == (
        1,
        "campaign",
        "Europe/Paris",
    )
    assert doc["generated_at"] == "2027-03-16T07:00:00+00:00"
    waves = [_figures(w["figures"]) for w in doc["waves"]]
    assert waves == [x.WAVE_1.counts(), x.WAVE_2.counts(), x.WAVE_3.counts()]
    assert _figures(doc["totals"]) == x.TOTALS.counts()
    assert doc["totals"]["rates"] == {
        "open": {"numerator": 13, "denominator": 24, "basis": "delivered", "value": 13 / 24},
        "click": {"numerator": 6, "denominator": 24, "basis": "delivered", "value": 6 / 24},
        "response": {
            "numerator": 9,
            "denominator": 24,
            "basis": "records contacted",
            "value": 9 / 24,
        },
        "form_open_without_answer": {
            "numerator": 2,
            "denominator": 24,
            "basis": "records contacted",
            "value": 2 / 24,
        },
    }
    assert [(c["segment"], c["channel"], _figures(c["figures"])) for c in doc["matrix"]] == [
        ("accommodation", "email", x.ACCOMMODATION_EMAIL.counts()),
        ("restaurants", "sms", x.RESTAURANTS_SMS.counts()),
    ]
    assert [tuple(d.values()) for d in doc["answers_per_day"]] == x.ANSWERS_PER_DAY
    assert doc["waves"][0]["skipped_reasons"] == {
        "skipped: in another active campaign": 1,
        "suppressed: unsubscribed": 1,
    }
    assert doc["waves"][0]["started_at"] == "2027-03-01T08:00:00+00:00"
    golden("campaign.json", result.stdout)


def test_json_list_names_the_waves(reported) -> None:
    result = run(reported.root, "--format", "json", "--type", "questionnaire")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["name"] for r in doc["rows"]] == ["mise-a-jour-2027", "medias-2027"]
    row = doc["rows"][0]
    assert row["waves"] == [
        {"at": "2027-03-01T08:00:00+00:00", "kind": "initial"},
        {"at": "2027-03-08T08:00:00+00:00", "kind": "relaunch"},
        {"at": "2027-03-15T08:00:00+00:00", "kind": "relaunch"},
    ]
    assert row["response_rate"]["numerator"] == 9 and row["responses_to_process"] == 4
    golden("list.json", run(reported.root, "--format", "json").stdout)


def test_csv_writes_each_table_whole(reported, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = run(reported.root, "mise-a-jour-2027", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["answers.csv", "matrix.csv", "reasons.csv", "waves.csv"]
    for name in names:
        golden(f"csv-{name}", (out / name).read_bytes().decode("utf-8"))
    waves = list(csv.reader(io.StringIO((out / "waves.csv").read_text())))
    total = dict(zip(waves[0], waves[-1], strict=True))
    assert total["sent"] == "32" and total["records contacted"] == "24"
    assert total["open rate"] == "54.2%" and total["response rate"] == "37.5%"
    matrix = run(reported.root, "mise-a-jour-2027", "--format", "csv", "--table", "matrix")
    # click's `stdout` turns CRLF into LF: compare the bytes the command wrote
    assert matrix.stdout_bytes == (out / "matrix.csv").read_bytes()
    listing = run(reported.root, "--format", "csv")
    golden("csv-campaigns.csv", listing.stdout_bytes.decode("utf-8"))


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.cells.append([])

    def handle_data(self, data) -> None:
        self.text.append(data)
        if self.tags and self.tags[-1] in ("td", "th") and self.cells:
            self.cells[-1].append(data)


def test_html_page_holds_every_figure(reported, tmp_path: Path) -> None:
    page = tmp_path / "rapport.html"
    result = run(reported.root, "mise-a-jour-2027", "--format", "html", "--out", str(page))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote the HTML report to {page}\n"
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    text = " ".join(parser.text)
    # stamped in the workspace's time zone (Europe/Paris), with the zone: not in UTC
    assert "Office de tourisme du Val des Aiguilles — 2027-03-16 08:00 CET (+01:00)" in text
    assert "answers: 9 / 24 records contacted (37.5%)" in text
    assert parser.tags.count("svg") == 2
    rows = {tuple(r[:2]): r for r in parser.cells}
    figures = [str(getattr(x.TOTALS, f)) for f in x.TOTALS.counts()]
    total = next(r for r in parser.cells if r and r[0] == "total")
    assert total[1:] == [*figures, "54.2%", "37.5%"]
    cell = rows[("restaurants", "sms")]
    assert cell[2:] == [
        *(str(v) for v in x.RESTAURANTS_SMS.counts().values()),
        "—",  # no email in the cell: no open rate
        "16.7%",
    ]
    days = [tuple(r) for r in parser.cells if r and r[0].startswith("2027-03-")]
    assert days == [(d, str(a), str(c)) for d, a, c in x.ANSWERS_PER_DAY]


def test_email_writes_the_report_through_the_file_transport(reported) -> None:
    result = run(
        reported.root, "mise-a-jour-2027", "--email", "direction@example.org,ca@example.org"
    )
    assert result.exit_code == 0, result.output
    (eml,) = (reported.root / ".campaignctl" / "outbox" / "reports").glob("*.eml")
    assert result.stderr.startswith(
        "sent the report to direction@example.org, ca@example.org (written "
    )
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == "direction@example.org, ca@example.org"
    assert message["Subject"] == (
        "Office de tourisme du Val des Aiguilles: report on campaign mise-a-jour-2027, 2027-03-16"
    )
    assert "partenaires@val-des-aiguilles.example" in message["From"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "answers: 9 / 24 records contacted (37.5%)" in text
    assert "answers: 9 / 24 records contacted (37.5%)" in html and "<svg" in html
    golden("email.txt", text)


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (
            ["mise-a-jour"],
            64,
            "error: campaign 'mise-a-jour' does not exist\n"
            "  hint: did you mean 'mise-a-jour-2027'?\n",
        ),
        (
            ["mise-a-jour-2027", "--format", "csv", "--table", "funnel"],
            64,
            "error: --table 'funnel': this report has no such table\n"
            "  hint: tables: waves, matrix, answers, reasons; or --out DIR for one file each\n",
        ),
        (
            ["--since", "yesterday"],
            64,
            "error: --since 'yesterday' is not a date\n  hint: write it as YYYY-MM-DD\n",
        ),
        (
            ["--email", "direction"],
            64,
            "error: --email: direction is not an email address\n"
            "  hint: write --email alice@example.org,bob@example.org\n",
        ),
    ],
)
def test_errors_say_what_to_do(reported, args, code, error) -> None:
    result = run(reported.root, *args)
    assert (result.exit_code, result.stderr) == (code, error)


@pytest.mark.parametrize(
    ("option", "values"),
    [
        (
            "--status",
            "'scheduled', 'sending', 'held', 'waiting', 'incomplete', 'done', 'failed', 'missed', 'cancelled', 'never sent'",
        ),
        ("--type", "'questionnaire', 'message', 'information'"),
    ],
)
def test_an_unknown_status_or_type_is_a_usage_error_listing_the_values(
    reported, option: str, values: str
) -> None:
    result = run(reported.root, option, "bogus")
    assert result.exit_code == 64, result.output
    assert result.stdout == ""
    assert result.stderr.endswith(
        f"Error: Invalid value for '{option}': Value error, 'bogus' is not one of {values}.\n"
    )


def test_status_and_type_filter_the_list(reported) -> None:
    result = run(
        reported.root, "--format", "json", "--status", "never sent", "--type", "questionnaire"
    )
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)["rows"]] == ["medias-2027"]


def test_empty_states_are_explicit(reported) -> None:
    result = run(reported.root, "medias-2027")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "medias-2027 (questionnaire, administrative): never sent; 0 records, 0 messages; answers: — (no\n"
        "records contacted yet); opens: — (no emails sent yet); form opened without answering: — (no records\n"
        "contacted yet); responses to process: 0\n"
    )
    assert result.stderr == "No wave of medias-2027 has been sent yet.\n"
    nothing = run(reported.root, "--since", "2030-01-01")
    assert (nothing.stdout, nothing.stderr) == ("", "No campaign matches these filters.\n")
