"""Drive `wrk` against `campaignctl serve`'s open pixel and click redirect (goal ≥ 3,000
requests/s with p99 ≤ 50 ms, every answered hit stored).

Usage: python benchmarks/serve.py [--workers 1 2] [--duration 10] [--connections 64]
                                  [--store URL] [--keep DIR]

Builds a copy of the demo workspace, imports its audience and sends the marketing
campaign and the record update through the file transport (signed with a real
secret), then collects the `/o/` pixel and `/c/` click links of the emails. For each
`--workers` value it starts `campaignctl serve` as a user does (a subprocess) and runs
wrk on those links (half pixels, half clicks, each connection cycling through them),
then counts the events in the store: every hit answered 2xx/3xx must be there
(`stored ≥ answered`; stored can exceed it by hits in flight when wrk stopped).

The reference, in the same run: the same server's `/healthz` (no token to check, no
event to store), what the HTTP stack itself gives on this machine; the ratio says what
checking and storing costs. `--store postgresql+psycopg://…` uses a fresh database
there (dropped at the end). The machine is shared: compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

SECRET = "benchmark-secret-9f8e7d6c5b4a"
NOW = "2026-11-23T10:00:00+01:00"
CAMPAIGNS = ("rappel-renouvellement", "mise-a-jour-2027")
BASE = "https://campagnes.val-des-aiguilles.example"


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")


def build(root: Path, env: dict[str, str]) -> list[str]:
    for name in ("campaignctl.yaml",):
        shutil.copy2(REPO / name, root / name)
    for folder in ("audiences", "questionnaires", "campaigns", "templates", "documents"):
        shutil.copytree(REPO / folder, root / folder)
    cli = str(Path(sys.executable).with_name("campaignctl"))
    run([cli, "audience", "import"], env, root)
    for campaign in CAMPAIGNS:
        run([cli, "apply", campaign, "--auto-approve"], env, root)
        run([cli, "lock", campaign], env, root)
        run([cli, "send", campaign, "--now"], env, root)
    paths = []
    for campaign in CAMPAIGNS:
        for eml in sorted((root / ".campaignctl" / "outbox" / campaign).glob("*.eml")):
            text = eml.read_bytes().decode("utf-8", "replace").replace("=\r\n", "")
            for kind in ("o", "c"):
                found = re.search(rf"{re.escape(BASE)}/{kind}/([A-Za-z0-9_.\-=3D]+)", text)
                if found:
                    paths.append(f"/{kind}/" + found.group(1).replace("=3D", "="))
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LUA = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def wrk(base: str, paths: list[str], args: argparse.Namespace, script_dir: Path) -> dict:
    script = script_dir / "paths.lua"
    script.write_text(LUA % ", ".join(f'"{p}"' for p in paths), encoding="utf-8")
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "answered": total - (int(errors.group(1)) if errors else 0),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "none",
        "cpu": (end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def count_events(url: str, root: Path) -> int:
    from campaignctl.store import Store

    store = Store(url, root=root)
    try:
        with store.read() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT COUNT(*) FROM event WHERE type IN ('opened', 'clicked')")
                ).scalar_one()
            )
    finally:
        store.close()


def serve(root: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cli = str(Path(sys.executable).with_name("campaignctl"))
    process = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(
                f"serve did not start: {process.stderr.read().decode() if process.stderr else ''}"
            )
        time.sleep(0.2)


def measured(
    root: Path, env: dict[str, str], workers: int, paths: list[str], args: argparse.Namespace
) -> tuple[dict, float]:
    """wrk's figures on a fresh `serve`, and the CPU seconds serve (and its workers) used:
    the cost per request, which a machine shared with other work does not distort."""
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    process, base = serve(root, env, workers)
    try:
        result = wrk(base, paths, args, root)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = result.pop("cpu")
    cpu = (end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime) - wrk_cpu
    return result, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--store", help="postgresql+psycopg://… (default: SQLite in the workspace)")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    root = args.keep or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CAMPAIGNCTL_NOW": NOW, "CAMPAIGNCTL_SECRET": SECRET}
    database = None
    if args.store:
        database = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.store, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        env["CAMPAIGNCTL_STORE"] = args.store.rsplit("/", 1)[0] + f"/{database}"
    url = env.get("CAMPAIGNCTL_STORE", "sqlite:///.campaignctl/store.db")
    try:
        paths = build(root, env)
        pixels = sum(p.startswith("/o/") for p in paths)
        print(
            f"{len(paths)} links ({pixels} pixels), store {url.split('@')[-1]}, "
            f"wrk -t2 -c{args.connections} -d{args.duration}s"
        )
        for workers in args.workers:
            before = count_events(url, root)
            ours, ours_cpu = measured(root, env, workers, paths, args)
            stored = count_events(url, root) - before
            reference, reference_cpu = measured(root, env, workers, ["/healthz"], args)
            ok = stored >= ours["answered"]
            per_hit = ours_cpu / max(ours["answered"], 1) * 1e6
            per_ref = reference_cpu / max(reference["answered"], 1) * 1e6
            print(
                f"--workers {workers}: pixel+click {ours['rps']:,.0f} req/s, "
                f"p50 {ours['p50']:.1f} ms, p99 {ours['p99']:.1f} ms; "
                f"answered {ours['answered']:,}, "
                f"stored {stored:,} ({'every answered hit stored' if ok else 'HITS MISSING'}), "
                f"errors {ours['errors']}, socket errors {ours['socket_errors']}; "
                f"serve CPU {per_hit:.0f} us/hit | reference /healthz {reference['rps']:,.0f} "
                f"req/s, p99 {reference['p99']:.1f} ms, {per_ref:.0f} us/request | ratios: "
                f"rate {ours['rps'] / reference['rps']:.2f}, "
                f"CPU per request {per_hit / per_ref:.1f}"
            )
        print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        if database:
            admin = sa.create_engine(args.store, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
