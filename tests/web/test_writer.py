"""The web side's event writer when two `serve` workers write at once (library API)."""

from __future__ import annotations

import asyncio

from campaignctl.events.model import Event
from campaignctl.spec.models import EventType
from campaignctl.web.writer import EventWriter
from tests.web.conftest import QUESTIONNAIRE, Sent

KEYS = ("HOT-002", "HOT-003", "HOT-004")


def test_two_workers_answering_the_same_records_in_opposite_orders_both_succeed(
    sent: Sent,
) -> None:
    """Each worker's batch updates the records' responses in the order its requests came:
    two batches in opposite orders must not fail (PostgreSQL would see a deadlock)."""
    stores = [sent.store(), sent.store()]
    rounds = 15

    async def main() -> None:
        writers = [EventWriter(store) for store in stores]
        for writer in writers:
            await writer.start()
        try:
            for n in range(rounds):
                orders = [KEYS, tuple(reversed(KEYS))]
                await asyncio.gather(
                    *(
                        writer.record(
                            Event(
                                type=EventType.FORM_SUBMITTED,
                                campaign=QUESTIONNAIRE,
                                record=key,
                                data={"capacity": 100 + n, "commentaire": f"worker {w}"},
                            )
                        )
                        for w, (writer, order) in enumerate(zip(writers, orders, strict=True))
                        for key in order
                    )
                )
        finally:
            for writer in writers:
                await writer.stop()

    try:
        asyncio.run(main())
    finally:
        for store in stores:
            store.close()
    [(events,)] = sent.query("SELECT COUNT(*) FROM event WHERE type = 'form_submitted'")
    assert events == rounds * 2 * len(KEYS)
    rows = sent.query(
        "SELECT r.key, p.status FROM response p JOIN record r ON r.id = p.record_id ORDER BY r.key"
    )
    assert rows == [(key, "to_process") for key in KEYS]
