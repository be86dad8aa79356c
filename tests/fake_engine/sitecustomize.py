"""A stand-in send engine for scheduler tests, installed into real processes.

Put this folder on PYTHONPATH and set FAKE_ENGINE=1: every Python process loads it
at start-up, and the
two seams of `campaignctl.schedule.runner` (lock_for_wave, send_wave) are replaced
by versions that write real outbox rows and "send" them by marking them sent.
FAKE_ENGINE_HOLD=path makes each send wait until that file exists (so a test can
hold a process inside its pass); FAKE_ENGINE_STALL_AFTER=N makes it stall for good
after N messages, once it has written FAKE_ENGINE_STALLED (so a test can kill -9 it
mid-wave); FAKE_ENGINE_LOG=path appends one line per message "sent".
"""

from __future__ import annotations

import contextlib
import os
import time


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake engine: {path} never appeared")
        time.sleep(0.05)


def lock_for_wave(store, workspace, campaign, now):
    """A fresh lock per occurrence: a copy of the latest lock's recipients."""
    import sqlalchemy as sa

    from campaignctl.store.tables import CampaignLock, Recipient

    lock, recipient = CampaignLock.__table__, Recipient.__table__
    with store.transaction() as conn:
        latest = conn.execute(
            sa.select(sa.func.max(lock.c.id)).where(lock.c.campaign_id == campaign.id)
        ).scalar_one()
        new = conn.execute(
            sa.insert(lock).values(campaign_id=campaign.id, created_at=now, definition_hash="x")
        ).inserted_primary_key[0]
        columns = ["record_id", "channel", "address", "segment", "group_key"]
        conn.execute(
            sa.insert(recipient).from_select(
                ["lock_id", *columns],
                sa.select(sa.literal(new), *[recipient.c[c] for c in columns]).where(
                    recipient.c.lock_id == latest
                ),
            )
        )
    return new


def send_wave(store, workspace, job, now):
    import sqlalchemy as sa
    from sqlalchemy.dialects.sqlite import insert

    from campaignctl.enums import OutboxState, WaveStatus
    from campaignctl.schedule.runner import WaveRun
    from campaignctl.store.tables import Outbox, Recipient

    outbox, recipient = Outbox.__table__, Recipient.__table__
    if os.environ.get("FAKE_ENGINE_HOLD"):
        _wait_for(os.environ["FAKE_ENGINE_HOLD"])
    selection = job.recipients
    if selection is None:
        selection = sa.select(
            recipient.c.record_id, recipient.c.segment, recipient.c.channel,
            recipient.c.address, recipient.c.group_key,
        ).where(recipient.c.lock_id == job.lock_id)  # fmt: skip
    with store.transaction(immediate=True) as conn:
        for row in conn.execute(selection).all():
            conn.execute(
                insert(outbox).values(
                    campaign_id=job.campaign.id, wave_id=job.wave_id, record_id=row.record_id,
                    segment=row.segment, group_key=row.group_key, channel=row.channel,
                    address=row.address, state=OutboxState.QUEUED, created_at=now,
                    updated_at=now,
                    message_id=f"w{job.wave_id}.r{row.record_id}@example.org",
                ).on_conflict_do_nothing()
            )  # fmt: skip
    sent = 0
    log = os.environ.get("FAKE_ENGINE_LOG")
    while True:
        with store.transaction(immediate=True) as conn:
            row = conn.execute(
                sa.select(outbox.c.id, outbox.c.address).where(
                    outbox.c.wave_id == job.wave_id, outbox.c.state == OutboxState.QUEUED
                ).order_by(outbox.c.id).limit(1)
            ).first()  # fmt: skip
            if row is None:
                break
            if log:  # "the transport": one line per message actually sent
                with open(log, "a", encoding="utf-8") as out:
                    out.write(f"{job.wave_id} {row.address}\n")
            conn.execute(
                sa.update(outbox).where(outbox.c.id == row.id)
                .values(state=OutboxState.SENT, sent_at=now, updated_at=now, attempts=1)
            )  # fmt: skip
            sent += 1
        if sent == int(os.environ.get("FAKE_ENGINE_STALL_AFTER", "0")):
            open(os.environ["FAKE_ENGINE_STALLED"], "w").close()
            time.sleep(3600)  # killed here
    return WaveRun(job.wave_id, WaveStatus.DONE, sent=sent)


def install() -> None:
    from campaignctl.schedule import runner

    runner.lock_for_wave = lock_for_wave
    runner.send_wave = send_wave


if os.environ.get("FAKE_ENGINE") == "1":  # set by the tests that start processes
    with contextlib.suppress(ImportError):  # a Python without campaignctl on its path
        install()
