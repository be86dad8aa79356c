"""Throughput of the smtp transport against a local SMTP sink, beside the bare-aiosmtplib floor.

    .venv/bin/python benchmarks/transport_smtp.py [--messages 20000] [--size 7000]

Sends N pre-built messages of about `--size` bytes (a) through `SmtpTransport`
(pool of 10 long-lived connections, per-domain limit, outcome classification)
and (b) with a bare aiosmtplib loop sending ONE pre-built message over 10 reused
connections: the floor of what Python + aiosmtplib can do on this machine.
The sink is Postfix's `smtp-sink` when installed, else an aiosmtpd Sink in a
subprocess; the output says which.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import aiosmtplib

from campaignctl.delivery.smtp import SmtpTransport
from campaignctl.delivery.transport import OutgoingEmail
from campaignctl.spec.models import SmtpSettings

POOL = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("smtp-sink") or shutil.which("/usr/sbin/smtp-sink")
    if binary:
        command = [binary, "-u", "nobody", f"127.0.0.1:{port}", "1000"]
        kind = "postfix smtp-sink"
    else:
        command = [
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
            "-c", "aiosmtpd.handlers.Sink",
        ]  # fmt: skip
        kind = "aiosmtpd Sink (subprocess)"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, kind
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the sink did not start on port {port}")


def build_message(number: int, size: int) -> OutgoingEmail:
    to = f"contact{number}@domain{number % 200}.example"
    message_id = f"bench{number}@example.org"
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = "Office <news@example.org>"
    msg["To"] = to
    msg["Subject"] = "Mettez à jour votre fiche"
    msg["Message-ID"] = f"<{message_id}>"
    line = f"Bonjour {number}, voici votre fiche: merci de la vérifier.\n"
    msg.set_content(line * max(1, size // len(line)))
    return OutgoingEmail("news@example.org", [to], msg.as_bytes(), message_id)


async def run_transport(port: int, messages: list[OutgoingEmail], batch: int) -> float:
    settings = SmtpSettings(host="127.0.0.1", port=port, starttls=False, pool_size=POOL)
    async with SmtpTransport(settings, environ={}) as transport:
        start = time.perf_counter()
        # Two batches in flight, as the engine does, so the pool never drains between batches.
        semaphore = asyncio.Semaphore(2)

        async def one(chunk: list[OutgoingEmail]) -> int:
            async with semaphore:
                return sum(o.ok for o in await transport.send_many(chunk))

        chunks = [messages[i : i + batch] for i in range(0, len(messages), batch)]
        sent = sum(await asyncio.gather(*(one(chunk) for chunk in chunks)))
        elapsed = time.perf_counter() - start
    if sent != len(messages):
        raise SystemExit(f"transport: only {sent} of {len(messages)} sent")
    return len(messages) / elapsed


async def run_bare(port: int, message: OutgoingEmail, count: int) -> float:
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="bench")
        for _ in range(POOL)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    remaining = iter(range(count))

    async def loop(client: aiosmtplib.SMTP) -> None:
        for _ in remaining:
            await client.sendmail(message.sender, list(message.recipients), message.message)

    start = time.perf_counter()
    await asyncio.gather(*(loop(client) for client in clients))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(client.quit() for client in clients), return_exceptions=True)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=7_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    port = free_port()
    sink, kind = start_sink(port)
    try:
        messages = [build_message(i, args.size) for i in range(args.messages)]
        average = sum(len(m.message) for m in messages) // len(messages)
        print(f"sink: {kind} on 127.0.0.1:{port}")
        print(f"messages: {len(messages)} pre-built, {average} bytes on average, pool {POOL}")
        rate_b = asyncio.run(run_bare(port, messages[0], args.messages))
        print(f"(b) bare aiosmtplib, one message, {POOL} connections: {rate_b:8.0f} msg/s")
        rate_a = asyncio.run(run_transport(port, messages, args.batch))
        print(f"(a) campaignctl SmtpTransport:                    {rate_a:8.0f} msg/s")
        print(f"    ratio (a)/(b): {rate_a / rate_b:.2f}")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
