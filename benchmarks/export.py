"""Time `campaignctl export push` of 100,000 badges, beside bare references.

Usage: python benchmarks/export.py [--records 100000] [--store URL] [--keep DIR]

Goals (issue 21): the webhook push ≥ 2,000 badges/s for the whole command with a peak RSS
≤ 200 MB; the CSV drop ≥ 50,000 badges/s.

Builds a workspace (`campaignctl init`) with RECORDS records (nine in ten with an email,
the others a phone), a campaign over two segments × two channels with two systems (a
webhook at a local receiver, a CSV folder), imports, applies and locks it. Then runs, as a
user does (a subprocess under `/usr/bin/time -v`):

- `export push CAMPAIGN --system hook`: RECORDS badges in batches of 500 to a local
  HTTP/1.1 receiver (a thread of this process that parses each batch's JSON and answers
  200); the reference is a bare httpx loop posting the same batches (same JSON bodies,
  read from the store by one SELECT) to the same receiver: what moving the bytes costs;
- `export push CAMPAIGN --system drop`: one CSV file; the reference is `csv.writer`
  writing the same rows (one SELECT) to a file.

The figures are for the whole command (start-up, badge rows and keys made in the store,
the transfer, the marks); the machine is shared, so compare the ratios.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
import sqlalchemy as sa

from campaignctl.scaffold import create_workspace
from campaignctl.store import Store

CAMPAIGN = "appel-2027"
NOW = "2026-12-06T10:00:00+01:00"
TOKEN = "bench-token"
CLI = str(Path(sys.executable).parent / "campaignctl")

SEGMENTS = {
    "hotels": "where:\n  all:\n    - category: {eq: hotel}\n",
    "others": "where:\n  all:\n    - category: {ne: hotel}\n",
}


def write_workspace(root: Path, records: int, url: str) -> None:
    create_workspace(root)
    rng = random.Random(21)
    categories = ["hotel", "camping", "gite", "restaurant"]
    with (root / "audiences" / "contacts.csv").open("w", encoding="utf-8") as out:
        out.write("id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n")
        for i in range(records):
            email = f"contact{i}@example{i % 97}.org" if rng.random() < 0.9 else ""
            phone = f"+3361{i:07d}"
            out.write(f"R{i:07d};Maison {i};{email};{phone};{rng.choice(categories)};Val;;;\n")
    for name, where in SEGMENTS.items():
        (root / "audiences" / "segments" / f"{name}.yaml").write_text(
            f"kind: Segment\nname: {name}\naudience: providers\n{where}", encoding="utf-8"
        )
    config = root / "campaignctl.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").split("systems:")[0]
        + "systems:\n"
        + "  drop: {type: csv, path: exports/crm}\n"
        + f"  hook: {{type: webhook, url: '{url}', token_env: BENCH_TOKEN}}\n",
        encoding="utf-8",
    )
    (root / "campaigns" / f"{CAMPAIGN}.yaml").write_text(
        f"""kind: Campaign
name: {CAMPAIGN}
category: administrative
type: message
audience:
  segments: [hotels, others]
channels: [email, sms]
message:
  subject: Appel 2027
  template: renewal
exports:
  - {{system: drop, entity: appeal, label: Appel 2027, fields: {{appeal: A27, package: P1}}}}
  - {{system: hook, entity: appeal, label: Appel 2027, fields: {{appeal: A27, package: P1}}}}
""",
        encoding="utf-8",
    )
    (root / "templates" / "renewal.sms.j2").write_text("Appel 2027 {{ links.space_short }}\n")


class Receiver:
    """HTTP/1.1 keep-alive receiver: parses each batch and counts its badges."""

    def __init__(self) -> None:
        self.badges = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.badges += len(orjson.loads(body)["badges"])
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/badges"


def cli(root: Path, *args: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [CLI, "--workspace", str(root), *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")


def timed(root: Path, *args: str, env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB), CPU seconds and stdout of one command under
    /usr/bin/time -v."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-v", CLI, "--workspace", str(root), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    cpu = sum(
        float(re.search(rf"{what} time \(seconds\): ([\d.]+)", result.stderr)[1])
        for what in ("User", "System")
    )
    return wall, rss / 1024, cpu, result.stdout


def import_cpu() -> float:
    """CPU seconds of a bare Python importing what `export push` imports (the floor of its
    fixed cost, besides reading the workspace and the store)."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S", sys.executable, "-c",
         "import campaignctl.cli.main, campaignctl.export.transfer"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sum(float(x) for x in result.stderr.split()[-2:])


def rows(store: Store) -> list[tuple]:
    with store.read() as conn:
        return conn.execute(
            sa.text(
                "SELECT r.key, rc.segment, rc.channel, r.id FROM recipient rc "
                "JOIN record r ON r.id = rc.record_id ORDER BY rc.id"
            )
        ).all()


def reference_webhook(url: str, data: list[tuple]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(0, len(data), 500):
            batch = [
                {"idempotency_key": f"{CAMPAIGN}/hook/t9/r{rid}", "record": key,
                 "segment": segment, "channel": channel, "entity": "appeal",
                 "label": "Appel 2027", "fields": {"appeal": "A27", "package": "P1"}}
                for key, segment, channel, rid in data[i : i + 500]
            ]  # fmt: skip
            body = orjson.dumps({"format_version": 1, "action": "push", "badges": batch})
            client.post(url, content=body, headers={"Content-Type": "application/json"})
    return time.perf_counter() - started, time.process_time() - cpu


def reference_csv(path: Path, data: list[tuple]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["action", "record", "segment", "channel", "entity", "label", "appeal",
                         "package", "idempotency_key", "campaign", "transfer"])  # fmt: skip
        for key, segment, channel, rid in data:
            writer.writerow(["push", key, segment, channel, "appeal", "Appel 2027", "A27", "P1",
                             f"{CAMPAIGN}/drop/t9/r{rid}", CAMPAIGN, 9])  # fmt: skip
        handle.flush()
        os.fsync(handle.fileno())
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--store", help="a PostgreSQL URL (a fresh schema is used)")
    parser.add_argument(
        "--keep", type=Path, help="build the workspace here and keep it (and the schema)"
    )
    args = parser.parse_args()

    receiver = Receiver()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    env = {**os.environ, "CAMPAIGNCTL_NOW": NOW, "CI": "1", "BENCH_TOKEN": TOKEN}
    schema = None
    if args.store:
        schema = f"bench_export_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.store, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        env["CAMPAIGNCTL_STORE"] = f"{args.store}?options=-csearch_path%3D{schema}"
    try:
        write_workspace(root, args.records, receiver.url)
        print(f"setting up {args.records:,} records in {root} …", file=sys.stderr)
        cli(root, "audience", "import", env=env)
        cli(root, "apply", "--auto-approve", env=env)
        cli(root, "lock", CAMPAIGN, env=env)
        store = Store(env.get("CAMPAIGNCTL_STORE") or "sqlite:///.campaignctl/store.db", root=root)
        data = rows(store)
        n = len(data)

        wall, rss, cpu, _ = timed(root, "export", "push", CAMPAIGN, "--system", "hook", env=env)
        assert receiver.badges == n, (receiver.badges, n)
        ref, ref_cpu = reference_webhook(receiver.url, data)
        print(f"webhook: {n:,} badges in {wall:.2f} s = {n / wall:,.0f} badges/s "
              f"(goal ≥ 2,000), {cpu:.2f} CPU s, peak RSS {rss:.0f} MB (goal ≤ 200)")  # fmt: skip
        print(f"  reference (bare httpx loop, same batches): {ref:.2f} s = {n / ref:,.0f} "
              f"badges/s, {ref_cpu:.2f} CPU s with the receiver's; campaignctl takes "
              f"{wall / ref:.1f}× its time")  # fmt: skip

        wall, rss, cpu, _ = timed(root, "export", "push", CAMPAIGN, "--system", "drop", env=env)
        ref, ref_cpu = reference_csv(root / "reference.csv", data)
        print(f"csv drop: {n:,} badges in {wall:.2f} s = {n / wall:,.0f} badges/s "
              f"(goal ≥ 50,000), {cpu:.2f} CPU s = {n / cpu:,.0f} badges per CPU s, "
              f"peak RSS {rss:.0f} MB")  # fmt: skip
        print(f"  reference (csv.writer, same rows): {ref:.2f} s = {n / ref:,.0f} badges/s, "
              f"{ref_cpu:.2f} CPU s; campaignctl takes {wall / ref:.1f}× its time")  # fmt: skip
        csv_wall, csv_cpu = wall, cpu
        wall, _, cpu, out = timed(root, "export", "push", CAMPAIGN, "--system", "drop", env=env)
        print(f"push again (nothing to do): {wall:.2f} s, {cpu:.2f} CPU s: {out.strip()}")
        print(f"  the CSV drop less that fixed cost (start-up, workspace, checks): "
              f"{n / max(csv_wall - wall, 1e-9):,.0f} badges/s, "
              f"{n / max(csv_cpu - cpu, 1e-9):,.0f} badges per CPU s")  # fmt: skip
        imports = import_cpu()
        print(f"  of which importing the modules a push loads: {imports:.2f} CPU s "
              "(a bare python importing campaignctl.cli.main and export.transfer)")  # fmt: skip
        print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        store.close()
    finally:
        receiver.server.shutdown()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        if schema is not None and args.keep is None:
            admin = sa.create_engine(args.store, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
