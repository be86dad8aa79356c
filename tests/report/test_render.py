"""Report renderers over known figures: CSV (formula-safe), HTML (self-contained), empty states."""

from __future__ import annotations

from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

from campaignctl.report.model import (
    CampaignList,
    CampaignListRow,
    CampaignReport,
    DailyAnswers,
    Figures,
    MatrixCell,
    Rate,
    WaveReport,
    to_json,
)
from campaignctl.report.render import html_page, report_tables, table_csv, write_csv
from campaignctl.safecsv import neutralise

FIRST = Figures(
    sent=90,
    delivered=88,
    bounced_hard=2,
    opened=40,
    clicked=12,
    form_opened=30,
    answered=20,
    records_contacted=100,
    sms_parts=0,
    email_delivered=88,  # an email cell: every message delivered is an email
    email_sent=90,
)
SECOND = Figures(
    sent=70,
    delivered=70,
    opened=10,
    form_opened=12,
    answered=9,
    records_contacted=70,
    sms_parts=140,
)


def campaign_report(waves=True) -> CampaignReport:
    return CampaignReport(
        name="update-2027",
        type="questionnaire",
        category="administrative",
        status="done",
        timezone="Europe/Paris",
        records=100,
        messages=160,
        responses_to_process=4,
        totals=Figures(sent=160, delivered=158, opened=50, answered=29, records_contacted=100),
        waves=[
            WaveReport(1, "initial", "done", None, datetime(2027, 3, 1, 8, tzinfo=UTC), FIRST),
            WaveReport(
                2,
                "relaunch",
                "done",
                None,
                datetime(2027, 3, 8, 8, tzinfo=UTC),
                SECOND,
                {"suppressed": 2},
            ),
        ]
        if waves
        else [],
        matrix=[MatrixCell("=hotels", "email", FIRST), MatrixCell("campings", "sms", SECOND)],
        answers_per_day=[
            DailyAnswers(date(2027, 3, 1), 12, 12),
            DailyAnswers(date(2027, 3, 2), 8, 20),
            DailyAnswers(date(2027, 3, 8), 9, 29),
        ],
        generated_at=datetime(2027, 3, 9, 7, tzinfo=UTC),
    )


def test_rates_carry_their_denominators_and_never_divide_by_zero() -> None:
    assert FIRST.open_rate.describe() == "40 / 88 delivered (45.5%)"
    assert FIRST.response_rate.describe() == "20 / 100 records contacted (20.0%)"
    assert FIRST.form_open_rate.numerator == 10
    assert Figures().response_rate.describe() == "— (no records contacted yet)"
    assert Rate(0, 0, "delivered").value is None


def test_csv_neutralises_formula_cells() -> None:
    assert [neutralise(v) for v in ["=SUM(A1)", "+1", "-1", "@x", "\tx", "\rx", "ok", 3, None]] == [
        "'=SUM(A1)",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "ok",
        3,
        "",
    ]
    matrix = next(t for t in report_tables(campaign_report()) if t.name == "matrix")
    text = table_csv(matrix)
    assert text.splitlines()[1].startswith(
        "'=hotels,email,0,0,90,88,0,2,0,0,0,40,12,30,20,0,0,0,100,45.5%,20.0%"
    )


def test_csv_writes_one_file_per_table(tmp_path: Path) -> None:
    paths = write_csv(campaign_report(), tmp_path)
    # the reasons table exists because wave 2 has suppressed messages
    assert [p.name for p in paths] == ["waves.csv", "matrix.csv", "answers.csv", "reasons.csv"]
    assert (tmp_path / "reasons.csv").read_bytes() == b"wave,reason,messages\r\n2,suppressed,2\r\n"
    assert (tmp_path / "answers.csv").read_bytes() == (
        b"day,answers,cumulative\r\n2027-03-01,12,12\r\n2027-03-02,8,20\r\n2027-03-08,9,29\r\n"
    )
    waves = (tmp_path / "waves.csv").read_text().splitlines()
    assert waves[2].startswith("2,relaunch,done,08/03 09:00 CET,0,0,70,70,")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_data(self, data) -> None:
        self.text.append(data)


def test_html_is_self_contained_with_charts_and_figures() -> None:
    page = html_page(campaign_report(), "Office <du Val>")
    parser = _Text()
    parser.feed(page)
    text = " ".join(parser.text)
    assert parser.links == []  # no network: nothing to fetch
    assert "script" not in parser.tags
    assert parser.tags.count("svg") == 2 and "polyline" in parser.tags
    assert "Office <du Val>" in text and "Office &lt;du Val&gt;" in page
    assert "answers: 29 / 100 records contacted (29.0%)" in text
    assert "responses to process: 4" in text
    assert "=hotels" in text


def test_empty_states_are_explicit() -> None:
    page = html_page(campaign_report(waves=False), "Org")
    assert "No wave of update-2027 has been sent yet." in page
    assert "<svg" not in page
    assert "No campaign has been applied" in html_page(CampaignList([], "UTC"), "Org")


def test_campaign_list_shows_every_wave_compactly() -> None:
    row = CampaignListRow(
        "update-2027",
        "questionnaire",
        "administrative",
        "done",
        100,
        160,
        Rate(29, 100, "records contacted"),
        Rate(13, 100, "records contacted"),
        Rate(50, 158, "delivered"),
        4,
        [
            (datetime(2027, 3, 1, 8, tzinfo=UTC), "initial"),
            (datetime(2027, 3, 8, 8, tzinfo=UTC), "relaunch"),
        ],
    )
    (table,) = report_tables(CampaignList([row], "Europe/Paris"))
    assert table.rows[0][-1] == "01/03 09:00 CET, 08/03 09:00 CET (relance)"
    assert table.rows[0][3:10] == ["done", 100, 160, 0, "29.0%", "13.0%", "31.6%"]


def test_campaign_list_shows_held_sms_with_their_time_and_uncertain_messages() -> None:
    row = CampaignListRow(
        "update-2027", "questionnaire", "administrative", "held", 100, 154,
        Rate(0, 100, "records contacted"), Rate(0, 100, "records contacted"),
        Rate(0, 145, "emails sent"), 0, [(datetime(2026, 12, 6, 21, tzinfo=UTC), "initial")],
        uncertain=20, held=9, held_until=datetime(2026, 12, 7, 8, tzinfo=UTC),
    )  # fmt: skip
    (table,) = report_tables(CampaignList([row], "Europe/Paris"))
    headers = dict(zip(table.headers, table.rows[0], strict=True))
    assert headers["status"] == "held: 9 SMS until 07/12 09:00 CET"
    assert headers["uncertain"] == 20


def test_json_form() -> None:
    document = to_json(campaign_report())
    assert document["format_version"] == 1 and document["report"] == "campaign"
    assert document["waves"][1]["figures"]["rates"]["response"] == {
        "numerator": 9,
        "denominator": 70,
        "basis": "records contacted",
        "value": 9 / 70,
    }
    assert document["answers_per_day"][0] == {"day": "2027-03-01", "answers": 12, "cumulative": 12}


def test_a_table_too_wide_for_the_terminal_is_stacked_repeating_its_first_column() -> None:
    from campaignctl.report.render import COLUMN_OVERHEAD, ReportTable, fit_table

    headers = ["figure", *(f"wave {n} relaunch done" for n in range(1, 7))]
    table = ReportTable("waves", "waves", headers, [["records contacted", *range(100, 106)]])
    fitted = fit_table(table, 40)
    assert [f.table.headers[0] for f in fitted] == ["figure"] * len(fitted)
    assert [h for f in fitted for h in f.table.headers[1:]] == headers[1:]
    assert [f.table.title for f in fitted] == ["waves"] + ["waves (continued)"] * (len(fitted) - 1)
    for f in fitted:
        assert sum(w + COLUMN_OVERHEAD for w in f.widths) + 1 <= 40
        # no column narrower than its longest word or its widest value
        assert all(w >= 8 for w in f.widths[1:]) and f.widths[0] >= len("records contacted")


def test_the_report_email_is_dated_by_the_workspace_day_not_the_utc_one() -> None:
    from campaignctl.report.mail import report_email

    message = report_email(
        CampaignList([], "Europe/Paris"),
        organization="Office",
        from_="Office <contact@example.org>",
        to=("direction@example.org",),
        now=datetime(2027, 3, 15, 23, 30, tzinfo=UTC),  # 00:30 on the 16th in Paris
    )
    assert b"Subject: Office: report on campaigns, 2027-03-16\r\n" in message.data
