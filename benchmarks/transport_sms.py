"""SMS per second through the http transport to a local provider, with connection reuse.

    .venv/bin/python benchmarks/transport_sms.py [--messages 20000] [--concurrency 16]

The provider is a minimal asyncio HTTP/1.1 keep-alive server started by this
script in a subprocess (`--serve PORT`), answering `{"id": ...}` to each POST,
so the figure measures our client side, not a slow fake. Target: ≥ 1,500 SMS/s.
Prints the transport with its built-in keep-alive client (what `send` uses) and,
as the reference, the same transport through httpx (what it uses behind a proxy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

from campaignctl.delivery.http_sms import HttpSmsOptions, HttpSmsTransport
from campaignctl.delivery.transport import OutgoingSms
from campaignctl.spec.models import SmsHttp


async def serve(port: int) -> None:
    counter = 0

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                json.loads(await reader.readexactly(length))
                counter += 1
                body = b'{"id": "prov-%d", "status": "queued"}' % counter
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run(
    port: int, count: int, concurrency: int, batch: int, client: str
) -> tuple[float, int]:
    settings = SmsHttp(url=f"http://127.0.0.1:{port}/send", token_env="SMS_TOKEN")
    messages = [
        OutgoingSms(f"+336{i:08d}", f"Bonjour {i}, mettez à jour votre fiche.", "OTVAL", f"s{i}")
        for i in range(count)
    ]
    transport = HttpSmsTransport(
        settings,
        environ={"SMS_TOKEN": "bench"},
        options=HttpSmsOptions(concurrency=concurrency, client=client),
    )
    async with transport:
        start = time.perf_counter()
        sent = 0
        for i in range(0, count, batch):
            outcomes = await transport.send_many(messages[i : i + batch])
            sent += sum(o.ok and o.provider_id is not None for o in outcomes)
        elapsed = time.perf_counter() - start
    return sent / elapsed, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return

    port = free_port()
    provider = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the provider did not start") from None
                time.sleep(0.05)
        print("provider: asyncio HTTP/1.1 keep-alive server (subprocess) on 127.0.0.1")
        for client, label in (("lean", "built-in keep-alive client"), ("httpx", "httpx")):
            rate, sent = asyncio.run(run(port, args.messages, args.concurrency, args.batch, client))
            print(
                f"HttpSmsTransport, {label:27s} {rate:8.0f} SMS/s "
                f"({sent} of {args.messages} sent, {args.concurrency} connections)"
            )
        print("target: >= 1500 SMS/s with the client send uses")
    finally:
        provider.terminate()
        provider.wait()


if __name__ == "__main__":
    main()
