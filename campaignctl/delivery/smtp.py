"""The `smtp` transport: a pool of long-lived aiosmtplib connections per sender.

`pool_size` workers each own one connection for the life of the transport and
take messages from a shared dispatcher that enforces two limits: the sender's
token bucket (`rate.per_second`) and at most `max_per_domain` messages in
flight per recipient domain, picked round-robin across domains so one slow
domain never holds up the others.

Each message is one SMTP transaction (MAIL, RCPT…, DATA) and one outcome:

- a 2xx final reply → `sent`, with the server's reply text (its queue id);
- a 4xx anywhere → `retry`; a 421 also closes that connection, which the worker
  reopens after `reconnect_backoff`, and the outcome carries `busy_backoff`;
- a 5xx → `failed`; a 5.1.x (unknown user or domain) also sets `hard_bounce`;
- a 530 (authentication or TLS required) → `misconfigured`, naming the settings
  to fix: no message can go until they change;
- a connection lost or a timeout → `retry`, with `uncertain=True` only when it
  happened after the end-of-data marker was handed to the server (it may have
  queued the message).

Addresses: an international domain goes as IDNA A-labels (punycode), in the
envelope as in the headers; SMTPUTF8 (RFC 6531) is asked for only when a local
part is not ASCII, and such a message fails, saying why, on a server that does
not offer it.

A refused recipient is followed by RSET so the connection is clean for the next
message. Credentials come from the environment variables the settings name, and
go only over TLS unless the server is this machine or `allow_plaintext_auth`.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import aiosmtplib

from campaignctl.delivery.ratelimit import KeyedLimiter, TokenBucket
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingEmail,
    TransportBase,
    classify_smtp_reply,
    read_secret,
)
from campaignctl.errors import ServiceUnavailable, UsageError
from campaignctl.render.mime import idna_address
from campaignctl.spec.models import Channel, RateLimit, SmtpSettings

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")


def wire_payload(message: bytes) -> bytes:
    """The bytes sent after DATA's 354: CRLF line endings, dot-stuffed, end-of-data marker.

    Messages from the renderer already use CRLF, so the regex only runs when a
    bare CR or LF is present; dot-stuffing is a plain bytes replace. (Both were
    the largest Python cost per message when done with regular expressions.)
    """
    crlf = message.count(b"\r\n")
    if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
        message = _LINE_ENDINGS.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


@dataclass(frozen=True)
class SmtpOptions:
    """Tuning and test knobs of the SMTP transport that are not workspace settings.

    `setting_prefix` names the settings in error messages
    (`senders.default.smtp`); `busy_backoff` is the retry hint after a 421;
    `reconnect_backoff` is how long a worker waits before reopening a connection
    the server closed or refused; `tls_context` overrides certificate checks.
    """

    setting_prefix: str = "smtp"
    local_hostname: str | None = None
    tls_context: ssl.SSLContext | None = None
    busy_backoff: timedelta = timedelta(seconds=60)
    reconnect_backoff: float = 1.0
    quit_timeout: float = 2.0


@dataclass(slots=True)
class _Job:
    message: OutgoingEmail
    future: asyncio.Future[DeliveryOutcome]


class _Dispatcher:
    """Pending messages per domain, handed out round-robin within the domain limit."""

    def __init__(self, max_per_domain: int) -> None:
        self.limiter = KeyedLimiter(max_per_domain)
        self._by_domain: dict[str, deque[_Job]] = {}
        self._ready: deque[str] = deque()
        self._ready_set: set[str] = set()
        self._wakeup = asyncio.Event()
        self._closed = False

    def _mark_ready(self, domain: str) -> None:
        if (
            domain not in self._ready_set
            and domain in self._by_domain
            and self.limiter.held(domain) < self.limiter.limit
        ):
            self._ready.append(domain)
            self._ready_set.add(domain)
            self._wakeup.set()

    def put(self, job: _Job) -> None:
        domain = job.message.domain
        self._by_domain.setdefault(domain, deque()).append(job)
        self._mark_ready(domain)

    async def take(self) -> _Job | None:
        """The next job whose domain has room (its slot held), or None once closed."""
        while True:
            while self._ready:
                domain = self._ready.popleft()
                self._ready_set.discard(domain)
                queue = self._by_domain[domain]
                job = queue.popleft()
                if not queue:
                    del self._by_domain[domain]
                if job.future.done():  # its caller was cancelled: drop it
                    self._mark_ready(domain)
                    continue
                self.limiter.try_acquire(domain)
                self._mark_ready(domain)
                return job
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()

    def release(self, domain: str) -> None:
        self.limiter.release(domain)
        self._mark_ready(domain)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()


class _Replies(asyncio.Protocol):
    """Reads the SMTP replies of one connection once aiosmtplib has set it up.

    aiosmtplib opens the connection (greeting, EHLO, STARTTLS, AUTH); then this
    protocol takes the transport over, because aiosmtplib's own reads exactly
    one reply per command written and drops what arrives early, which rules out
    PIPELINING (RFC 2920). Here every reply is queued as it arrives, and a
    caller waits for as many as the commands it wrote.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport: asyncio.Transport | None = transport
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wanted = 0
        self._error: BaseException | None = None

    @property
    def open(self) -> bool:
        return self._error is None and self.transport is not None

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            if len(line) < 3 or not line[:3].isdigit():
                self._fail(SMTPProtocolError(f"malformed reply line {line[:80]!r}"))
                return
            self._lines.append(line)
            if line[3:4] != b"-":
                lines, self._lines = self._lines, []
                text = "\n".join(x[4:].strip(b" \t").decode("utf-8", "replace") for x in lines)
                self._replies.append((int(lines[-1][:3]), text))
        del buffer[:start]
        if len(buffer) > 65_536:
            self._fail(SMTPProtocolError("reply line too long"))
            return
        waiter = self._waiter
        if waiter is not None and len(self._replies) >= self._wanted and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(aiosmtplib.SMTPServerDisconnected(f"Connection lost{_cause(exc)}"))

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection closed by the server"))
        return False

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
            waiter.exception()  # retrieved: nobody may be awaiting it any more

    # for the transport
    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        transport = self.transport
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        transport.write(data)

    async def read(self, count: int, timeout: float) -> list[tuple[int, str]]:
        """The next `count` replies, waiting at most `timeout` seconds for them."""
        if len(self._replies) < count:
            if self._error is not None:
                raise self._error
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            self._wanted = count
            timer = loop.call_later(timeout, self._timed_out, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        replies = self._replies
        return [replies.popleft() for _ in range(count)]

    def busy_reply(self) -> tuple[int, str] | None:
        """A 421 among the replies read but not yet taken (the server is closing)."""
        return next((reply for reply in self._replies if reply[0] == 421), None)

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("timed out waiting for the server's reply"))
            waiter.exception()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection closed"))


class SMTPProtocolError(aiosmtplib.SMTPException):
    """The server sent something that is not an SMTP reply."""


def _cause(exc: BaseException | None) -> str:
    return f": {exc}" if exc else ""


class _Connection:
    """One pooled SMTP connection, reopened on demand after a drop or a 421."""

    def __init__(self) -> None:
        self.smtp: aiosmtplib.SMTP | None = None
        self.replies: _Replies | None = None
        self.pipelining = False
        self.eight_bit = False
        self.utf8 = False  # SMTPUTF8 offered
        self.not_before = 0.0

    @property
    def usable(self) -> bool:
        return self.replies is not None and self.replies.open

    def drop(self, backoff: float = 0.0) -> None:
        if self.replies is not None:
            self.replies.close()
            self.replies = None
        if self.smtp is not None:
            self.smtp.close()
        self.smtp = None
        if backoff:
            self.not_before = asyncio.get_running_loop().time() + backoff


class SmtpTransport(TransportBase[OutgoingEmail]):
    """Sends emails through one SMTP server with a pool of long-lived connections."""

    name = "smtp"
    channel = Channel.EMAIL

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        rate: RateLimit | None = None,
        environ: Mapping[str, str] | None = None,
        options: SmtpOptions | None = None,
        setting_prefix: str | None = None,
    ) -> None:
        self.settings = settings
        self.rate = rate
        self.environ = os.environ if environ is None else environ
        self.options = options or SmtpOptions()
        self.prefix = setting_prefix or self.options.setting_prefix
        self.address = f"{settings.host}:{settings.port}"
        self.concurrency = settings.pool_size
        self.timeout = settings.timeout.total_seconds()
        self.connections_opened = 0  # for reports and tests: how often we (re)connected
        self.bucket: TokenBucket | None = None
        self._credentials: tuple[str, str] | None = None
        self._dispatcher: _Dispatcher | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._connections: list[_Connection] = []
        self._local_hostname = self.options.local_hostname or socket.gethostname()

    # ------------------------------------------------------------------ lifecycle

    def _read_credentials(self) -> tuple[str, str] | None:
        user_env, password_env = self.settings.username_env, self.settings.password_env
        if not user_env and not password_env:
            return None
        if self.settings.plaintext_auth:
            raise UsageError(
                f"{self.prefix}: AUTH would send the password in clear to "
                f"{self.settings.host} (starttls and tls are off)",
                hint=f"set {self.prefix}.starttls: true (or tls: true on port 465), or "
                f"{self.prefix}.allow_plaintext_auth: true if the network to the server is "
                "trusted",
            )
        if not (user_env and password_env):
            missing = "password_env" if user_env else "username_env"
            raise UsageError(
                f"{self.prefix} sets only one of username_env and password_env",
                hint=f"add {self.prefix}.{missing}, or remove both to send without AUTH",
            )
        user = read_secret(self.environ, user_env, f"{self.prefix}.username_env")
        password = read_secret(self.environ, password_env, f"{self.prefix}.password_env")
        return user, password

    def _client(self) -> aiosmtplib.SMTP:
        user, password = self._credentials or (None, None)
        return aiosmtplib.SMTP(
            hostname=self.settings.host,
            port=self.settings.port,
            timeout=self.timeout,
            use_tls=self.settings.tls,
            start_tls=bool(self.settings.starttls and not self.settings.tls),
            username=user,
            password=password,
            local_hostname=self._local_hostname,
            tls_context=self.options.tls_context,
        )

    async def _connect(self, conn: _Connection) -> None:
        wait = conn.not_before - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        smtp = self._client()
        try:
            await smtp.connect()  # greeting, and STARTTLS and AUTH when configured
            if smtp.is_ehlo_or_helo_needed:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
            transport = smtp.transport
            if not isinstance(transport, asyncio.Transport) or transport.is_closing():
                raise aiosmtplib.SMTPServerDisconnected("Connection lost after EHLO")
        except BaseException:
            smtp.close()
            raise
        # From here on the replies are ours to read (see _Replies).
        conn.replies = _Replies(transport)
        transport.set_protocol(conn.replies)
        conn.smtp = smtp
        conn.pipelining = smtp.supports_extension("pipelining")
        conn.eight_bit = smtp.supports_extension("8bitmime")
        conn.utf8 = smtp.supports_extension("smtputf8")
        self.connections_opened += 1

    async def open(self) -> None:
        """Check credentials and open the first connection, so that a wrong host or
        password fails here (exit 69) rather than as a retry on every message."""
        self._credentials = self._read_credentials()
        if self.rate is not None:
            self.bucket = TokenBucket(self.rate.per_second)
        first = _Connection()
        try:
            await self._connect(first)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ServiceUnavailable(
                f"SMTP server {self.address} refused the login: {exc.code} {exc.message}",
                hint=f"check the credentials in ${self.settings.username_env} and "
                f"${self.settings.password_env}",
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ServiceUnavailable(
                f"SMTP server {self.address} refused the session: {exc.code} {exc.message}",
                hint="the server is busy or refuses this client; try again later",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ServiceUnavailable(
                f"cannot connect to the SMTP server {self.address}: {_reason(exc)}",
                hint=f"check {self.prefix}.host, .port and .starttls/.tls in campaignctl.yaml "
                "and that the server is running and reachable from this machine",
            ) from None
        self._dispatcher = _Dispatcher(self.settings.max_per_domain)
        self._connections = [first] + [_Connection() for _ in range(self.settings.pool_size - 1)]
        self._workers = [asyncio.create_task(self._work(conn)) for conn in self._connections]

    async def close(self) -> None:
        """Let in-flight messages finish, then QUIT every connection."""
        if self._dispatcher is None:
            return
        self._dispatcher.close()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await asyncio.gather(
            *(self._quit(conn) for conn in self._connections if conn.usable),
            return_exceptions=True,
        )
        self._dispatcher = None
        self._workers = []
        self._connections = []

    async def _quit(self, conn: _Connection) -> None:
        assert conn.replies is not None
        try:
            conn.replies.write(b"QUIT\r\n")
            await conn.replies.read(1, self.options.quit_timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            conn.drop()

    # ------------------------------------------------------------------ sending

    async def send_many(self, messages: Sequence[OutgoingEmail]) -> list[DeliveryOutcome]:
        """Send a batch over the pool; one outcome per message, in order.

        Several calls may run at once (the engine may feed the next batch while
        this one drains); they share the pool and the limits.
        """
        if self._dispatcher is None:
            raise RuntimeError("SmtpTransport.send_many called before open()")
        loop = asyncio.get_running_loop()
        jobs = [_Job(message, loop.create_future()) for message in messages]
        for job in jobs:
            self._dispatcher.put(job)
        return list(await asyncio.gather(*(job.future for job in jobs)))

    async def _work(self, conn: _Connection) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        while (job := await dispatcher.take()) is not None:
            try:
                if self.bucket is not None:
                    await self.bucket.acquire()
                outcome = await self._deliver(conn, job.message)
                if outcome.smtp_code == 530:
                    outcome = self._misconfigured(outcome)
            except Exception as exc:  # a bug must not leave a caller waiting forever
                conn.drop()
                outcome = DeliveryOutcome(
                    job.message.message_id,
                    DeliveryStatus.RETRY,
                    reply=f"internal error: {exc!r}",
                    uncertain=True,
                )
            finally:
                dispatcher.release(job.message.domain)
            if not job.future.done():
                job.future.set_result(outcome)

    async def _deliver(self, conn: _Connection, message: OutgoingEmail) -> DeliveryOutcome:
        """One SMTP transaction on `conn`; never raises for SMTP or network trouble."""
        mid = message.message_id
        if not conn.usable:
            conn.drop()
            try:
                await self._connect(conn)
            except (aiosmtplib.SMTPException, OSError) as exc:
                conn.drop(self.options.reconnect_backoff)
                return DeliveryOutcome(
                    mid,
                    DeliveryStatus.RETRY,
                    reply=f"cannot connect to {self.address}: {_reason(exc)}",
                )
        try:
            commands = self._envelope(conn, message)
        except ValueError as exc:
            return DeliveryOutcome(mid, DeliveryStatus.FAILED, reply=f"not sent: {exc}")
        replies = conn.replies
        assert replies is not None
        end_of_data_sent = False
        try:
            if conn.pipelining:
                # RFC 2920: MAIL, every RCPT and DATA in one write, then their replies.
                replies.write(b"".join(commands))
                answers = await replies.read(len(commands), self.timeout)
            else:
                answers = []
                for index, command in enumerate(commands):
                    if index == len(commands) - 1 and all(c >= 300 for c, _ in answers[1:]):
                        break  # every recipient refused: no DATA
                    replies.write(command)
                    answer = (await replies.read(1, self.timeout))[0]
                    answers.append(answer)
                    if answer[0] == 421 or (index == 0 and answer[0] >= 300):
                        break  # busy, or MAIL refused: no point in going on
            outcome = await self._envelope_outcome(conn, message, answers, len(commands))
            if outcome is not None:
                return outcome
            replies.write(wire_payload(message.message))
            end_of_data_sent = True
            code, text = (await replies.read(1, self.timeout))[0]
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            busy = None if end_of_data_sent else replies.busy_reply()
            conn.drop(self.options.reconnect_backoff if busy else 0.0)
            if busy is not None:  # a 421 to a pipelined command, then the server hung up
                return self._busy(classify_smtp_reply(mid, *busy))
            where = "after the end of data" if end_of_data_sent else "before the end of data"
            return DeliveryOutcome(
                mid,
                DeliveryStatus.RETRY,
                reply=f"connection to {self.address} lost {where}: {_reason(exc)}",
                uncertain=end_of_data_sent,
            )
        outcome = classify_smtp_reply(mid, code, text)
        if code == 421:
            conn.drop(self.options.reconnect_backoff)
            return self._busy(outcome)
        refused = [
            (rcpt, answer)
            for rcpt, answer in zip(message.recipients, answers[1:-1], strict=True)
            if not 200 <= answer[0] < 300
        ]
        if refused and outcome.ok:
            listed = "; ".join(f"{r}: {c} {t}" for r, (c, t) in refused)
            outcome = replace(outcome, reply=f"{outcome.reply} (refused {listed})")
        return outcome

    def _envelope(self, conn: _Connection, message: OutgoingEmail) -> list[bytes]:
        """MAIL FROM, one RCPT TO per recipient, DATA: the commands of one transaction.

        Raises ValueError (the message fails, saying why) for an address that cannot go."""
        addresses = tuple(_bare(a) for a in (message.sender, *message.recipients))
        for address in addresses:
            if "\r" in address or "\n" in address or "<" in address or ">" in address:
                raise ValueError(f"invalid envelope address {address!r}")
        addresses = tuple(a if a.isascii() else idna_address(a) for a in addresses)
        options = ""
        encoding = "ascii"
        utf8 = next((a for a in addresses if not a.isascii()), None)
        if utf8 is not None:
            if not conn.utf8:
                raise ValueError(
                    f"{utf8} has non-ASCII characters before the @, which only a server "
                    f"offering SMTPUTF8 (RFC 6531) accepts, and {self.address} does not"
                )
            options = " SMTPUTF8"
            encoding = "utf-8"
        if conn.eight_bit and not message.message.isascii():
            options += " BODY=8BITMIME"
        commands = [f"MAIL FROM:<{addresses[0]}>{options}\r\n".encode(encoding)]
        commands += [f"RCPT TO:<{r}>\r\n".encode(encoding) for r in addresses[1:]]
        commands.append(b"DATA\r\n")
        return commands

    async def _envelope_outcome(
        self,
        conn: _Connection,
        message: OutgoingEmail,
        answers: list[tuple[int, str]],
        expected: int,
    ) -> DeliveryOutcome | None:
        """The outcome when MAIL, the RCPTs or DATA were refused; None when the server
        waits for the message (354)."""
        mid = message.message_id
        if any(code == 421 for code, _ in answers):
            code, text = next(answer for answer in answers if answer[0] == 421)
            conn.drop(self.options.reconnect_backoff)
            return self._busy(classify_smtp_reply(mid, code, text))
        data_code = answers[-1][0] if len(answers) == expected else None
        if data_code == 354 and (
            not 200 <= answers[0][0] < 300 or all(c >= 300 for c, _ in answers[1:-1])
        ):
            # A pipelining server took DATA although nothing can be delivered (RFC 2920
            # §3.1): an empty message ends it, and the server has no recipient for it.
            conn.replies.write(b".\r\n")  # type: ignore[union-attr]
            await conn.replies.read(1, self.timeout)  # type: ignore[union-attr]
            data_code = None
        if not 200 <= answers[0][0] < 300:
            outcome = classify_smtp_reply(mid, *answers[0])
        elif all(code >= 300 for code, _ in answers[1 : expected - 1]) and len(answers) > 1:
            code, text = next(a for a in answers[1:] if a[0] >= 300)
            outcome = classify_smtp_reply(mid, code, text)
        elif data_code != 354:
            outcome = classify_smtp_reply(mid, *answers[-1])
        else:
            return None
        await self._reset(conn)
        return outcome

    async def _reset(self, conn: _Connection) -> None:
        """RSET so the next transaction on this connection starts clean."""
        if not conn.usable:
            return
        assert conn.replies is not None
        try:
            conn.replies.write(b"RSET\r\n")
            code, _ = (await conn.replies.read(1, self.timeout))[0]
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            conn.drop()
            return
        if code != 250:
            conn.drop()

    def _busy(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        return replace(outcome, retry_after=self.options.busy_backoff)

    def _misconfigured(self, outcome: DeliveryOutcome) -> DeliveryOutcome:
        """A 530: the server takes no mail from this client until it logs in (or starts
        TLS). Nothing is wrong with the message: the settings are, and the hint says which."""
        p, settings = self.prefix, self.settings
        fixes = []
        if not (settings.username_env and settings.password_env):
            fixes.append(
                f"set {p}.username_env and {p}.password_env to the environment variables "
                "that hold the login"
            )
        if not (settings.starttls or settings.tls):
            fixes.append(f"set {p}.starttls: true (or tls: true on port 465)")
        if not fixes:
            fixes.append(
                f"check that the login in ${settings.username_env} may send through this server"
            )
        return replace(
            outcome,
            status=DeliveryStatus.MISCONFIGURED,
            reply=f"the SMTP server {self.address} requires authentication or TLS before it "
            f"takes mail: {outcome.reply}",
            hint=" and ".join(fixes) + " in campaignctl.yaml; the messages stay queued: run "
            "send again once it is fixed",
        )


def _bare(address: str) -> str:
    """`Name <a@b>` → `a@b`; a bare address as it is (the usual case, kept cheap)."""
    if "<" not in address:
        return address
    from email.utils import parseaddr

    return parseaddr(address)[1] or address


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text
