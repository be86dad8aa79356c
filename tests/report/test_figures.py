"""The SQL aggregation, on SQLite and PostgreSQL, against the hand-derived figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from campaignctl.errors import StateError
from campaignctl.report.figures import ListFilter, campaign_list, campaign_report
from campaignctl.report.model import Rate, SentWave
from campaignctl.store import Store
from tests.report import expected as x


@pytest.fixture
def store(reported_any):
    s = Store(reported_any.store_url, root=reported_any.root)
    yield s
    s.close()


def test_campaign_report_counts_every_figure_per_wave_cell_and_day(store) -> None:
    report = campaign_report(store, "mise-a-jour-2027", timezone="Europe/Paris")
    assert (report.type, report.category, report.status) == (
        "questionnaire",
        "administrative",
        "sending",
    )
    assert (report.records, report.messages, report.responses_to_process) == (27, 35, 4)
    assert [(w.number, w.kind, w.status) for w in report.waves] == [
        (1, "initial", "done"),
        (2, "relaunch", "done"),
        (3, "relaunch", "sending"),
    ]
    assert report.waves[0].started_at == datetime(2027, 3, 1, 8, tzinfo=UTC)
    assert [w.figures for w in report.waves] == [x.WAVE_1, x.WAVE_2, x.WAVE_3]
    assert report.waves[0].skipped_reasons == {
        "skipped: in another active campaign": 1,
        "suppressed: unsubscribed": 1,
    }
    assert report.totals == x.TOTALS
    assert [(c.segment, c.channel, c.figures) for c in report.matrix] == [
        ("accommodation", "email", x.ACCOMMODATION_EMAIL),
        ("restaurants", "sms", x.RESTAURANTS_SMS),
    ]
    assert [(d.day.isoformat(), d.answers, d.cumulative) for d in report.answers_per_day] == (
        x.ANSWERS_PER_DAY
    )
    assert report.totals.open_rate == Rate(13, 24, "delivered")  # emails: SMS are not opened
    assert report.totals.response_rate == Rate(9, 24, "records contacted")
    assert report.totals.form_open_rate == Rate(2, 24, "records contacted")
    assert report.waves[2].figures.open_rate == Rate(0, 0, "emails sent")  # SMS only


def test_campaign_list_one_row_per_campaign_latest_first(store) -> None:
    listing = campaign_list(store, timezone="Europe/Paris")
    rows = {r.name: r for r in listing.rows}
    assert [r.name for r in listing.rows] == [
        "taxe-sejour-guide",
        "mise-a-jour-2027",
        "appel-cotisation-2027",
        "medias-2027",
    ]
    update = rows["mise-a-jour-2027"]
    assert (update.status, update.records, update.messages, update.responses_to_process) == (
        "sending",
        27,
        35,
        4,
    )
    assert update.response_rate == Rate(9, 24, "records contacted")
    assert update.form_open_rate == Rate(2, 24, "records contacted")
    assert update.email_open_rate == Rate(13, 24, "delivered")
    assert update.waves == [
        SentWave(datetime(2027, 3, 1, 8, tzinfo=UTC), "initial"),
        SentWave(datetime(2027, 3, 8, 8, tzinfo=UTC), "relaunch"),
        SentWave(datetime(2027, 3, 15, 8, tzinfo=UTC), "relaunch"),
    ]
    appeal = rows["appel-cotisation-2027"]
    assert (appeal.status, appeal.records, appeal.messages) == ("done", 10, 10)
    assert appeal.email_open_rate == Rate(4, 10, "emails sent")  # no delivery receipts
    assert appeal.response_rate == Rate(0, 10, "records contacted")
    assert rows["taxe-sejour-guide"].status == "scheduled"
    assert rows["taxe-sejour-guide"].waves == []
    assert rows["medias-2027"].status == "never sent"
    assert rows["medias-2027"].response_rate.value is None


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        (ListFilter(status="done"), ["appel-cotisation-2027"]),
        (ListFilter(type="questionnaire"), ["mise-a-jour-2027", "medias-2027"]),
        (ListFilter(since=date(2027, 3, 15)), ["taxe-sejour-guide", "mise-a-jour-2027"]),
        (ListFilter(status="never sent", type="questionnaire"), ["medias-2027"]),
        (ListFilter(since=date(2028, 1, 1)), []),
    ],
)
def test_campaign_list_filters(reported, filters, names) -> None:
    store = Store(reported.store_url, root=reported.root)
    listing = campaign_list(store, timezone="Europe/Paris", filters=filters)
    store.close()
    assert [r.name for r in listing.rows] == names


def test_unknown_campaign_suggests_the_close_name(reported) -> None:
    store = Store(reported.store_url, root=reported.root)
    # the library has no workspace to tell a typo: the store's one error, with its names
    with pytest.raises(StateError) as raised:
        campaign_report(store, "mise-a-jour", timezone="Europe/Paris")
    assert raised.value.render() == (
        "error: campaign 'mise-a-jour' is not applied: the store does not know it yet\n"
        "  hint: run `campaignctl apply` first, or did you mean 'mise-a-jour-2027'?"
    )
    empty = campaign_report(store, "medias-2027", timezone="Europe/Paris")
    store.close()
    assert (empty.status, empty.waves, empty.matrix, empty.answers_per_day) == (
        "never sent",
        [],
        [],
        [],
    )
    assert empty.totals.response_rate.describe() == "— (no records contacted yet)"
