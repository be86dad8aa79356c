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
import hashlib
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
    OPEN = "open"  # the open pixel of an email: {"m": message id}
    CLICK = "click"  # a tracked link: {"m": message id, "u": the URL it leads to}


# URL path of each purpose under `tracking.base_url` (what `campaignctl serve` routes).
LINK_PATHS = {
    LinkPurpose.FORM: "f",
    LinkPurpose.SPACE: "s",
    LinkPurpose.UNSUBSCRIBE: "u",
    LinkPurpose.PREFERENCES: "p",
    LinkPurpose.DOCUMENT: "d",
    LinkPurpose.OPEN: "o",
    LinkPurpose.CLICK: "c",
}
# Short links (`links.form_short`, `links.space_short`, for SMS): {base_url}/q/{code}.
SHORT_PATH = "q"
SHORT_MAC_BYTES = 8  # 64 bits: guessing one valid code takes ~2^63 requests on average
_SHORT_TAGS = {LinkPurpose.FORM: b"f", LinkPurpose.SPACE: b"s"}
_SHORT_PURPOSES = {tag: purpose for purpose, tag in _SHORT_TAGS.items()}
_DAY = 86400


class ShortLinkError(ValueError):
    """A short code that is malformed, tampered with, or (`expired`) too old."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(text: str) -> bytes:
    data = text.encode("utf-8")
    return _varint(len(data)) + data


def _read_field(data: bytes, i: int) -> tuple[str, int]:
    length, i = _read_varint(data, i)
    if i + length > len(data):
        raise ShortLinkError("malformed short code")
    try:
        return data[i : i + length].decode("utf-8"), i + length
    except UnicodeDecodeError:
        raise ShortLinkError("malformed short code") from None


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ShortLinkError("malformed short code")
        byte = data[i]
        n |= (byte & 0x7F) << shift
        i += 1
        shift += 7
        if not byte & 0x80:
            return n, i


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
        # Short codes: HMAC-SHA256 under a key per purpose (secret + salt), truncated.
        self._short_macs = {
            purpose: hmac.new(
                hmac.digest(
                    secret.encode("utf-8"), f"campaignctl.{purpose}-short".encode(), "sha256"
                ),
                digestmod=hashlib.sha256,
            )
            for purpose in _SHORT_TAGS
        }
        self._short_prefix = f"{self.base_url}/{SHORT_PATH}/"

    def _timestamp(self) -> bytes:
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, _b64(now.to_bytes((now.bit_length() + 7) // 8, "big")))
        return self._stamp[1]

    def token(self, purpose: LinkPurpose, payload: Any, *, compress: bool = True) -> str:
        """An itsdangerous URLSafeTimedSerializer token of `payload` (see the module doc).
        `compress=False` for tokens checked on a hot path (click redirects): a few bytes
        longer, but `load` then never sets up zlib."""
        data = _compact_json(payload).encode("utf-8")
        body = None
        if compress and len(data) >= COMPRESS_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                body = b"." + _b64(compressed)
        value = (body or _b64(data)) + b"." + self._timestamp()
        mac = self._macs[purpose].copy()
        mac.update(value)
        signature = _b64(mac.digest())
        return (value + b"." + signature).decode("ascii")

    def url(self, purpose: LinkPurpose, payload: Any, *, compress: bool = True) -> str:
        return self._prefixes[purpose] + self.token(purpose, payload, compress=compress)

    def short_code(self, purpose: LinkPurpose, payload: dict[str, Any]) -> str:
        """A compact signed code standing for the form or space link of `payload`.

        `payload` is what the long link signs: form `{"c", "r": key, "w"}`, space
        `{"c", "r": [keys], "w"}`. The code is base64url of: a purpose letter, the issue
        day (2 bytes, days since 1970), the wave (varint), the campaign and the record
        key(s) (length-prefixed UTF-8), then the first 8 bytes of an HMAC-SHA256 of all
        that under a key of its own per purpose. ~48 characters for the demo form
        link instead of ~100 for the itsdangerous token. `load_short` reads it back.
        """
        tag = _SHORT_TAGS.get(purpose)
        if tag is None:
            raise ValueError(f"no short links for {purpose}")
        keys = [payload["r"]] if purpose == LinkPurpose.FORM else list(payload["r"])
        parts = [tag, (int(time.time()) // _DAY).to_bytes(2, "big"), _varint(payload["w"])]
        parts.append(_field(payload["c"]))
        parts.extend(_field(key) for key in keys)
        body = b"".join(parts)
        mac = self._short_macs[purpose].copy()
        mac.update(body)
        return _b64(body + mac.digest()[:SHORT_MAC_BYTES]).decode("ascii")

    def short_url(self, purpose: LinkPurpose, payload: dict[str, Any]) -> str:
        return self._short_prefix + self.short_code(purpose, payload)

    def load_short(
        self, code: str, max_age: int | None = None
    ) -> tuple[LinkPurpose, dict[str, Any]]:
        """The purpose and payload of a short code (the payload its long link signs).

        Raises ShortLinkError when the code is malformed or tampered with, or when it
        was issued more than `max_age` seconds ago (default tracking.token_max_age;
        counted in whole days from the issue day) with `.expired` set.
        """
        try:
            data = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        except (ValueError, TypeError):
            raise ShortLinkError("malformed short code") from None
        body, signature = data[:-SHORT_MAC_BYTES], data[-SHORT_MAC_BYTES:]
        purpose = _SHORT_PURPOSES.get(body[:1])
        if purpose is None or len(body) < 5:
            raise ShortLinkError("malformed short code")
        mac = self._short_macs[purpose].copy()
        mac.update(body)
        if not hmac.compare_digest(mac.digest()[:SHORT_MAC_BYTES], signature):
            raise ShortLinkError("short code signature does not match")
        issued = int.from_bytes(body[1:3], "big") * _DAY
        wave, i = _read_varint(body, 3)
        fields = []
        while i < len(body):
            value, i = _read_field(body, i)
            fields.append(value)
        if len(fields) < 2 or (purpose == LinkPurpose.FORM and len(fields) != 2):
            raise ShortLinkError("malformed short code")
        age = int(time.time()) // _DAY * _DAY - issued
        if age > (self.max_age if max_age is None else max_age):
            raise ShortLinkError(f"short code expired ({age // _DAY} days old)", expired=True)
        keys: Any = fields[1] if purpose == LinkPurpose.FORM else fields[1:]
        return purpose, {"c": fields[0], "r": keys, "w": wave}

    def resolve_short(self, code: str, max_age: int | None = None) -> str:
        """The full signed link a short code stands for (where the web side redirects)."""
        purpose, payload = self.load_short(code, max_age)
        return self.url(purpose, payload)

    def load(self, purpose: LinkPurpose, token: str, max_age: int | None = None) -> Any:
        """The payload of a token; raises itsdangerous.BadSignature / SignatureExpired.

        Uncompressed tokens (what `token` writes for short payloads: every pixel and most
        links) are checked here with the derived key, as itsdangerous does (HMAC compared in
        constant time, then the age), at a tenth of the cost: `serve` checks one per hit.
        Compressed ones go through itsdangerous itself."""
        max_age = self.max_age if max_age is None else max_age
        if token.startswith("."):
            return self._serializers[purpose].loads(token, max_age=max_age)
        from itsdangerous import BadPayload, BadSignature, SignatureExpired

        try:
            value, signature = token.encode("ascii").rsplit(b".", 1)
            body, stamp = value.rsplit(b".", 1)
            expected = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
        except (UnicodeEncodeError, ValueError) as exc:
            raise BadSignature("malformed token") from exc
        mac = self._macs[purpose].copy()
        mac.update(value)
        if not hmac.compare_digest(mac.digest(), expected):
            raise BadSignature("signature does not match")
        try:
            issued = int.from_bytes(base64.urlsafe_b64decode(stamp + b"=" * (-len(stamp) % 4)))
            data = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        except ValueError as exc:
            raise BadSignature("malformed token") from exc
        age = int(time.time()) - issued
        if age > max_age or age < 0:
            raise SignatureExpired(f"signature age {age} > {max_age} seconds")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BadPayload("not JSON") from exc
