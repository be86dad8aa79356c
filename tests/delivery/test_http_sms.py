"""The http SMS transport against a real HTTP server playing the provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from campaignctl.delivery.http_sms import HttpSmsOptions, HttpSmsTransport, parse_retry_after
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    MissingSecretError,
    OutgoingSms,
)
from campaignctl.spec.models import SmsHttp

from .conftest import SmsProvider, free_port

ENV = {"SMS_TOKEN": "tok-123"}


def sms(number: int, to: str | None = None) -> OutgoingSms:
    return OutgoingSms(
        to=to or f"+3361234{number:04d}",
        text=f"Bonjour {number}",
        sender_id="OTVAL",
        message_id=f"s{number}",
    )


def transport_for(url: str, *, timeout: str = "5s", concurrency: int = 4) -> HttpSmsTransport:
    return HttpSmsTransport(
        SmsHttp(url=url, token_env="SMS_TOKEN", timeout=timeout),
        environ=ENV,
        options=HttpSmsOptions(concurrency=concurrency),
    )


async def send_batches(
    transport: HttpSmsTransport, *batches: list[OutgoingSms]
) -> list[list[DeliveryOutcome]]:
    async with transport:
        return [await transport.send_many(batch) for batch in batches]


def test_provider_ids_are_stored_and_connections_reused(sms_provider: SmsProvider) -> None:
    messages = [sms(i) for i in range(40)]
    [outcomes] = asyncio.run(send_batches(transport_for(sms_provider.url), messages))

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert all(o.ok and o.provider_id and o.provider_id.startswith("prov-") for o in outcomes)
    assert len({o.provider_id for o in outcomes}) == 40
    first = sms_provider.requests[0]
    assert first.authorization == "Bearer tok-123"
    assert set(first.body) >= {"to", "text", "sender_id", "client_ref"}
    assert sms_provider.accepted() == {m.message_id: 1 for m in messages}
    # Keep-alive: at most one connection per request in flight, not one per SMS.
    assert len(sms_provider.clients()) <= 4


def test_provider_id_may_come_as_message_id(sms_provider: SmsProvider) -> None:
    sms_provider.id_key = "message_id"
    [[outcome]] = asyncio.run(send_batches(transport_for(sms_provider.url), [sms(1)]))
    assert outcome.ok and outcome.provider_id == "prov-1"


def test_429_is_retried_after_the_providers_delay(sms_provider: SmsProvider) -> None:
    message = sms(1)
    sms_provider.script[message.to] = [("retry-after", 429, "7")]
    [[limited], [sent]] = asyncio.run(
        send_batches(transport_for(sms_provider.url), [message], [message])
    )
    assert limited.status is DeliveryStatus.RETRY and limited.retry_after == timedelta(seconds=7)
    assert limited.reply.startswith("429 Too Many Requests")
    assert sent.ok and sms_provider.accepted() == {message.message_id: 1}


def test_server_error_is_retried_and_client_error_is_final(sms_provider: SmsProvider) -> None:
    broken, invalid = sms(1), sms(2)
    sms_provider.script[broken.to] = [500]
    sms_provider.script[invalid.to] = [400]
    [[e500, e400]] = asyncio.run(send_batches(transport_for(sms_provider.url), [broken, invalid]))

    assert e500.status is DeliveryStatus.RETRY and not e500.uncertain
    assert e400.status is DeliveryStatus.FAILED
    assert e400.reply == '400 Bad Request: {"error": "scripted 400"}'


def test_a_provider_slower_than_the_timeout_is_an_uncertain_retry(
    sms_provider: SmsProvider,
) -> None:
    message = sms(1)
    sms_provider.script[message.to] = [("slow", 1.5)]
    [[outcome]] = asyncio.run(
        send_batches(transport_for(sms_provider.url, timeout="1s"), [message])
    )
    assert outcome.status is DeliveryStatus.RETRY and outcome.uncertain
    assert "timed out" in outcome.reply


def test_an_unreachable_provider_is_a_certain_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}/send"
    [[outcome]] = asyncio.run(send_batches(transport_for(url), [sms(1)]))
    assert outcome.status is DeliveryStatus.RETRY and not outcome.uncertain


def test_a_missing_token_variable_is_named() -> None:
    transport = HttpSmsTransport(
        SmsHttp(url="http://127.0.0.1:9/send", token_env="SMS_TOKEN"), environ={}
    )
    with pytest.raises(MissingSecretError) as error:
        asyncio.run(send_batches(transport))
    assert "SMS_TOKEN is not set (sms.http.token_env" in error.value.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(minutes=2)),
        ("Wed, 01 Apr 2026 10:00:30 GMT", timedelta(seconds=30)),
        ("Wed, 01 Apr 2026 09:59:00 GMT", timedelta(0)),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: timedelta | None
) -> None:
    now = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected
