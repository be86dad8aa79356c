"""New wave rows (store/waves.py), on SQLite and PostgreSQL: numbered after the campaign's
last wave, with the columns the scheduler and `relaunch` give them, a key never twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, Seeded, seed

from campaignctl.enums import WaveKind, WaveStatus
from campaignctl.store.tables import WAVE
from campaignctl.store.waves import NewWave, add_wave, next_wave_number, wave_keys

NAME = "update-2027"


@pytest.fixture
def seeded(scaffold: Path, backend: str) -> Seeded:
    """update-2027 with wave 1 done (`storerows`)."""
    return seed(scaffold)


def test_a_new_wave_is_numbered_after_the_campaign_s_last_and_keeps_its_columns(
    seeded: Seeded,
) -> None:
    missed = NewWave(
        campaign_id=seeded.campaign_id, kind=WaveKind.RECURRENCE,
        occurrence_key=f"{NAME}/1/0", scheduled_for=T0 + timedelta(days=7),
        created_at=T0 + timedelta(days=8), status=WaveStatus.MISSED,
        channels=["email"], note="missed: 1 day late",
    )  # fmt: skip
    with seeded.store.transaction() as conn:
        assert wave_keys(conn) == {f"{NAME}/0/0"}
        assert next_wave_number(conn, seeded.campaign_id) == 2
        wave_id, number = add_wave(conn, missed)
        assert number == 2 and wave_keys(conn) == {f"{NAME}/0/0", f"{NAME}/1/0"}
        manual = NewWave(
            campaign_id=seeded.campaign_id, kind=WaveKind.RELAUNCH,
            occurrence_key=f"{NAME}/manual/3", scheduled_for=T0, created_at=T0,
            lock_id=seeded.lock_id, target="non_responders", channels=["sms"],
        )  # fmt: skip
        assert add_wave(conn, manual, next_wave_number(conn, seeded.campaign_id))[1] == 3
    with seeded.store.read() as conn:
        row = conn.execute(sa.select(WAVE).where(WAVE.c.id == wave_id)).one()
        relaunch = conn.execute(sa.select(WAVE).where(WAVE.c.number == 3)).one()
    assert (row.number, row.kind, row.status, row.occurrence_key, row.channels, row.note) == (
        2, WaveKind.RECURRENCE, WaveStatus.MISSED, f"{NAME}/1/0", ["email"], "missed: 1 day late"
    )  # fmt: skip
    assert row.lock_id is None and row.target is None
    assert (relaunch.kind, relaunch.status, relaunch.lock_id, relaunch.target) == (
        WaveKind.RELAUNCH, WaveStatus.SCHEDULED, seeded.lock_id, "non_responders"
    )  # fmt: skip


def test_an_occurrence_key_is_never_created_twice(seeded: Seeded) -> None:
    again = NewWave(
        campaign_id=seeded.campaign_id, kind=WaveKind.INITIAL, occurrence_key=f"{NAME}/0/0",
        scheduled_for=T0, created_at=T0,
    )  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), seeded.store.transaction() as conn:
        add_wave(conn, again)
