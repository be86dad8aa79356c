"""The transport interface: outcomes, SMTP reply classification, the plugin registry, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from campaignctl.delivery.file import EmailFileTransport, SmsFileTransport
from campaignctl.delivery.http_sms import HttpSmsTransport
from campaignctl.delivery.ratelimit import KeyedLimiter, TokenBucket
from campaignctl.delivery.smtp import SmtpTransport
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingEmail,
    OutgoingSms,
    Transport,
    TransportBase,
    TransportRegistry,
    TransportSettings,
    UnknownTransportError,
    classify_smtp_reply,
    create_transport,
    default_registry,
)
from campaignctl.errors import UsageError
from campaignctl.spec.models import Channel, Sender, SmsSettings


@pytest.mark.parametrize(
    ("code", "text", "status", "hard", "enhanced"),
    [
        (250, "2.0.0 Ok: queued as ABC", DeliveryStatus.SENT, False, "2.0.0"),
        (451, "4.7.1 Greylisted, try again", DeliveryStatus.RETRY, False, "4.7.1"),
        (452, "Too many recipients", DeliveryStatus.RETRY, False, None),
        (550, "5.1.1 User unknown", DeliveryStatus.FAILED, True, "5.1.1"),
        (550, "5.1.10 Null MX", DeliveryStatus.FAILED, True, "5.1.10"),
        (
            553,
            "Requested action not taken: 5.1.3 bad address syntax",
            DeliveryStatus.FAILED,
            True,
            None,
        ),
        (550, "5.7.1 Relaying denied", DeliveryStatus.FAILED, False, "5.7.1"),
        (554, "Transaction failed", DeliveryStatus.FAILED, False, None),
    ],
)
def test_smtp_replies_are_classified(
    code: int, text: str, status: DeliveryStatus, hard: bool, enhanced: str | None
) -> None:
    outcome = classify_smtp_reply("m1", code, text)
    assert (outcome.status, outcome.hard_bounce, outcome.enhanced_code) == (status, hard, enhanced)
    assert outcome.reply == f"{code} {text}" and outcome.smtp_code == code


def test_builtin_transports_come_from_the_registry(tmp_path: Path) -> None:
    registry = default_registry()
    assert registry.names(Channel.EMAIL) == ["file", "smtp"]
    assert registry.names(Channel.SMS) == ["file", "http"]
    sender = Sender.model_validate(
        {"from": "Office <contact@example.org>", "transport": "smtp", "smtp": {"host": "mx"}}
    )
    sms = SmsSettings.model_validate(
        {"sender_id": "OTVAL", "http": {"url": "https://sms.example.net", "token_env": "T"}}
    )
    settings = TransportSettings(outbox_dir=tmp_path, sender=sender, sms=sms, environ={})
    kinds = {
        (Channel.EMAIL, "file"): EmailFileTransport,
        (Channel.EMAIL, "smtp"): SmtpTransport,
        (Channel.SMS, "file"): SmsFileTransport,
        (Channel.SMS, "http"): HttpSmsTransport,
    }
    for (channel, name), cls in kinds.items():
        transport = create_transport(channel, name, settings)
        assert isinstance(transport, cls) and isinstance(transport, Transport)
        assert (transport.channel, transport.name) == (channel, name)


def test_smtp_without_settings_is_a_usage_error(tmp_path: Path) -> None:
    sender = Sender.model_validate({"from": "a@example.org", "transport": "smtp"})
    with pytest.raises(UsageError, match="sender 'news' uses transport smtp but has no smtp"):
        create_transport(
            Channel.EMAIL, "smtp", TransportSettings(tmp_path, sender=sender, sender_name="news")
        )


class _Pigeon(TransportBase[OutgoingSms]):
    """A third-party transport: nothing but the public interface."""

    name = "pigeon"
    channel = Channel.SMS

    async def send_many(self, messages: Sequence[OutgoingSms]) -> list[DeliveryOutcome]:
        return [
            DeliveryOutcome(m.message_id, DeliveryStatus.SENT, provider_id="coo") for m in messages
        ]


def register(registry: TransportRegistry) -> None:
    registry.register(Channel.SMS, "pigeon", lambda settings: _Pigeon())


def test_a_third_party_plugin_registers_like_the_builtins(tmp_path: Path) -> None:
    registry = TransportRegistry()
    registry.load_plugin("campaignctl.delivery.builtin:register")
    registry.load_plugin(f"{__name__}:register")
    assert registry.names(Channel.SMS) == ["file", "http", "pigeon"]

    async def run() -> DeliveryOutcome:
        transport = create_transport(
            Channel.SMS, "pigeon", TransportSettings(tmp_path), registry=registry
        )
        async with transport:
            return await transport.send(OutgoingSms("+33612345678", "hi", "OTVAL", "s1"))

    assert asyncio.run(run()).provider_id == "coo"
    with pytest.raises(
        UnknownTransportError,
        match=r"no email transport named 'pigeon' is installed \(installed: file, smtp\)",
    ):
        create_transport(Channel.EMAIL, "pigeon", TransportSettings(tmp_path), registry=registry)


def test_outgoing_email_derives_its_domain_and_refuses_a_bare_string() -> None:
    email = OutgoingEmail("a@example.org", ["Someone@Example.NET"], b"x", "m1")
    assert email.recipients == ("Someone@Example.NET",) and email.domain == "example.net"
    with pytest.raises(TypeError):
        OutgoingEmail("a@example.org", "b@example.net", b"x", "m1")  # type: ignore[arg-type]


def test_token_bucket_spaces_reservations_by_the_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(10, clock=lambda: now[0])
    assert [round(bucket.reserve(), 6) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    now[0] += 10  # a long idle time refills at most `capacity` tokens
    assert [round(bucket.reserve(), 6) for _ in range(3)] == [0.0, 0.1, 0.2]


def test_token_bucket_allows_a_burst_of_its_capacity() -> None:
    now = [0.0]
    bucket = TokenBucket(2, capacity=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_keyed_limiter_counts_per_key() -> None:
    limiter = KeyedLimiter(2)
    assert [limiter.try_acquire("a") for _ in range(3)] == [True, True, False]
    assert limiter.try_acquire("b")
    limiter.release("a")
    assert limiter.try_acquire("a") and limiter.held("a") == 2
