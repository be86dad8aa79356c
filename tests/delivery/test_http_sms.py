"""The http SMS transport against a real HTTP server playing the provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
CLIENT = {"name": "lean"}


@pytest.fixture(autouse=True, params=["lean", "httpx"])
def client(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs with the built-in keep-alive client and with httpx (used behind a
    proxy): both must classify the provider's answers the same way."""
    CLIENT["name"] = request.param
    yield request.param
    CLIENT["name"] = "lean"


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
        options=HttpSmsOptions(concurrency=concurrency, client=CLIENT["name"]),
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


def test_chunked_answers_and_connection_close_are_understood(sms_provider: SmsProvider) -> None:
    chunked, closing, after = sms(1), sms(2), sms(3)
    sms_provider.script[chunked.to] = ["chunked"]
    sms_provider.script[closing.to] = ["close"]
    outcomes = asyncio.run(
        send_batches(transport_for(sms_provider.url, concurrency=1), [chunked], [closing], [after])
    )
    assert [o[0].provider_id for o in outcomes] == ["prov-1", "prov-2", "prov-3"]
    assert all(o[0].ok for o in outcomes)
    # one connection until the provider said close, then a new one
    clients = [request.client for request in sms_provider.requests]
    assert clients[0] == clients[1] != clients[2]


def test_a_connection_the_provider_closed_while_idle_is_not_reused(
    sms_provider: SmsProvider,
) -> None:
    async def go() -> list[DeliveryOutcome]:
        async with transport_for(sms_provider.url, concurrency=1) as transport:
            first = await transport.send(sms(1))
            sms_provider.close_idle()
            await asyncio.sleep(0.2)  # the FIN reaches this process
            return [first, await transport.send(sms(2))]

    outcomes = asyncio.run(go())
    assert all(o.ok and not o.uncertain for o in outcomes), outcomes
    assert sms_provider.accepted() == {"s1": 1, "s2": 1}


@pytest.mark.parametrize("status", [401, 403, 404, 405])
def test_a_refused_token_or_url_is_misconfigured_not_a_failed_message(
    sms_provider: SmsProvider, status: int
) -> None:
    """A wrong token or URL refuses every SMS: the engine stops and keeps them queued
    (exit 69) instead of failing the whole campaign one message at a time."""
    message = sms(1)
    sms_provider.script[message.to] = [status]
    [[refused]] = asyncio.run(send_batches(transport_for(sms_provider.url), [message]))

    assert refused.status is DeliveryStatus.MISCONFIGURED
    assert refused.reply.startswith("the SMS provider refuses every request")
    assert ("SMS_TOKEN" in refused.hint) == (status in (401, 403))
    assert "tok-123" not in refused.reply + refused.hint
