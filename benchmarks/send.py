"""`campaignctl send` end to end beside its peers, on the same recipients, to Postfix's smtp-sink.

    .venv/bin/pip install mailmerge        # for (a) only; not a dependency of campaignctl
    .venv/bin/python benchmarks/send.py [--recipients 20000] [--memory 200000]

Prints messages per second for:
(a) `mailmerge` (the PyPI CLI: plain text, one SMTP session per message);
(b) a bare aiosmtplib loop sending ONE pre-built message over 10 reused connections;
(c) `campaignctl send` from the lock: html + text rendered per recipient, outbox
    state durable in SQLite, through the smtp transport (pool of 10);
(d) `campaignctl send` to the file transport (fsynced .eml files).
With `--memory N`, also sends N recipients to the file transport in a subprocess
and prints its peak RSS and PSS: the send process and its render processes together,
sampled from /proc (the issue's bound: 250 MB for 200,000). Peak RSS figures
are that sum; CPU per message counts every process of the send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.memory import PeakMemory  # noqa: E402
from benchmarks.transport_smtp import POOL, build_message, free_port, run_bare, start_sink  # noqa: E402
from tests.delivery.sendkit import RUN_CLI, write_contacts  # noqa: E402

CAMPAIGN = "mise-a-jour-2027"


def workspace(base: Path, recipients: int, smtp_port: int | None) -> Path:
    root = base / f"ws-{recipients}-{smtp_port or 'file'}"
    root.mkdir()
    shutil.copy2(REPO / "campaignctl.yaml", root / "campaignctl.yaml")
    for folder in ("audiences", "questionnaires", "campaigns", "templates", "documents"):
        shutil.copytree(REPO / folder, root / folder)
    if smtp_port:
        from tests.delivery.sendkit import use_smtp

        use_smtp(root, smtp_port, batch_size=500, pool_size=POOL)
    else:
        config = root / "campaignctl.yaml"
        text = config.read_text("utf-8").replace("batch_size: 200", "batch_size: 500")
        config.write_text(text, "utf-8")
    write_contacts(root, recipients)
    return root


def lock(root: Path) -> None:
    """Import and lock with the real `lock` when it exists, else the tests' lock fixture."""
    from tests.delivery.locking import locked_demo

    figures = locked_demo(root, CAMPAIGN)
    print(f"    locked {figures['recipients']} recipients in {root.name}")


def run_send(root: Path, env: dict[str, str]) -> tuple[dict, float, tuple[int, int], float]:
    """(summary, wall seconds, peak (RSS, PSS) in KiB of the send process and its render
    processes together, CPU seconds of them all)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_CLI,
            "--workspace",
            str(root),
            "send",
            CAMPAIGN,
            "--now",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    with PeakMemory(process) as peak:
        out, err = process.communicate()
        wall = time.perf_counter() - start  # not the sampler's last sleep
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise SystemExit(f"send failed ({process.returncode}): {err[-2000:]}")
    summary = json.loads(out.splitlines()[-1])
    return summary, wall, (max(peak.rss_kib, after.ru_maxrss), peak.pss_kib), cpu


def run_mailmerge(base: Path, port: int, recipients: int) -> float | None:
    binary = shutil.which("mailmerge", path=str(Path(sys.executable).parent))
    if binary is None:
        print("(a) mailmerge: not installed (pip install mailmerge) — skipped")
        return None
    folder = base / "mailmerge"
    folder.mkdir()
    (folder / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\nratelimit = 0\n"
    )
    (folder / "mailmerge_template.txt").write_text(
        "TO: {{email}}\nSUBJECT: Mettez à jour votre fiche {{nom}}\n"
        "FROM: Office <partenaires@val-des-aiguilles.example>\n\n"
        "Bonjour {{nom}},\n\nMerci de vérifier votre fiche avant l'impression du guide.\n"
    )
    rows = ["email,nom"] + [f"c{n}@d{n % 13}.example,Hôtel {n}" for n in range(recipients)]
    (folder / "mailmerge_database.csv").write_text("\n".join(rows) + "\n")
    start = time.perf_counter()
    subprocess.run(
        [binary, "--no-dry-run", "--no-limit", "--output-format", "raw"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return recipients / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--memory", type=int, default=0, help="recipients for the RSS run")
    args = parser.parse_args()
    env = {"CAMPAIGNCTL_SECRET": "benchmark-secret", "CAMPAIGNCTL_NOW": "2026-11-23T10:00:00+01:00"}
    os.environ.update(env)
    port = free_port()
    sink, kind = start_sink(port)
    print(f"sink: {kind} on 127.0.0.1:{port}; {os.cpu_count()} cores; {args.recipients} recipients")
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        try:
            smtp_ws = workspace(base, args.recipients, port)
            lock(smtp_ws)
            file_ws = workspace(base, args.recipients, None)
            lock(file_ws)

            rate_a = run_mailmerge(base, port, args.recipients)
            if rate_a:
                print(f"(a) mailmerge, plain text:                         {rate_a:8.0f} msg/s")
            sample = build_message(0, 7000)
            cpu = time.process_time()
            rate_b = asyncio.run(run_bare(port, sample, args.recipients))
            cpu_b = (time.process_time() - cpu) / args.recipients * 1e6
            print(
                f"(b) bare aiosmtplib, one message, {POOL} connections: {rate_b:8.0f} msg/s "
                f"({cpu_b:.0f} µs CPU per message)"
            )
            summary, wall, peak, cpu = run_send(smtp_ws, env)
            assert summary["sent"] == args.recipients, summary
            rate_c = summary["rate"]
            print(
                f"(c) campaignctl send, smtp, end to end:            {rate_c:8.0f} msg/s "
                f"(engine {summary['elapsed']:.1f} s; whole command {wall:.1f} s = "
                f"{args.recipients / wall:.0f} msg/s; {cpu / args.recipients * 1e6:.0f} µs CPU "
                f"per message, all processes; peak RSS {peak[0] // 1024} MB)"
            )
            if rate_a:
                print(f"    (c)/(a) = {rate_c / rate_a:.2f} (target ≥ 2.5)")
            print(f"    (c)/(b) = {rate_c / rate_b:.2f} (target ≥ 0.75)")
            summary, wall, peak, _ = run_send(file_ws, env)
            print(
                f"(d) campaignctl send, file transport (fsync):      {summary['rate']:8.0f} msg/s "
                f"(whole command {wall:.1f} s; peak RSS {peak[0] // 1024} MB, "
                f"PSS {peak[1] // 1024} MB)"
            )
            if args.memory:
                big = workspace(base, args.memory, None)
                lock(big)
                summary, wall, peak, _ = run_send(big, env)
                assert summary["sent"] == args.memory, summary
                print(
                    f"memory: {args.memory} recipients to the file transport: peak RSS "
                    f"{peak[0] // 1024} MB, PSS {peak[1] // 1024} MB, send and render processes "
                    "together (bound 250 MB), "
                    f"{summary['rate']:.0f} msg/s, {wall:.0f} s"
                )
        finally:
            sink.terminate()
            sink.wait()


if __name__ == "__main__":
    main()
