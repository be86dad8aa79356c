"""The `http` SMS transport: a JSON POST per SMS to the provider, over reused connections.

Request: `POST <sms.http.url>` with `Authorization: Bearer $<token_env>` and
`{"to", "text", "sender_id", "client_ref"}`; `client_ref` is our message id, so
a provider that deduplicates on it makes a retry harmless, and its delivery
receipts can name either id. The provider id is read from the JSON answer
(`id` or `message_id`) and stored for later receipts.

Classification: 2xx → sent; 429 and 5xx → retry (honouring `Retry-After`);
401, 403 (the token) and 404, 405 (the URL) → `misconfigured`: the send stops with
exit 69 and the messages stay queued; any other status → failed; a timeout or a
broken connection → retry, marked `uncertain` when the request may have reached the
provider (anything but a failure to connect).

`concurrency` requests are in flight at once, each on its own kept-alive
HTTP/1.1 connection. The requests go through `_KeepAlivePool`: kept-alive asyncio
streams framed by h11 (the HTTP/1.1 library under httpx), without httpx's pool,
which cost about 1.5 ms of CPU per request and capped the transport near 500 SMS/s.
When a proxy applies to the provider's URL (HTTP(S)_PROXY and NO_PROXY), or
`HttpSmsOptions.client` says so, httpx sends instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import h11
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
    client: str = "auto"  # "lean" (_KeepAlivePool), "httpx", or auto: lean unless a proxy applies


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
        self.concurrency = self.options.concurrency
        self.bucket: TokenBucket | None = None
        self._client: httpx.AsyncClient | None = None
        self._lean: _KeepAlivePool | None = None

    async def open(self) -> None:
        """Read the token (a missing variable is an error naming it) and build the client."""
        token = read_secret(self.environ, self.settings.token_env, "sms.http.token_env")
        if self.rate is not None:
            self.bucket = TokenBucket(self.rate.per_second)
        size = self.options.concurrency
        timeout = self.settings.timeout.total_seconds()
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "campaignctl"}
        if self._use_lean():
            self._lean = _KeepAlivePool(
                self.settings.url, headers, timeout, self.options.keepalive_expiry,
                verify=self.options.verify,
            )  # fmt: skip
            return
        _fast_fail_missing_sniffio()
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=size,
                max_keepalive_connections=size,
                keepalive_expiry=self.options.keepalive_expiry,
            ),
            headers=headers,
            verify=self.options.verify,
            follow_redirects=False,
        )

    def _use_lean(self) -> bool:
        if self.options.client != "auto":
            return self.options.client == "lean"
        import urllib.request

        parts = urlsplit(self.settings.url)
        proxies = urllib.request.getproxies()
        proxied = parts.scheme in proxies or "all" in proxies
        return not (proxied and not urllib.request.proxy_bypass(parts.hostname or ""))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._lean is not None:
            self._lean.close()
            self._lean = None

    async def send_many(self, messages: Sequence[OutgoingSms]) -> list[DeliveryOutcome]:
        """POST each SMS, `concurrency` at a time; one outcome per message, in order."""
        if self._client is None and self._lean is None:
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
            if self._lean is not None:
                status, reason, headers, content = await self._lean.post(
                    json.dumps(payload, ensure_ascii=False).encode()
                )
            else:
                assert self._client is not None
                response = await self._client.post(self.settings.url, json=payload)
                status, reason = response.status_code, response.reason_phrase
                headers, content = response.headers, response.content
        except (httpx.TimeoutException, _Timeout) as exc:
            reached = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout) and not (
                isinstance(exc, _Timeout) and not exc.reached
            )
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=f"SMS provider timed out ({_timeout_name(exc)})",
                uncertain=reached,
            )
        except (httpx.TransportError, _Broken) as exc:
            reached = not isinstance(exc, httpx.ConnectError) and not (
                isinstance(exc, _Broken) and not exc.reached
            )
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=f"SMS provider unreachable: {exc or type(exc).__name__}",
                uncertain=reached,
            )
        body = content.decode("utf-8", "replace")
        if 200 <= status < 300:
            provider_id = _provider_id(content)
            reply = f"{status} {reason}"
            if provider_id is None:
                reply += " (no id in the answer: delivery receipts cannot be matched)"
            return DeliveryOutcome(mid, DeliveryStatus.SENT, reply=reply, provider_id=provider_id)
        reply = f"{status} {reason}: {body[:300]}".rstrip(": ")
        if status == 429 or status >= 500:
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=reply,
                retry_after=parse_retry_after(headers.get("retry-after")),
            )
        if status in _REFUSES_EVERY_REQUEST:
            return self._misconfigured(mid, status, reply)
        return DeliveryOutcome(mid, DeliveryStatus.FAILED, reply=reply)

    def _misconfigured(self, mid: str, status: int, reply: str) -> DeliveryOutcome:
        """A 401/403 (the token) or 404/405 (the URL): the provider refuses every request
        from these settings. Nothing is wrong with the message: the send stops (exit 69)
        and every message stays queued, instead of failing the whole campaign one by one."""
        if status in (401, 403):
            hint = (
                f"check the token in ${self.settings.token_env} (sms.http.token_env): the "
                "provider refuses it"
            )
        else:
            hint = "check sms.http.url in campaignctl.yaml: the provider has no such endpoint"
        return DeliveryOutcome(
            mid,
            DeliveryStatus.MISCONFIGURED,
            reply=f"the SMS provider refuses every request from these settings: {reply}",
            hint=hint + "; the messages stay queued: run send again once it is fixed",
        )


# Answers about the request's settings, not about one message.
_REFUSES_EVERY_REQUEST = frozenset({401, 403, 404, 405})


def _timeout_name(exc: BaseException) -> str:
    if isinstance(exc, _Timeout):
        return "ReadTimeout" if exc.reached else "ConnectTimeout"
    return type(exc).__name__


# --------------------------------------------------------------------------- lean client


class _Timeout(Exception):
    """No answer in time; `reached`: the request had been written."""

    def __init__(self, reached: bool) -> None:
        super().__init__("timed out")
        self.reached = reached


class _Broken(Exception):
    """The connection failed; `reached`: the request had been written."""

    def __init__(self, message: str, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


class _KeepAlivePool:
    """POSTs to one URL over kept-alive HTTP/1.1 connections (one per request in flight).

    The HTTP/1.1 framing (Content-Length, chunked or read-to-close answers, 1xx,
    `Connection: close`, when a connection may be reused) is h11's, the protocol
    library under httpx; this class only keeps the connections: an idle one the
    server closed, or idle longer than `keepalive_expiry`, is not reused. No
    redirects, no proxies (httpx sends when a proxy applies).
    """

    READ_SIZE = 64 * 1024

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        keepalive_expiry: float,
        *,
        verify: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl.create_default_context()
            if not verify:
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = [
            ("Host", parts.netloc.rpartition("@")[2]),
            *headers.items(),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ]
        self.timeout = timeout
        self.expiry = keepalive_expiry
        self.idle: list[
            tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection, float]
        ] = []

    async def post(self, body: bytes) -> tuple[int, str, dict[str, str], bytes]:
        """(status, reason, headers with lower-case names, body) of one POST."""
        reader, writer, http = await self._connection()
        try:
            request = h11.Request(
                method="POST",
                target=self.target,
                headers=[*self.headers, ("Content-Length", str(len(body)))],
            )
            async with asyncio.timeout(self.timeout):
                writer.write(
                    http.send(request)
                    + http.send(h11.Data(data=body))
                    + http.send(h11.EndOfMessage())
                )
                status, reason, headers, content = await self._response(reader, http)
        except TimeoutError:
            writer.close()
            raise _Timeout(reached=True) from None
        except (OSError, asyncio.IncompleteReadError, h11.ProtocolError) as exc:
            writer.close()
            raise _Broken(_describe(exc), reached=True) from None
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
            self.idle.append((reader, writer, http, time.monotonic()))
        else:  # `Connection: close`, HTTP/1.0, or an answer read to the end of the stream
            writer.close()
        return status, reason, headers, content

    async def _connection(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection]:
        now = time.monotonic()
        while self.idle:
            reader, writer, http, since = self.idle.pop()
            if now - since < self.expiry and not reader.at_eof() and not writer.is_closing():
                return reader, writer, http
            writer.close()
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=self.READ_SIZE
                )
        except TimeoutError:
            raise _Timeout(reached=False) from None
        except OSError as exc:
            raise _Broken(_describe(exc), reached=False) from None
        return reader, writer, h11.Connection(h11.CLIENT)

    async def _response(
        self, reader: asyncio.StreamReader, http: h11.Connection
    ) -> tuple[int, str, dict[str, str], bytes]:
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(await reader.read(self.READ_SIZE))  # b"": the end of stream
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise asyncio.IncompleteReadError(b"", None)
            # h11.InformationalResponse (100 Continue…): the answer follows
        assert response is not None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in response.headers}  # fmt: skip
        reason = response.reason.decode("latin-1")
        return response.status_code, reason, headers, b"".join(chunks)

    def close(self) -> None:
        for _, writer, _, _ in self.idle:
            writer.close()
        self.idle = []


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the provider closed the connection mid-answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _provider_id(content: bytes) -> str | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("id", "message_id"):
        value = data.get(key)
        if value not in (None, ""):
            return str(value)
    return None
