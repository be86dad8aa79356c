"""The `http` SMS transport: a JSON POST per SMS to the provider, over reused connections.

Request: `POST <sms.http.url>` with `Authorization: Bearer $<token_env>` and
`{"to", "text", "sender_id", "client_ref"}`; `client_ref` is our message id, so
a provider that deduplicates on it makes a retry harmless, and its delivery
receipts can name either id. The provider id is read from the JSON answer
(`id` or `message_id`) and stored for later receipts.

Classification: 2xx → sent; 429 and 5xx → retry (honouring `Retry-After`);
any other status → failed; a timeout or a broken connection → retry, marked
`uncertain` when the request may have reached the provider (anything but a
failure to connect).

One `httpx.AsyncClient` (HTTP/1.1, keep-alive) lives as long as the transport;
`concurrency` requests are in flight at once, which is also the number of
kept-alive connections.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from campaignctl.delivery.ratelimit import TokenBucket
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingSms,
    TransportBase,
    read_secret,
)
from campaignctl.spec.models import Channel, RateLimit, SmsHttp


@dataclass(frozen=True)
class HttpSmsOptions:
    """Knobs that are not workspace settings: requests in flight, TLS verification."""

    concurrency: int = 16
    verify: bool = True
    keepalive_expiry: float = 30.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """`Retry-After` as a delay: either delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - (now or datetime.now(UTC)))


def _fast_fail_missing_sniffio() -> None:
    """Make `import sniffio` fail at once when sniffio is not installed.

    httpcore tries `import sniffio` on every pooled request; without the package
    each attempt searches the whole sys.path, which cut throughput to ~200
    SMS/s. A `None` entry in sys.modules is Python's own "known missing" marker:
    the import still raises ImportError, only without the search.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class HttpSmsTransport(TransportBase[OutgoingSms]):
    """Sends SMS through an HTTP provider that takes one JSON POST per message."""

    name = "http"
    channel = Channel.SMS

    def __init__(
        self,
        settings: SmsHttp,
        *,
        rate: RateLimit | None = None,
        environ: Mapping[str, str] | None = None,
        options: HttpSmsOptions | None = None,
    ) -> None:
        self.settings = settings
        self.rate = rate
        self.environ = os.environ if environ is None else environ
        self.options = options or HttpSmsOptions()
        self.bucket: TokenBucket | None = None
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        """Read the token (a missing variable is an error naming it) and build the client."""
        token = read_secret(self.environ, self.settings.token_env, "sms.http.token_env")
        _fast_fail_missing_sniffio()
        if self.rate is not None:
            self.bucket = TokenBucket(self.rate.per_second)
        size = self.options.concurrency
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            timeout=httpx.Timeout(self.settings.timeout.total_seconds()),
            limits=httpx.Limits(
                max_connections=size,
                max_keepalive_connections=size,
                keepalive_expiry=self.options.keepalive_expiry,
            ),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "campaignctl"},
            verify=self.options.verify,
            follow_redirects=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send_many(self, messages: Sequence[OutgoingSms]) -> list[DeliveryOutcome]:
        """POST each SMS, `concurrency` at a time; one outcome per message, in order."""
        if self._client is None:
            raise RuntimeError("HttpSmsTransport.send_many called before open()")
        outcomes: list[DeliveryOutcome | None] = [None] * len(messages)
        pending = iter(range(len(messages)))

        async def worker() -> None:
            for index in pending:
                outcomes[index] = await self._post(messages[index])

        workers = min(self.options.concurrency, len(messages))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return [outcome for outcome in outcomes if outcome is not None]

    async def _post(self, sms: OutgoingSms) -> DeliveryOutcome:
        assert self._client is not None
        if self.bucket is not None:
            await self.bucket.acquire()
        payload = {
            "to": sms.to,
            "text": sms.text,
            "sender_id": sms.sender_id,
            "client_ref": sms.client_ref,
        }
        mid = sms.message_id
        try:
            response = await self._client.post(self.settings.url, json=payload)
        except httpx.TimeoutException as exc:
            reached = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=f"SMS provider timed out ({type(exc).__name__})",
                uncertain=reached,
            )
        except httpx.TransportError as exc:
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=f"SMS provider unreachable: {exc or type(exc).__name__}",
                uncertain=not isinstance(exc, httpx.ConnectError),
            )
        status = response.status_code
        body = response.text[:300]
        if 200 <= status < 300:
            provider_id = _provider_id(response)
            reply = f"{status} {response.reason_phrase}"
            if provider_id is None:
                reply += " (no id in the answer: delivery receipts cannot be matched)"
            return DeliveryOutcome(mid, DeliveryStatus.SENT, reply=reply, provider_id=provider_id)
        reply = f"{status} {response.reason_phrase}: {body}".rstrip(": ")
        if status == 429 or status >= 500:
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=reply,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return DeliveryOutcome(mid, DeliveryStatus.FAILED, reply=reply)


def _provider_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("id", "message_id"):
        value = data.get(key)
        if value not in (None, ""):
            return str(value)
    return None
