"""The smtp transport against a real aiosmtpd server that misbehaves on demand."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from campaignctl.delivery.smtp import SmtpOptions, SmtpTransport, wire_payload
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    MissingSecretError,
    OutgoingEmail,
)
from campaignctl.errors import ExitCode, ServiceUnavailable, UsageError
from campaignctl.spec.models import RateLimit, SmtpSettings

from .conftest import SmtpServer, build_email, free_port


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test with `smtp_server` runs against a pipelining server and a lockstep one."""
    if "smtp_server" in metafunc.fixturenames:
        metafunc.parametrize("smtp_server", ["pipelining", "lockstep"], indirect=True)


FAST = SmtpOptions(reconnect_backoff=0.01, busy_backoff=timedelta(seconds=30))


def transport_for(
    server: SmtpServer, *, rate: float | None = None, **settings: Any
) -> SmtpTransport:
    return SmtpTransport(
        SmtpSettings(host=server.host, port=server.port, starttls=False, **settings),
        rate=RateLimit(per_second=rate) if rate else None,
        environ={},
        options=FAST,
    )


async def send_batches(
    transport: SmtpTransport, *batches: list[OutgoingEmail]
) -> list[list[DeliveryOutcome]]:
    async with transport:
        return [await transport.send_many(batch) for batch in batches]


def test_every_message_arrives_once_with_the_server_reply(smtp_server: SmtpServer) -> None:
    messages = [build_email(i, f"user{i}@example.net") for i in range(30)]
    [outcomes] = asyncio.run(send_batches(transport_for(smtp_server), messages))

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert {o.status for o in outcomes} == {DeliveryStatus.SENT}
    assert all(
        o.smtp_code == 250 and o.reply.startswith("250 2.0.0 Ok: queued as Q") for o in outcomes
    )
    assert sorted(smtp_server.handler.delivered_ids()) == sorted(m.message_id for m in messages)
    # Dot-stuffing round-trips: the server got the message byte for byte as built.
    got = {r.message_id: r.data for r in smtp_server.handler.received}
    assert got[messages[0].message_id] == messages[0].message


def test_pool_reuses_its_connections_across_messages_and_batches(smtp_server: SmtpServer) -> None:
    transport = transport_for(smtp_server, pool_size=3)
    batches = [
        [build_email(b * 100 + i, f"u{b}-{i}@example.net") for i in range(20)] for b in range(2)
    ]
    results = asyncio.run(send_batches(transport, *batches))

    assert all(o.ok for outcomes in results for o in outcomes)
    assert len(smtp_server.handler.delivered_ids()) == 40
    assert smtp_server.handler.connections == 3 == transport.connections_opened


def test_temporary_failure_is_retried_then_delivered_exactly_once(smtp_server: SmtpServer) -> None:
    smtp_server.faults.tempfail_data["flaky@example.net"] = 2
    message = build_email(1, "flaky@example.net")
    results = asyncio.run(send_batches(transport_for(smtp_server), [message], [message], [message]))

    first, second, third = (outcomes[0] for outcomes in results)
    assert first.status is DeliveryStatus.RETRY and second.status is DeliveryStatus.RETRY
    assert first.smtp_code == 451 and first.enhanced_code == "4.3.0"
    assert first.reply == "451 4.3.0 Temporary local problem, try again"
    assert not first.uncertain and not first.hard_bounce
    assert third.status is DeliveryStatus.SENT
    assert smtp_server.handler.copies() == {message.message_id: 1}


def test_unknown_user_is_a_hard_bounce_and_the_connection_is_reset(smtp_server: SmtpServer) -> None:
    smtp_server.faults.unknown_users.add("ghost@example.net")
    messages = [build_email(1, "ghost@example.net"), build_email(2, "real@example.net")]
    [outcomes] = asyncio.run(send_batches(transport_for(smtp_server, pool_size=1), messages))

    bounce, after = outcomes
    assert bounce.status is DeliveryStatus.FAILED and bounce.hard_bounce
    assert (bounce.smtp_code, bounce.enhanced_code) == (550, "5.1.1")
    assert "User unknown" in bounce.reply
    # RSET made the one connection usable again for the next message.
    assert smtp_server.handler.rsets == 1
    assert after.ok and smtp_server.handler.delivered_ids() == [messages[1].message_id]
    assert smtp_server.handler.connections == 1


def test_permanent_rejection_without_5_1_x_is_failed_but_not_a_bounce(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.faults.reject_data["spam@example.net"] = "554 5.7.1 Message rejected as spam"
    [[outcome]] = asyncio.run(
        send_batches(transport_for(smtp_server), [build_email(1, "spam@example.net")])
    )
    assert outcome.status is DeliveryStatus.FAILED and not outcome.hard_bounce
    assert outcome.reply == "554 5.7.1 Message rejected as spam"


def test_421_closes_the_connection_backs_off_and_the_retry_goes_through(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.faults.busy_rcpt["busy@example.net"] = 1
    message = build_email(1, "busy@example.net")
    transport = transport_for(smtp_server, pool_size=1)
    [[busy], [retried]] = asyncio.run(send_batches(transport, [message], [message]))

    assert busy.status is DeliveryStatus.RETRY and busy.smtp_code == 421
    assert busy.retry_after == timedelta(seconds=30) and not busy.uncertain
    assert retried.ok
    # The busy connection was closed and a new one opened for the retry.
    assert smtp_server.handler.connections == 2 == transport.connections_opened
    assert smtp_server.handler.copies() == {message.message_id: 1}


def test_connection_lost_after_end_of_data_is_an_uncertain_retry(smtp_server: SmtpServer) -> None:
    smtp_server.faults.drop_after_data["lost@example.net"] = 1
    message = build_email(1, "lost@example.net")
    [[lost], [again]] = asyncio.run(send_batches(transport_for(smtp_server), [message], [message]))

    assert lost.status is DeliveryStatus.RETRY and lost.uncertain
    assert "after the end of data" in lost.reply
    assert again.ok
    # The server did get the first copy: why the engine must not re-send uncertain rows blindly.
    assert smtp_server.handler.copies() == {message.message_id: 2}


def test_connection_lost_before_end_of_data_is_a_certain_retry(smtp_server: SmtpServer) -> None:
    smtp_server.faults.drop_at_rcpt["early@example.net"] = 1
    message = build_email(1, "early@example.net")
    [[lost], [again]] = asyncio.run(send_batches(transport_for(smtp_server), [message], [message]))

    assert lost.status is DeliveryStatus.RETRY and not lost.uncertain
    assert "before the end of data" in lost.reply
    assert again.ok
    assert smtp_server.handler.copies() == {message.message_id: 1}


def test_a_server_slower_than_the_timeout_gives_an_uncertain_retry(smtp_server: SmtpServer) -> None:
    smtp_server.faults.data_delay = 1.5
    [[outcome]] = asyncio.run(
        send_batches(transport_for(smtp_server, timeout="1s"), [build_email(1, "a@example.net")])
    )
    assert outcome.status is DeliveryStatus.RETRY and outcome.uncertain


def test_a_slow_server_within_the_timeout_is_waited_for(smtp_server: SmtpServer) -> None:
    smtp_server.faults.data_delay = 0.2
    messages = [build_email(i, f"u{i}@example.net") for i in range(5)]
    [outcomes] = asyncio.run(send_batches(transport_for(smtp_server, timeout="5s"), messages))
    assert all(o.ok for o in outcomes)


def test_rate_limit_caps_what_the_server_sees_by_a_deadline(smtp_server: SmtpServer) -> None:
    rate = 40.0
    messages = [build_email(i, f"u{i}@example.net") for i in range(24)]
    seen_early: list[tuple[int, float]] = []

    async def scenario() -> list[DeliveryOutcome]:
        async with transport_for(smtp_server, rate=rate) as transport:
            start = time.monotonic()
            sending = asyncio.create_task(transport.send_many(messages))
            await asyncio.sleep(0.25)
            count = len(smtp_server.handler.delivered_ids())
            # Elapsed is read after counting, so the bound can only be generous.
            seen_early.append((count, time.monotonic() - start))
            return await sending

    outcomes = asyncio.run(scenario())
    assert all(o.ok for o in outcomes)
    [(count, elapsed)] = seen_early
    assert count <= 1 + rate * elapsed
    assert count < len(messages)
    assert len(smtp_server.handler.delivered_ids()) == len(messages)


def test_per_domain_concurrency_limit_holds_on_the_server_side(smtp_server: SmtpServer) -> None:
    smtp_server.faults.data_delay = 0.05
    messages = [build_email(i, f"u{i}@big.example") for i in range(16)]
    messages += [build_email(100 + i, f"u{i}@other{i}.example") for i in range(6)]
    transport = transport_for(smtp_server, pool_size=8, max_per_domain=2)
    [outcomes] = asyncio.run(send_batches(transport, messages))

    assert all(o.ok for o in outcomes)
    handler = smtp_server.handler
    assert handler.max_active_by_domain["big.example"] == 2
    # Other domains went on in parallel instead of queueing behind big.example.
    assert handler.max_active > 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_credentials_come_from_the_named_environment_variables(
    auth_smtp_server: SmtpServer,
) -> None:
    settings = SmtpSettings(
        host=auth_smtp_server.host,
        port=auth_smtp_server.port,
        starttls=False,
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
    )
    environ = {"SMTP_USER": "alice", "SMTP_PASSWORD": "s3cret-pw"}
    transport = SmtpTransport(settings, environ=environ, options=FAST)
    [[outcome]] = asyncio.run(send_batches(transport, [build_email(1, "a@example.net")]))

    assert outcome.ok
    assert auth_smtp_server.handler.logins == ["alice"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_names_the_variables_and_never_the_password(
    auth_smtp_server: SmtpServer,
) -> None:
    settings = SmtpSettings(
        host=auth_smtp_server.host,
        port=auth_smtp_server.port,
        starttls=False,
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
    )
    environ = {"SMTP_USER": "alice", "SMTP_PASSWORD": "wrong-pw-value"}
    with pytest.raises(ServiceUnavailable) as error:
        asyncio.run(send_batches(SmtpTransport(settings, environ=environ, options=FAST)))

    text = error.value.render()
    assert "refused the login" in text and "$SMTP_USER" in text and "$SMTP_PASSWORD" in text
    assert "wrong-pw-value" not in text


def test_a_missing_secret_variable_is_named_without_leaking_any_value(
    smtp_server: SmtpServer,
) -> None:
    settings = SmtpSettings(
        host=smtp_server.host,
        port=smtp_server.port,
        starttls=False,
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
    )
    transport = SmtpTransport(
        settings,
        environ={"SMTP_USER": "alice-user-value"},
        setting_prefix="senders.default.smtp",
    )
    with pytest.raises(MissingSecretError) as error:
        asyncio.run(send_batches(transport))

    assert error.value.exit_code == ExitCode.USAGE
    assert error.value.render() == (
        "error: environment variable SMTP_PASSWORD is not set "
        "(senders.default.smtp.password_env in campaignctl.yaml names it)\n"
        "  hint: export SMTP_PASSWORD=... in the environment that runs campaignctl"
    )
    assert smtp_server.handler.connections == 0


def test_auth_in_clear_to_another_machine_is_refused_before_connecting() -> None:
    settings = SmtpSettings(
        host="smtp.example.org",  # never reached: the refusal comes first
        port=587,
        starttls=False,
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
    )
    transport = SmtpTransport(
        settings,
        environ={"SMTP_USER": "alice", "SMTP_PASSWORD": "s3cret-pw"},
        setting_prefix="senders.default.smtp",
    )
    with pytest.raises(UsageError) as error:
        asyncio.run(send_batches(transport))

    assert error.value.render() == (
        "error: senders.default.smtp: AUTH would send the password in clear to "
        "smtp.example.org (starttls and tls are off)\n"
        "  hint: set senders.default.smtp.starttls: true (or tls: true on port 465), or "
        "senders.default.smtp.allow_plaintext_auth: true if the network to the server is trusted"
    )


def test_connection_refused_at_open_is_service_unavailable_with_host_and_port() -> None:
    port = free_port()  # nothing listens there
    transport = SmtpTransport(
        SmtpSettings(host="127.0.0.1", port=port, starttls=False), environ={}, options=FAST
    )
    with pytest.raises(ServiceUnavailable) as error:
        asyncio.run(send_batches(transport))

    assert error.value.exit_code == ExitCode.UNAVAILABLE == 69
    assert f"cannot connect to the SMTP server 127.0.0.1:{port}" in error.value.message
    assert error.value.hint and "smtp.host" in error.value.hint


def test_wire_payload_normalises_line_endings_and_stuffs_dots() -> None:
    assert wire_payload(b"a\n.b\r\nc") == b"a\r\n..b\r\nc\r\n.\r\n"
    assert wire_payload(b".x\r\n..y\r\n") == b"..x\r\n...y\r\n.\r\n"
    assert wire_payload(b"a\rb") == b"a\r\nb\r\n.\r\n"


class _StrictPipeliningServer:
    """A raw SMTP server that answers a transaction's MAIL, RCPT and DATA only once it
    has all three (a client waiting for each reply in turn would hang), and records the
    reads it did: what arrives together shows the client really pipelines."""

    def __init__(self, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.refuse = refuse
        self.messages: list[bytes] = []
        self.commands: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 strict ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            self.commands.append(line.strip())
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-strict\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb in (b"RSET", b"NOOP"):
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            elif verb == b"MAIL":
                group = [line]
                while not group[-1].upper().startswith(b"DATA"):
                    group.append(await reader.readline())
                    self.commands.append(group[-1].strip())
                    if not group[-1]:  # the client hung up mid-group
                        writer.close()
                        return
                rcpts = [g for g in group if g.upper().startswith(b"RCPT")]
                accepted = [r for r in rcpts if r[9:-3].decode() not in self.refuse]
                answer = b"250 2.1.0 Ok\r\n"
                for rcpt in rcpts:
                    answer += b"250 2.1.5 Ok\r\n" if rcpt in accepted else b"550 5.1.1 unknown\r\n"
                if not accepted:
                    writer.write(answer + b"554 5.5.1 Error: no valid recipients\r\n")
                    continue
                writer.write(answer + b"354 End data with <CR><LF>.<CR><LF>\r\n")
                body = await reader.readuntil(b"\r\n.\r\n")
                self.messages.append(body)
                writer.write(b"250 2.0.0 Ok: queued as P%d\r\n" % len(self.messages))
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()
        writer.close()


@pytest.mark.parametrize("refused", [False, True])
def test_a_pipelining_server_gets_mail_rcpt_and_data_in_one_group(refused: bool) -> None:
    server = _StrictPipeliningServer({"ghost@example.net"} if refused else set())
    messages = [build_email(i, f"user{i}@example.net") for i in range(5)]
    if refused:
        messages.insert(2, build_email(99, "ghost@example.net"))

    async def go() -> list[DeliveryOutcome]:
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        settings = SmtpSettings(
            host="127.0.0.1", port=port, starttls=False, pool_size=1, timeout="2s"
        )
        try:
            async with SmtpTransport(settings, environ={}, options=FAST) as transport:
                return await transport.send_many(messages)
        finally:
            listener.close()

    outcomes = asyncio.run(go())
    sent = [o for o in outcomes if o.ok]
    assert len(sent) == 5 and len(server.messages) == 5
    assert [o.reply for o in sent] == [f"250 2.0.0 Ok: queued as P{n}" for n in range(1, 6)]
    if refused:
        ghost = outcomes[2]
        assert ghost.status is DeliveryStatus.FAILED and ghost.hard_bounce
        assert ghost.reply == "550 5.1.1 unknown"
        assert b"RSET" in server.commands  # the refused transaction was cleaned up
