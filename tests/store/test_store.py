from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from campaignctl.enums import OutboxState, WaveKind
from campaignctl.errors import ServiceUnavailable
from campaignctl.store import Store
from campaignctl.store.store import utcnow
from campaignctl.store.tables import CAMPAIGN, OUTBOX, RECORD, WAVE


def test_store_upgrades_itself_on_first_use(store: Store) -> None:
    assert store.schema_status().current is None
    assert store.serial() == 0
    assert store.schema_status().up_to_date


def test_every_write_transaction_bumps_the_serial(store: Store) -> None:
    before = store.serial()
    with store.transaction():
        pass
    with store.read():
        pass
    assert store.serial() == before + 1


def _campaign_and_wave(conn: sa.Connection) -> tuple[int, int]:
    now = utcnow()
    campaign = conn.execute(
        sa.insert(CAMPAIGN).returning(CAMPAIGN.c.id),
        {"name": "c", "type": "message", "content_hash": "x", "applied_at": now, "state": "draft"},
    ).scalar_one()
    wave = conn.execute(
        sa.insert(WAVE).returning(WAVE.c.id),
        {"campaign_id": campaign, "number": 1, "kind": WaveKind.INITIAL,
         "occurrence_key": "initial", "created_at": now, "status": "scheduled"},
    ).scalar_one()  # fmt: skip
    return campaign, wave


def test_two_messages_of_one_wave_to_one_address_are_impossible(store: Store) -> None:
    now = utcnow()
    row = {"channel": "email", "address": "a@b.fr", "state": OutboxState.QUEUED,
           "created_at": now, "updated_at": now, "attempts": 0}  # fmt: skip
    with store.transaction() as conn:
        campaign, wave = _campaign_and_wave(conn)
        conn.execute(sa.insert(OUTBOX), {**row, "campaign_id": campaign, "wave_id": wave})
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(sa.insert(OUTBOX), {**row, "campaign_id": campaign, "wave_id": wave})


def test_a_wave_occurrence_is_never_created_twice(store: Store) -> None:
    with store.transaction() as conn:
        campaign, _wave = _campaign_and_wave(conn)
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(
            sa.insert(WAVE),
            {"campaign_id": campaign, "number": 2, "kind": WaveKind.RELAUNCH,
             "occurrence_key": "initial", "created_at": utcnow(), "status": "scheduled"},
        )  # fmt: skip


def test_records_are_unique_per_audience_and_key(store: Store) -> None:
    now = utcnow()
    row = {"audience": "a", "key": "k", "status": "active", "created_at": now, "updated_at": now}
    with store.transaction() as conn:
        conn.execute(sa.insert(RECORD), row)
        conn.execute(sa.insert(RECORD), {**row, "audience": "b"})
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
        conn.execute(sa.insert(RECORD), row)


def test_instants_go_in_aware_and_come_back_in_utc_with_the_defaults_filled(store: Store) -> None:
    paris = datetime(2027, 3, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    with store.transaction() as conn:
        campaign, wave = _campaign_and_wave(conn)
        conn.execute(
            sa.insert(OUTBOX),
            {"campaign_id": campaign, "wave_id": wave, "channel": "email", "address": "a@b.fr",
             "created_at": paris, "updated_at": paris},
        )  # fmt: skip
    with store.read() as conn:
        row = conn.execute(sa.select(OUTBOX.c.created_at, OUTBOX.c.state, OUTBOX.c.attempts)).one()
    assert (row.created_at, row.created_at.tzinfo) == (paris, UTC)
    assert (row.state, row.attempts) == (OutboxState.QUEUED, 0)
    naive = datetime(2027, 3, 1)  # refused: no time zone
    with (
        pytest.raises(sa.exc.StatementError, match="without a time zone"),
        store.transaction() as conn,
    ):
        conn.execute(sa.update(OUTBOX).values(updated_at=naive))


def test_relative_sqlite_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    store = Store("sqlite:///.campaignctl/store.db", root=tmp_path)
    store.ensure_schema()
    assert (tmp_path / ".campaignctl" / "store.db").is_file()
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_an_unreachable_database_is_exit_69_naming_the_url_without_password() -> None:
    store = Store("postgresql+psycopg://bob:secret@127.0.0.1:1/nowhere")
    with pytest.raises(ServiceUnavailable) as caught:
        store.ensure_schema()
    assert "postgresql+psycopg://bob:***@127.0.0.1:1/nowhere" in caught.value.message
    assert "secret" not in caught.value.render()
    assert caught.value.exit_code == 69


def test_shipped_head_read_from_the_migration_files_is_alembics_head() -> None:
    from campaignctl.store.store import _script, _shipped_head

    assert _shipped_head() == _script().get_current_head()
