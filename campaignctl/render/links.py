"""Signed, expiring links that recipients follow: form, space, unsubscribe, preferences, documents.

Each purpose has its own salt, so a token made for one purpose never opens another
(an unsubscribe token is not a form token). Tokens are itsdangerous timed
signatures of a small JSON payload; the web side checks them with `LinkSigner.load`.

`LinkSigner.token` writes the itsdangerous `URLSafeTimedSerializer` format itself
(compact JSON, base64url, timestamp, HMAC-SHA1 with the serializer's derived key) because
`dumps` costs tens of microseconds per link, mostly in a `zlib.compress` whose setup
dominates for a short payload. Payloads under `COMPRESS_FROM` bytes are left
uncompressed (a valid itsdangerous token, at most a few bytes longer); longer ones are
compressed exactly as itsdangerous does. `load` still goes through itsdangerous.
"""

from __future__ import annotations

import base64
import enum
import hmac
import json
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any

from campaignctl.errors import UsageError
from campaignctl.spec.models import Tracking

# Used only when every transport is `file` (nothing leaves the machine) or for preview.
DEVELOPMENT_SECRET = "campaignctl-development-secret-not-for-real-sends"


class LinkPurpose(enum.StrEnum):
    FORM = "form"
    SPACE = "space"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    DOCUMENT = "document"


# URL path of each purpose under `tracking.base_url` (what `campaignctl serve` routes).
LINK_PATHS = {
    LinkPurpose.FORM: "f",
    LinkPurpose.SPACE: "s",
    LinkPurpose.UNSUBSCRIBE: "u",
    LinkPurpose.PREFERENCES: "p",
    LinkPurpose.DOCUMENT: "d",
}


@dataclass(frozen=True)
class Secret:
    value: str
    development: bool
    notice: str | None = None


def resolve_secret(tracking: Tracking, *, allow_development: bool) -> Secret:
    """The signing secret from the environment; the development one only where allowed."""
    value = os.environ.get(tracking.secret_env)
    if value:
        return Secret(value, development=False)
    if allow_development:
        return Secret(
            DEVELOPMENT_SECRET,
            development=True,
            notice=(
                f"{tracking.secret_env} is not set: links are signed with the fixed development "
                "secret (accepted only with the file transport and for previews)"
            ),
        )
    raise UsageError(
        f"the environment variable {tracking.secret_env} (tracking.secret_env) is not set, "
        "and the messages carry signed links",
        hint=f"export {tracking.secret_env}=<a long random string>, the same one "
        "`campaignctl serve` uses (`openssl rand -base64 32` makes one)",
    )


# Below this JSON length zlib rarely saves the 2 bytes itsdangerous asks of it, and its
# set-up (~50 us) costs more than the rest of the token.
COMPRESS_FROM = 96
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
try:  # the C encoder behind `_COMPACT_JSON.encode`, made once instead of once per call
    from json.encoder import c_make_encoder, encode_basestring

    _encode_chunks = c_make_encoder(
        None, _COMPACT_JSON.default, encode_basestring, None, ":", ",", False, False, True
    )
except (ImportError, TypeError):  # pragma: no cover - CPython without _json
    _encode_chunks = None


def _compact_json(payload: Any) -> str:
    """`_COMPACT_JSON.encode(payload)` (our payloads are small, acyclic dicts)."""
    if _encode_chunks is None or not isinstance(payload, dict):  # pragma: no cover
        return _COMPACT_JSON.encode(payload)
    return "".join(_encode_chunks(payload, 0))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class LinkSigner:
    """Makes and checks the tokens of every purpose; build once per run."""

    def __init__(self, tracking: Tracking, secret: str) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self.base_url = tracking.base_url.rstrip("/")
        self.max_age = int(tracking.token_max_age.total_seconds())
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"campaignctl.{purpose}")
            for purpose in LinkPurpose
        }
        # The key each serializer's signer derives on every call, derived once here
        # (by itsdangerous itself, so the two cannot disagree).
        signers = {p: s.make_signer() for p, s in self._serializers.items()}
        # HMAC states keyed once; each token copies one (cheaper than hmac.digest's set-up).
        self._macs = {
            p: hmac.new(signer.derive_key(), digestmod=signer.digest_method)
            for p, signer in signers.items()
        }
        self._prefixes = {p: f"{self.base_url}/{LINK_PATHS[p]}/" for p in LinkPurpose}
        self._stamp: tuple[int, bytes] = (-1, b"")

    def _timestamp(self) -> bytes:
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, _b64(now.to_bytes((now.bit_length() + 7) // 8, "big")))
        return self._stamp[1]

    def token(self, purpose: LinkPurpose, payload: Any) -> str:
        """An itsdangerous URLSafeTimedSerializer token of `payload` (see the module doc)."""
        data = _compact_json(payload).encode("utf-8")
        body = None
        if len(data) >= COMPRESS_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                body = b"." + _b64(compressed)
        value = (body or _b64(data)) + b"." + self._timestamp()
        mac = self._macs[purpose].copy()
        mac.update(value)
        signature = _b64(mac.digest())
        return (value + b"." + signature).decode("ascii")

    def url(self, purpose: LinkPurpose, payload: Any) -> str:
        return self._prefixes[purpose] + self.token(purpose, payload)

    def load(self, purpose: LinkPurpose, token: str, max_age: int | None = None) -> Any:
        """The payload of a token; raises itsdangerous.BadSignature / SignatureExpired."""
        return self._serializers[purpose].loads(
            token, max_age=self.max_age if max_age is None else max_age
        )
