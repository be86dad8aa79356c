"""The one interface every delivery channel implements, its data types, and the plugin registry.

The send engine builds `OutgoingEmail` / `OutgoingSms` values, hands batches of
them to a `Transport`, and records the `DeliveryOutcome` of each one in the
outbox. A transport never touches the store and never decides about retries:
it classifies what happened (`sent`, `retry`, `failed`) and says why.

Transports are plugins. The built-in ones (`file` and `smtp` for email, `file`
and `http` for SMS) are registered by `campaignctl.delivery.builtin:register`,
loaded exactly like a third-party module named in the `campaignctl.transports`
entry-point group: each plugin exposes `register(registry: TransportRegistry)`
(spec/transports.py holds the registry; README "Writing a transport" has an example).
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar, runtime_checkable

from campaignctl.errors import UsageError
from campaignctl.spec.models import Channel, Sender, SmsSettings

# The registry is in spec/transports.py, so that `validate` checks transport names against
# it; its names stay importable from here, the module a plugin author reads.
from campaignctl.spec.transports import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from campaignctl.spec.transports import PluginError as PluginError
from campaignctl.spec.transports import TransportFactory as TransportFactory
from campaignctl.spec.transports import TransportRegistry as TransportRegistry
from campaignctl.spec.transports import UnknownTransportError as UnknownTransportError
from campaignctl.spec.transports import default_registry as default_registry

# --------------------------------------------------------------------------- messages and outcomes


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One email ready for the wire: the envelope and the complete RFC 5322 message.

    `message_id` is the Message-ID without angle brackets; it names the outbox row,
    the capture file and the events that come back. `domain` is the recipient
    domain the per-domain concurrency limit counts against (derived from the
    first recipient when not given).
    """

    sender: str
    recipients: tuple[str, ...]
    message: bytes
    message_id: str
    domain: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if not self.recipients:
            raise ValueError(f"message {self.message_id}: no recipient")
        if not self.domain:
            domain = self.recipients[0].rpartition("@")[2].lower()
            object.__setattr__(self, "domain", domain)


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS ready to send: `to` in E.164, the final text (already encoded and
    checked by the renderer), the sender id, and `message_id`, our own reference
    sent to the provider as `client_ref` so that delivery receipts find the row."""

    to: str
    text: str
    sender_id: str
    message_id: str

    @property
    def client_ref(self) -> str:
        return self.message_id


OutgoingMessage = OutgoingEmail | OutgoingSms
M = TypeVar("M", bound=OutgoingMessage, contravariant=True)


class DeliveryStatus(enum.StrEnum):
    """What the engine should do with the outbox row next."""

    SENT = "sent"  # accepted by the server or provider
    RETRY = "retry"  # temporary: try again later (backoff, up to delivery.max_attempts)
    FAILED = "failed"  # permanent: never retry this message
    # the server refuses every message as the transport is configured (SMTP 530:
    # authentication or TLS required): not this message's fault; keep it queued and stop
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one message, with everything the outbox row and events need.

    `uncertain` is true only when the connection was lost (or timed out) after
    the whole message, end-of-data marker included, was handed to the server:
    the server may have queued it. The engine retries it with backoff all the
    same, as Postfix does, and says so in the row's error. `hard_bounce` is true
    for a permanent "no such user/domain" (5.1.x), which the engine turns into a
    suppression. `retry_after` is the transport's hint for the next attempt (a
    421 backoff, an HTTP Retry-After), if it has one. `hint` says which setting
    to fix when the status is `misconfigured`.
    """

    message_id: str
    status: DeliveryStatus
    reply: str = ""
    smtp_code: int | None = None
    enhanced_code: str | None = None
    hard_bounce: bool = False
    uncertain: bool = False
    provider_id: str | None = None
    retry_after: timedelta | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.SENT


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(reply: str) -> str | None:
    """The RFC 3463 enhanced status code a reply text starts with (`5.1.1`), if any."""
    match = _ENHANCED.match(reply)
    return ".".join(match.groups()) if match else None


def classify_smtp_reply(
    message_id: str, code: int, text: str, *, uncertain: bool = False
) -> DeliveryOutcome:
    """Turn an SMTP reply (code and text) into an outcome: 2xx sent, 4xx retry, 5xx failed.

    A 5xx whose enhanced code is 5.1.x (bad mailbox, bad domain, bad address
    syntax) is a hard bounce. Servers that omit the enhanced code but answer
    550/551/553 with "5.1.x" somewhere in the text count as well. The outcome's
    `reply` is the whole reply line, code first, as the outbox stores it.
    """
    reply = text
    enhanced = enhanced_status(reply)
    if 200 <= code < 300:
        status = DeliveryStatus.SENT
    elif 400 <= code < 500:
        status = DeliveryStatus.RETRY
    else:
        status = DeliveryStatus.FAILED
    hard = status is DeliveryStatus.FAILED and (
        (enhanced is not None and enhanced.startswith("5.1."))
        or (code in (550, 551, 553) and re.search(r"\b5\.1\.\d{1,3}\b", reply) is not None)
    )
    return DeliveryOutcome(
        message_id=message_id,
        status=status,
        reply=f"{code} {text}".strip(),
        smtp_code=code,
        enhanced_code=enhanced,
        hard_bounce=hard,
        uncertain=uncertain,
    )


# --------------------------------------------------------------------------- the interface


@runtime_checkable
class Transport(Protocol[M]):
    """A channel implementation. Open once, send many batches, close once.

    `send_many` returns one outcome per message, in the order given, and never
    raises for a problem with one message; it raises (`ServiceUnavailable`,
    `UsageError`) only when the transport as a whole cannot work.
    """

    name: str
    channel: Channel

    async def open(self) -> None: ...

    async def send_many(self, messages: Sequence[M]) -> list[DeliveryOutcome]: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class TransportBase(Generic[M]):
    """Shared plumbing: the async context manager and a per-message `send`.

    Two optional attributes tell the engine how to hand messages over (a plugin
    without them gets the defaults): `concurrency`, how many messages the
    transport sends at once (the engine keeps a few per connection handed over,
    and no more, so a crash leaves few in doubt); `idempotent`, true when
    sending the same message id twice delivers it once (the file captures), so
    that after a crash its messages are simply sent again.
    """

    name: str = ""
    channel: Channel
    concurrency: int = 1
    idempotent: bool = False

    async def open(self) -> None:
        """Connect, check credentials; the default has nothing to do."""

    async def send_many(self, messages: Sequence[M]) -> list[DeliveryOutcome]:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections and files; the default has nothing to do."""

    async def send(self, message: M) -> DeliveryOutcome:
        """Send one message (a batch of one)."""
        return (await self.send_many([message]))[0]

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# --------------------------------------------------------------------------- secrets


class MissingSecretError(UsageError):
    """A setting names an environment variable that is not set (or empty)."""


def read_secret(environ: Mapping[str, str], name: str, setting: str) -> str:
    """The value of the environment variable `name`, or an error naming it (never its value).

    `setting` says where the name comes from (e.g. `senders.default.smtp.password_env`)
    so the message points at the line to check.
    """
    value = environ.get(name)
    if not value:
        state = "is empty" if name in environ else "is not set"
        raise MissingSecretError(
            f"environment variable {name} {state} ({setting} in campaignctl.yaml names it)",
            hint=f"export {name}=... in the environment that runs campaignctl",
        )
    return value


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class TransportSettings:
    """What a transport factory receives: the workspace settings of its channel.

    `outbox_dir` is where file captures go (`.campaignctl/outbox/<campaign>/`);
    `sender_name` is the key of the sender in `campaignctl.yaml`, used in messages.
    Secrets are read from `environ` (the process environment unless a test or an
    embedding program passes its own).
    """

    outbox_dir: Path
    sender: Sender | None = None
    sender_name: str = "default"
    sms: SmsSettings | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


def create_transport(
    channel: Channel,
    name: str,
    settings: TransportSettings,
    *,
    registry: TransportRegistry | None = None,
) -> Transport:
    """A new, unopened transport of `name` for `channel` (use it as `async with`)."""
    return (registry or default_registry()).create(channel, name, settings)
