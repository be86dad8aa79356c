"""The web side's defences: headers, body size, per-IP rate limits, CSRF tokens.

- Every answer carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
  (the page's URL holds a token: it must not leak to another site) and, on HTML,
  a `Content-Security-Policy` that allows only the app's own stylesheet and images,
  form posts to itself, and no framing.
- A body larger than the limit is refused with 413 before it is read whole.
- POSTs are rate-limited per client IP (a token bucket per worker process).
- Form POSTs carry a CSRF token: an HMAC, under the link secret, of a random cookie
  (SameSite=Strict, HttpOnly) and the page's path. The RFC 8058 one-click unsubscribe
  POST is the exception: mail providers send it without cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(images: Sequence[str] = ()) -> str:
    """The pages' CSP: nothing but their own style sheet, images and forms; `images` are
    the other origins an image may come from (an organisation's logo given by URL)."""
    sources = " ".join(("'self'", "data:", *images))
    return (
        f"default-src 'none'; style-src 'self'; img-src {sources}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
CSRF_COOKIE = "campaignctl_csrf"
CSRF_FIELD = "csrf_token"


def image_origins(logo: str | None) -> tuple[str, ...]:
    """The origin of an organisation's logo given by an https:// URL (the space shows it),
    for the CSP; none for a file (embedded as a data: URI)."""
    if not logo or not logo.startswith("https://"):
        return ()
    parts = urlsplit(logo)
    host = parts.netloc.rpartition("@")[2]
    if not host or not all(c.isalnum() or c in ".-:[]" for c in host):
        return ()  # not an origin a CSP can name: the logo is not shown
    return (f"https://{host}",)


class SecurityMiddleware:
    """Adds the security headers and enforces the body size limit (pure ASGI: cheap)."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, api_max_body: int, images: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.api_max_body = api_max_body
        self.csp = content_security_policy(images).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.api_max_body if scope["path"].startswith("/api/") else self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _plain(send, 413, b"Request body too large")
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS:
                    headers.raw.append((name, value))
                if headers.get("content-type", "").startswith("text/html"):
                    headers.raw.append((b"content-security-policy", self.csp))
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except BodyTooLarge:
            await _plain(send, 413, b"Request body too large")
        except ClientDisconnect:
            pass  # the client left before sending its whole request: nobody to answer


class BodyTooLarge(Exception):
    pass


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *COMMON_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per client IP: `per_minute` requests, refilled continuously."""

    def __init__(self, per_minute: int, *, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        tokens, last = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)  # the longest idle
        return allowed

    def retry_after(self) -> int:
        return max(1, int(1 / self.rate + 0.999))


class Csrf:
    """CSRF tokens bound to a random cookie and to the page they were issued on."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"campaignctl.csrf\x00" + secret.encode()).digest()

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def token(self, cookie: str, path: str) -> str:
        return hmac.new(self._key, f"{cookie}\x00{path}".encode(), "sha256").hexdigest()

    def check(self, cookie: str | None, path: str, given: str | None) -> bool:
        if not cookie or not given:
            return False
        return hmac.compare_digest(self.token(cookie, path), given)
