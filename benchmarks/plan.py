"""Time `campaignctl plan` and `lock` of a 3-segment, 2-channel campaign with grouping and
exclusions over a 1,000,000-record store (the audience benchmark's CSV).
Targets (issue 6): plan <= 5 s and peak RSS <= 300 MB; lock <= 10 s.
Usage: python benchmarks/plan.py [CSV] [--workdir DIR] [--store URL] [--suppressions N]
  (default CSV: generate 1,000,000 rows in /tmp). With --workdir, the workspace and store are
  kept in DIR and reused by the next run with the same DIR (no re-import; the previous lock of
  the benchmark campaign is released first so that `lock` really locks again).
  --store postgresql+psycopg://…: the store in a fresh schema of that server (dropped at the
  end), instead of SQLite. --suppressions N: before measuring, N email suppressions (every
  category): the addresses of the first N records with one, which plan and lock then set
  aside; measured once without them first, as the reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
_import_bench = __import__("import")  # benchmarks/import.py: the same audience and timer
audience, run = _import_bench.audience, _import_bench.run
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from campaignctl.store import Store  # noqa: E402
from campaignctl.store.suppressions import sha256_hex  # noqa: E402
from campaignctl.store.tables import RECORD, SUPPRESSION  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONFIG = """store: sqlite:///.campaignctl/store.db
timezone: Europe/Paris
phone_region: FR
organization: {name: Bench}
senders:
  default: {from: "Bench <bench@example.org>", transport: file}
sms: {transport: file, sender_id: BENCH, price_per_part: 0.045}
tracking: {base_url: "https://bench.example"}
categories:
  marketing: {unsubscribe: true}
"""
SEGMENTS = {
    "hotels": "category: {in: [hotel, camping]}",
    "val": "commune: {in: [Val, Mont]}",
    "renewing": "contract_end: {between: [today, today+90d]}",
    "commerce": "category: commerce",
}
CAMPAIGN = """kind: Campaign
name: bench
category: marketing
audience:
  segments: [hotels, val, renewing]
  exclude_segments: [commerce]
channels: [email, sms]
message: {subject: "Bonjour", template: bench}
options: {group_by_email: true, max_messages_per_contact: 3}
schedule: {send_at: 2030-03-01T09:00, relaunch: [{after: 7d, to: non_responders}]}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, help="default: generated in the workdir")
    parser.add_argument("--workdir", type=Path, help="keep the workspace and store there")
    parser.add_argument("--store", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--suppressions", type=int, default=0)
    args = parser.parse_args()
    workdir = args.workdir.resolve() if args.workdir else None
    if args.store:
        with _schema(args.store) as url:
            _main(args.csv, workdir, url, args.suppressions)
        return
    _main(args.csv, workdir, None, args.suppressions)


@contextmanager
def _schema(server: str) -> Iterator[str]:
    """A fresh schema on a PostgreSQL server, as a store URL; dropped at the end."""
    schema = f"bench_plan_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _suppress(url: str, count: int) -> None:
    """COUNT email suppressions: the addresses of the first COUNT records that have one
    (written by the database itself: this process stays small, as its children's peak RSS
    counts it)."""
    store = Store(url)
    with store.engine.begin() as conn:  # no schema upgrade: an older version may own it
        first = (
            sa.select(RECORD.c.email_normalized.label("address"))
            .where(RECORD.c.email_normalized.is_not(None))
            .distinct()
            .order_by(RECORD.c.email_normalized)
            .limit(count)
            .subquery()
        )
        rows = sa.select(
            sa.literal("email"), first.c.address, sha256_hex(first.c.address),
            sa.literal("unsubscribed"), sa.literal("benchmark"),
            sa.literal(datetime.now(UTC), SUPPRESSION.c.created_at.type),
        )  # fmt: skip
        columns = ["channel", "address", "address_hash", "reason", "source", "created_at"]
        conn.execute(sa.insert(SUPPRESSION).from_select(columns, rows))
    store.close()


def _main(csv: Path | None, workdir: Path | None, url: str | None, suppressions: int) -> None:
    work = workdir or Path(tempfile.mkdtemp(prefix="campaignctl-plan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = csv or work / "contacts.csv"
    if not csv_path.exists():
        subprocess.run([sys.executable, HERE / "gen_contacts.py", csv_path], check=True)
    ws = work / "ws"
    cli = str(BIN / "campaignctl")
    os.environ.update({"CAMPAIGNCTL_NOW": "2030-01-06T08:00:00+01:00"})
    kept = ws / ".campaignctl"
    if url:
        os.environ["CAMPAIGNCTL_STORE"] = url
    elif (kept / "store.db").exists() and (kept / "imported").exists():
        print(f"reusing the workspace and store in {ws}")
        subprocess.run([cli, "unlock", "bench"], cwd=ws, capture_output=True)
        with sqlite3.connect(ws / ".campaignctl" / "store.db") as db:  # drop released snapshots
            db.execute(
                "DELETE FROM recipient WHERE lock_id IN "
                "(SELECT id FROM campaign_lock WHERE released_at IS NOT NULL)"
            )
        measure(cli, ws)
        return
    if ws.exists():
        shutil.rmtree(ws)
    for folder in ("audiences/segments", "campaigns", "templates"):
        (ws / folder).mkdir(parents=True)
    (ws / "campaignctl.yaml").write_text(CONFIG)
    document = audience(csv_path)[0].replace(
        "source: contacts.csv", "source: audiences/contacts.csv"
    )
    (ws / "audiences" / "contacts.audience.yaml").write_text(document)
    for name, where in SEGMENTS.items():
        (ws / "audiences" / "segments" / f"{name}.yaml").write_text(
            f"kind: Segment\nname: {name}\naudience: contacts\nwhere:\n  {where}\n"
        )
    (ws / "campaigns" / "bench.yaml").write_text(CAMPAIGN)
    (ws / "templates" / "bench.html.j2").write_text(
        '<p>Bonjour {{ record.nom }}</p>\n<a href="{{ links.unsubscribe }}">Se désinscrire</a>\n'
    )
    (ws / "templates" / "bench.txt.j2").write_text(
        "Bonjour {{ record.nom }}\nSe désinscrire : {{ links.unsubscribe }}\n"
    )
    (ws / "templates" / "bench.sms.j2").write_text("Bonjour {{ record.nom }}\n")
    try:  # a source stays inside audiences/ (no link from outside): a hard link, else a copy
        os.link(csv_path, ws / "audiences" / "contacts.csv")
    except OSError:
        shutil.copy2(csv_path, ws / "audiences" / "contacts.csv")
    seconds, rss, _ = run([cli, "audience", "import"], ws)
    print(f"import: {seconds:.1f} s, peak RSS {rss} MB")
    seconds, rss, _ = run([cli, "apply", "--auto-approve"], ws)
    if not url:
        (kept / "imported").touch()
    measure(cli, ws)
    if suppressions:
        _suppress(url or f"sqlite:///{kept / 'store.db'}", suppressions)
        print(f"\nwith {suppressions:,} suppressions:")
        subprocess.run([cli, "unlock", "bench"], cwd=ws, capture_output=True, check=True)
        measure(cli, ws)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Seconds, CPU seconds (user + system: what the load of a shared machine does not
    inflate much), peak RSS (MB) and the last output line of a command."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd} failed:\n{out}")
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, last


def measure(cli: str, ws: Path) -> None:
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    seconds, cpu, rss, last = timed([cli, "plan", "bench"], ws)
    print(
        f"plan: {seconds:.2f} s (CPU {cpu:.2f} s), peak RSS {rss} MB"
        f"  (target <= 5 s, <= 300 MB) — {last}"
    )
    seconds, cpu, rss, last = timed([cli, "lock", "bench"], ws)
    print(f"lock: {seconds:.2f} s (CPU {cpu:.2f} s), peak RSS {rss} MB  (target <= 10 s)")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    out = subprocess.run([cli, "plan", "bench"], cwd=ws, capture_output=True, text=True).stdout
    print(out)


if __name__ == "__main__":
    main()
