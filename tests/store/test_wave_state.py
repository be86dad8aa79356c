"""A wave's state from its rows (store/wave_state.py), on SQLite and PostgreSQL: never `done`
while a row is queued or being sent; held, waiting and uncertain rows shown as such; and the
one mapping to the exit codes of `send` and `scheduler tick`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from storerows import T0, seed

from campaignctl.enums import OutboxState, WaveStatus
from campaignctl.errors import ExitCode
from campaignctl.schedule import runner
from campaignctl.store.tables import OUTBOX, WAVE
from campaignctl.store.wave_state import HELD_REASON, WaveProgress, exit_code, wave_progress

LATER = T0 + timedelta(hours=10)
NOW = T0 + timedelta(hours=1)


def _set_rows(seeded, *changes: dict) -> None:
    """The first rows of wave 1 (by id) take `changes`, in order; the wave is `sending`."""
    with seeded.store.transaction() as conn:
        ids = conn.execute(
            sa.select(OUTBOX.c.id).where(OUTBOX.c.wave_id == seeded.wave_id).order_by(OUTBOX.c.id)
        ).scalars()
        for row_id, change in zip(ids, changes, strict=False):
            conn.execute(sa.update(OUTBOX).where(OUTBOX.c.id == row_id).values(**change))
        conn.execute(
            sa.update(WAVE)
            .where(WAVE.c.id == seeded.wave_id)
            .values(status=WaveStatus.SENDING, finished_at=None)
        )


def _wave(seeded) -> tuple[str, object]:
    with seeded.store.read() as conn:
        status, finished = conn.execute(
            sa.select(WAVE.c.status, WAVE.c.finished_at).where(WAVE.c.id == seeded.wave_id)
        ).one()
    return str(status), finished


HELD = {"state": OutboxState.QUEUED, "next_attempt_at": LATER, "reason": HELD_REASON}
RETRY = {"state": OutboxState.QUEUED, "next_attempt_at": LATER, "error": "451 try later"}


@pytest.mark.parametrize(
    "open_row",
    [
        HELD,
        RETRY,
        {"state": OutboxState.QUEUED, "next_attempt_at": None},
        {"state": OutboxState.SENDING},
    ],
    ids=["held", "retry", "queued", "sending"],
)
def test_a_wave_is_never_done_while_a_row_is_queued_or_being_sent(
    scaffold: Path, backend: str, open_row: dict
) -> None:
    seeded = seed(scaffold)
    _set_rows(seeded, open_row)

    assert runner.finish_wave(seeded.store, seeded.wave_id, WaveStatus.DONE, NOW) == "sending"
    assert _wave(seeded) == ("sending", None)

    _set_rows(seeded, {"state": OutboxState.SENT, "next_attempt_at": None, "reason": None})
    assert runner.finish_wave(seeded.store, seeded.wave_id, WaveStatus.DONE, NOW) == "done"
    status, finished = _wave(seeded)
    assert status == "done" and finished is not None


@pytest.mark.parametrize(
    ("rows", "state", "code", "counts"),
    [
        ([], "done", 0, (0, 0, 0, 0)),
        ([HELD, HELD], "held", 75, (0, 2, 0, 0)),
        ([RETRY], "waiting", 75, (0, 0, 1, 0)),
        ([HELD, RETRY], "held", 75, (0, 1, 1, 0)),
        ([{"state": OutboxState.QUEUED}, HELD], "sending", 75, (1, 1, 0, 0)),
        # a held SMS whose quiet hours ended is due: the next pass sends it
        ([{**HELD, "next_attempt_at": T0}], "sending", 0, (1, 0, 0, 0)),
        # the wave: 20 uncertain, 0 sent: never "done" in the list, and exit 1
        ([{"state": OutboxState.UNCERTAIN}] * 3, "incomplete", 1, (0, 0, 0, 3)),
        ([{"state": OutboxState.UNCERTAIN}, HELD], "held", 1, (0, 1, 0, 1)),  # 1 wins
    ],
    ids=["done", "held", "waiting", "held-and-waiting", "due", "held-until-passed",
         "uncertain", "uncertain-and-held"],
)  # fmt: skip
def test_the_state_and_exit_code_of_a_wave_come_from_its_rows(
    scaffold: Path, backend: str, rows: list[dict], state: str, code: int, counts: tuple
) -> None:
    seeded = seed(scaffold)
    _set_rows(seeded, *rows)
    runner.finish_wave(seeded.store, seeded.wave_id, WaveStatus.DONE, NOW)

    with seeded.store.read() as conn:
        progress = wave_progress(conn, [seeded.wave_id], NOW)[seeded.wave_id]

    assert progress.state == state
    assert progress.exit_code == code
    assert (progress.due, progress.held, progress.waiting, progress.uncertain) == counts
    if progress.held:
        assert progress.waits("Europe/Paris")[0] == (
            f"{progress.held} SMS held by quiet hours until Mon 01/03 19:00 (Europe/Paris)"
        )


def test_the_codes_of_several_waves_add_up_with_1_before_75_before_0() -> None:
    done = WaveProgress(WaveStatus.DONE)
    held = WaveProgress(WaveStatus.SENDING, held=9, held_until=LATER)
    failed = WaveProgress(WaveStatus.DONE, failed=1)
    assert exit_code(p.exit_code for p in [done, done]) == ExitCode.OK
    assert exit_code(p.exit_code for p in [done, held]) == ExitCode.TEMPFAIL
    assert exit_code(p.exit_code for p in [held, failed, done]) == ExitCode.FAILED
    assert exit_code([]) == ExitCode.OK
