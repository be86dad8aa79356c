"""Real servers for the transport tests: an aiosmtpd SMTP server and an HTTP SMS provider.

Both run on a free 127.0.0.1 port in a thread of the test process, record what
they receive (so tests count duplicates and losses from the server's side), and
can be told to misbehave the way real servers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from campaignctl.delivery.transport import OutgoingEmail

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.MULTILINE | re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_email(
    number: int, to: str, *, body_size: int = 200, sender: str = "news@example.org"
) -> OutgoingEmail:
    """A complete RFC 5322 message, as the renderer will hand it to a transport."""
    message_id = f"m{number}.test@example.org"
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Test {number}"
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content("Bonjour, ceci est un test.\n.leading dot\n" * (body_size // 40 + 1))
    return OutgoingEmail(sender, [to], msg.as_bytes(), message_id)


# --------------------------------------------------------------------------- SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message_id: str | None
    data: bytes
    answered: bool  # False when the server dropped the connection instead of answering
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM parameters (SMTPUTF8…)


@dataclass
class SmtpFaults:
    """What the server does wrong. Counts are per recipient and go down on each use."""

    tempfail_data: dict[str, int] = field(default_factory=dict)  # 451 after DATA
    unknown_users: set[str] = field(default_factory=set)  # 550 5.1.1 at RCPT
    reject_data: dict[str, str] = field(default_factory=dict)  # a 5xx reply after DATA
    busy_rcpt: dict[str, int] = field(default_factory=dict)  # 421 at RCPT
    drop_at_rcpt: dict[str, int] = field(default_factory=dict)  # close before DATA
    drop_after_data: dict[str, int] = field(default_factory=dict)  # close instead of the 250
    data_delay: float = 0.0  # seconds to sleep before answering DATA
    # hold the DATA of the n-th message (0-based, in arrival order) unanswered until
    # `release` is set: a client killed meanwhile leaves that message in doubt
    hold_nth: int | None = None
    release: threading.Event = field(default_factory=threading.Event)


class RecordingHandler:
    """aiosmtpd handler that records everything and applies `SmtpFaults`."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining  # advertise PIPELINING (RFC 2920), as Postfix does
        self.faults = SmtpFaults()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.connections = 0
        self.rsets = 0
        self.logins: list[str] = []
        self.active_by_domain: Counter[str] = Counter()
        self.max_active_by_domain: Counter[str] = Counter()
        self.active = 0
        self.max_active = 0
        self.data_seen = 0
        self.holding = 0  # DATA commands held unanswered right now

    def _take(self, table: dict[str, int], address: str) -> bool:
        with self.lock:
            if table.get(address, 0) > 0:
                table[address] -= 1
                return True
        return False

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # One EHLO per client session: counting them counts SMTP connections (the
        # Controller's own readiness probe connects but never says EHLO).
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RSET(self, server: SMTP, session: Any, envelope: Any) -> str:
        with self.lock:
            self.rsets += 1
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.faults.unknown_users:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self._take(self.faults.busy_rcpt, address):
            return "421 4.3.2 Service shutting down, try again later"
        if self._take(self.faults.drop_at_rcpt, address):
            server.transport.close()
            return "250 OK"  # never reaches the client
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        domains = {address.rpartition("@")[2] for address in envelope.rcpt_tos}
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            for domain in domains:
                self.active_by_domain[domain] += 1
                self.max_active_by_domain[domain] = max(
                    self.max_active_by_domain[domain], self.active_by_domain[domain]
                )
        with self.lock:
            nth, self.data_seen = self.data_seen, self.data_seen + 1
        try:
            if nth == self.faults.hold_nth:
                with self.lock:
                    self.holding += 1
                while not self.faults.release.is_set():
                    await asyncio.sleep(0.02)
                with self.lock:
                    self.holding -= 1
            if self.faults.data_delay:
                await asyncio.sleep(self.faults.data_delay)
            return self._answer(server, envelope)
        finally:
            with self.lock:
                self.active -= 1
                for domain in domains:
                    self.active_by_domain[domain] -= 1

    def _answer(self, server: SMTP, envelope: Any) -> str:
        first = envelope.rcpt_tos[0]
        match = _MESSAGE_ID.search(envelope.content)
        record = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message_id=match.group(1).decode() if match else None,
            data=envelope.content,
            answered=True,
            mail_options=list(envelope.mail_options),
        )
        if self._take(self.faults.tempfail_data, first):
            return "451 4.3.0 Temporary local problem, try again"
        if first in self.faults.reject_data:
            return self.faults.reject_data[first]
        if self._take(self.faults.drop_after_data, first):
            record.answered = False
            with self.lock:
                self.received.append(record)
            server.transport.close()
            return "250 OK"  # never reaches the client
        with self.lock:
            self.received.append(record)
        return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    def authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"alice",
            b"s3cret-pw",
        ):
            with self.lock:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    # what tests read
    def delivered_ids(self) -> list[str | None]:
        with self.lock:
            return [r.message_id for r in self.received if r.answered]

    def copies(self) -> Counter[str | None]:
        """How many times each message id reached the server (answered or not)."""
        with self.lock:
            return Counter(r.message_id for r in self.received)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def faults(self) -> SmtpFaults:
        return self.handler.faults


def _start_smtp(
    require_auth: bool, pipelining: bool = True, smtputf8: bool = True
) -> tuple[Controller, SmtpServer]:
    handler = RecordingHandler(pipelining=pipelining)
    port = free_port()
    extra: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if require_auth:
        extra |= {
            "auth_required": True,
            "auth_require_tls": False,
            "authenticator": handler.authenticate,
        }
    controller = Controller(handler, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    return controller, SmtpServer("127.0.0.1", port, handler)


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that records every message it receives.

    It advertises PIPELINING unless the test parametrizes it with "lockstep"
    (one command, one reply), as some servers still answer.
    """
    pipelining = getattr(request, "param", "pipelining") == "pipelining"
    controller, server = _start_smtp(require_auth=False, pipelining=pipelining)
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def ascii_smtp_server() -> Iterator[SmtpServer]:
    """The same server without SMTPUTF8 (RFC 6531), which the others offer (aiosmtpd's
    default): it refuses non-ASCII addresses and the SMTPUTF8 parameter."""
    controller, server = _start_smtp(require_auth=False, smtputf8=False)
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def auth_smtp_server() -> Iterator[SmtpServer]:
    """The same server, requiring AUTH as alice / s3cret-pw."""
    controller, server = _start_smtp(require_auth=True)
    try:
        yield server
    finally:
        controller.stop()


# --------------------------------------------------------------------------- HTTP SMS provider


@dataclass
class SmsRequest:
    to: str
    body: dict[str, Any]
    authorization: str | None
    client: tuple[str, int]


class SmsProvider:
    """State of the fake provider: what it got, and what to answer to whom.

    `script[to]` is a list of answers used one per request to that number: an
    int status, `("slow", seconds)`, `("retry-after", status, value)`, `"chunked"`
    (200 with a chunked body) or `"close"` (200, then `Connection: close`).
    Otherwise it answers 200 with `{"id": "prov-N"}` (or `{"message_id": ...}`
    when `id_key` says so). With `token` set, a request without `Bearer <token>` gets 401.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[SmsRequest] = []
        self.script: dict[str, list[Any]] = defaultdict(list)
        self.id_key = "id"
        self.token: str | None = None
        self.url = ""
        self.sockets: list[socket.socket] = []

    def close_idle(self) -> None:
        """Hang up every connection, as a provider does with idle keep-alive connections."""
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def clients(self) -> set[tuple[str, int]]:
        with self.lock:
            return {request.client for request in self.requests}

    def accepted(self) -> Counter[str]:
        """How many times each client_ref was answered 2xx."""
        with self.lock:
            return Counter(r.body["client_ref"] for r in self.requests if r.body.get("_ok"))


def _provider_handler(provider: SmsProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with provider.lock:
                provider.sockets.append(self.connection)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            request = SmsRequest(
                body["to"], body, self.headers.get("Authorization"), self.client_address
            )
            with provider.lock:
                provider.requests.append(request)
                number = len(provider.requests)
                action = provider.script[body["to"]].pop(0) if provider.script[body["to"]] else 200
            if provider.token and request.authorization != f"Bearer {provider.token}":
                action = 401
            headers: dict[str, str] = {}
            style = action if action in ("chunked", "close") else None
            if style:
                action = 200
            if isinstance(action, tuple) and action[0] == "slow":
                time.sleep(action[1])
                action = 200
            if isinstance(action, tuple) and action[0] == "retry-after":
                headers["Retry-After"] = action[2]
                action = action[1]
            if 200 <= action < 300:
                body["_ok"] = True
                payload = {provider.id_key: f"prov-{number}", "status": "queued"}
            else:
                payload = {"error": f"scripted {action}"}
            data = json.dumps(payload).encode()
            try:
                self.send_response(action)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if style == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(data) // 2
                    for part in (data[:half], data[half:]):
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
                    return
                if style == "close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (a timeout test)

    return Handler


@pytest.fixture
def sms_provider() -> Iterator[SmsProvider]:
    """A real HTTP server on 127.0.0.1 playing an SMS provider."""
    provider = SmsProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _provider_handler(provider))
    server.daemon_threads = True
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
