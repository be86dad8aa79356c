"""The file transports: atomic, idempotent captures under the outbox folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from campaignctl.delivery.file import EmailFileTransport, SmsFileTransport, capture_name
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingEmail,
    OutgoingSms,
)

from .conftest import build_email


def send_emails(folder: Path, messages: list[OutgoingEmail]) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with EmailFileTransport(folder) as transport:
            return await transport.send_many(messages)

    return asyncio.run(run())


def send_sms(folder: Path, messages: list[OutgoingSms]) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        async with SmsFileTransport(folder) as transport:
            return await transport.send_many(messages)

    return asyncio.run(run())


def test_each_email_becomes_one_eml_named_after_its_message_id(tmp_path: Path) -> None:
    folder = tmp_path / "outbox" / "update-2027"
    messages = [build_email(i, f"u{i}@example.net") for i in range(3)]
    outcomes = send_emails(folder, messages)

    assert all(o.ok for o in outcomes)
    assert sorted(p.name for p in folder.iterdir()) == [
        "m0.test@example.org.eml",
        "m1.test@example.org.eml",
        "m2.test@example.org.eml",
    ]
    assert (folder / "m1.test@example.org.eml").read_bytes() == messages[1].message


def test_resending_an_email_overwrites_its_capture_and_leaves_no_temp_file(
    tmp_path: Path,
) -> None:
    first = build_email(1, "a@example.net")
    second = OutgoingEmail(
        first.sender, first.recipients, b"Subject: v2\r\n\r\nv2\r\n", first.message_id
    )
    send_emails(tmp_path, [first])
    send_emails(tmp_path, [second])

    assert [p.name for p in tmp_path.iterdir()] == ["m1.test@example.org.eml"]
    assert (tmp_path / "m1.test@example.org.eml").read_bytes() == second.message


def test_a_batch_written_by_several_threads_answers_each_message_in_order(
    tmp_path: Path,
) -> None:
    # one message cannot be written (its name is taken by a folder): it alone is retried,
    # and the outcomes follow the messages whatever thread wrote them
    messages = [build_email(i, f"u{i}@example.net") for i in range(50)]
    (tmp_path / f"{capture_name(messages[7].message_id)}.eml").mkdir()
    outcomes = send_emails(tmp_path, messages)

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert [o.status for o in outcomes] == [
        DeliveryStatus.RETRY if i == 7 else DeliveryStatus.SENT for i in range(50)
    ]
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == sorted(f"m{i}.test@example.org.eml" for i in range(50) if i != 7)
    for i in (0, 49):
        assert (tmp_path / f"m{i}.test@example.org.eml").read_bytes() == messages[i].message


def test_unsafe_message_ids_get_distinct_safe_names() -> None:
    names = {capture_name(mid) for mid in ("../etc/passwd", "a/b@x", "a_b@x", "<a_b@x>", ".hidden")}
    assert all("/" not in name and not name.startswith(".") for name in names)
    assert capture_name("a/b@x") != capture_name("a_b@x")
    assert capture_name("<a_b@x>") == "a_b@x"
    assert len(names) == 4  # "<a_b@x>" and "a_b@x" are the same message id


def test_each_sms_is_one_json_line_and_a_resend_adds_nothing(tmp_path: Path) -> None:
    first = [OutgoingSms(f"+3361234000{i}", f"Bonjour {i} é", "OTVAL", f"s{i}") for i in range(3)]
    send_sms(tmp_path, first)
    outcomes = send_sms(tmp_path, [first[1], OutgoingSms("+33612340009", "new", "OTVAL", "s9")])

    assert all(o.ok for o in outcomes)
    assert outcomes[0].reply == "already captured"
    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [line["client_ref"] for line in lines] == ["s0", "s1", "s2", "s9"]
    assert lines[0]["text"] == "Bonjour 0 é" and lines[0]["sender_id"] == "OTVAL"


def test_a_torn_last_sms_line_does_not_swallow_the_next_one(tmp_path: Path) -> None:
    (tmp_path / "sms.jsonl").write_text(
        '{"client_ref": "s0", "to": "+336"}\n{"client_ref": "s1", "t'
    )
    send_sms(tmp_path, [OutgoingSms("+33612340001", "again", "OTVAL", "s1")])

    lines = (tmp_path / "sms.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2])["client_ref"] == "s1"
