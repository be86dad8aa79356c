"""The selection gives the same figures on PostgreSQL as on SQLite (the demo, through the CLI).

Every rule of docs/targeting.md is exercised on both stores: another active
campaign's lock, an address suppression and a forgotten contact (a hash-only
suppression), an excluded campaign's and max_messages_per_contact's sent
messages, grouping and duplicate addresses; then `plan` and `lock` must agree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2027-01-05T08:00:00+01:00"
SENT = [  # a first wave of appel-cotisation-2027, sent: for exclude_campaigns and max_messages
    "INSERT INTO wave (campaign_id, number, kind, occurrence_key, status, lock_id, created_at) "
    "SELECT c.id, 1, 'initial', 'x/0/0', 'done', l.id, '2027-01-04' FROM campaign c "
    "JOIN campaign_lock l ON l.campaign_id = c.id WHERE c.name = 'appel-cotisation-2027'",
    "INSERT INTO outbox (campaign_id, wave_id, record_id, channel, address, state, attempts, "
    "created_at, updated_at) SELECT w.campaign_id, w.id, r.record_id, r.channel, r.address, "
    "'sent', 1, '2027-01-04', '2027-01-04' FROM wave w JOIN recipient r ON r.lock_id = w.lock_id",
]


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--workspace", str(root), *args])
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result


def pg_url(store) -> str:  # type: ignore[no-untyped-def]
    url = store.engine.url.render_as_string(hide_password=False)
    return f"{url}?options=-csearch_path%3D{store.engine.info_schema}"


def figures(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Import, apply, plan; create every other kind of not-contacted reason, then plan and
    lock again."""
    monkeypatch.setenv("CAMPAIGNCTL_STORE", url)
    run(root, "audience", "import")
    run(root, "apply", "--auto-approve")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        suppressed = conn.execute(
            sa.text(
                "SELECT email_normalized FROM record WHERE category = 'hotel' AND phone IS NULL "
                "AND email_normalized IS NOT NULL ORDER BY key LIMIT 1"
            )
        ).scalar_one()
        shared_key, other_key = conn.execute(  # two records with one address
            sa.text(
                "SELECT min(key), max(key) FROM record WHERE email_normalized IS NOT NULL "
                "GROUP BY email_normalized "
                "HAVING count(*) > 1 ORDER BY min(key) LIMIT 1"
            )
        ).one()
    run(root, "suppress", "add", suppressed, "--channel", "email")
    run(root, "contacts", "forget", shared_key, "--yes")  # its address stays only as a hash
    first = json.loads(run(root, "plan", "--json", "--show", "not-contacted").stdout)
    run(root, "lock", "mise-a-jour-2027")  # other_campaign for medias-2027
    run(root, "lock", "appel-cotisation-2027")
    with engine.begin() as conn:
        for statement in SENT:
            conn.execute(sa.text(statement))
    engine.dispose()
    planned = json.loads(run(root, "plan", "--json", "--show", "not-contacted").stdout)
    locked = json.loads(run(root, "lock", "medias-2027", "--json").stdout)
    return {
        "first": first["campaigns"],
        "campaigns": planned["campaigns"],
        "summary": planned["summary"],
        "lock": (locked["counts"], locked["created"]),
        "suppressed": suppressed,
        "by_hash": sorted(
            (c["name"], r["reason"])
            for c in first["campaigns"]
            for r in c["not_contacted_records"] or []
            if r["key"] == other_key
        ),
    }


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_plan_and_lock_figures_are_the_same_on_postgresql_and_sqlite(
    store, demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    monkeypatch.setenv("CI", "1")
    on_postgresql = tmp_path / "on-postgresql"
    shutil.copytree(demo, on_postgresql)
    sqlite = figures(demo, f"sqlite:///{demo / '.campaignctl' / 'store.db'}", monkeypatch)
    postgresql = figures(on_postgresql, pg_url(store), monkeypatch)

    campaigns: list[dict] = sqlite["first"] + sqlite["campaigns"]  # type: ignore[operator]
    reasons = {r["reason"] for c in campaigns for r in c["not_contacted"]}
    assert reasons == {
        "other_campaign", "no_address", "invalid_address", "suppressed", "excluded_campaign",
        "max_messages", "duplicate_address",
    }  # fmt: skip
    grouped = next(c for c in campaigns if c["name"] == "medias-2027")
    assert grouped["reached_by_channel"]["email"] > grouped["messages"]["email"]  # groups exist
    # the forgotten record's address, kept only as a hash, suppresses the other record
    assert sqlite["by_hash"] and {reason for _, reason in sqlite["by_hash"]} == {"suppressed"}
    assert postgresql == sqlite
