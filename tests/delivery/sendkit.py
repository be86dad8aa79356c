"""Workspaces for the send tests: the demo, pointed at a real SMTP server, with N contacts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HEADER = (
    "id;nom;category;commune;email;telephone;portable;tags;contract_end;adhesion_depuis;"
    "opening_periods;capacite;classement;site_web;statut"
)
RUN_CLI = "import sys; from campaignctl.cli.main import main; sys.argv[0] = 'campaignctl'; main()"


def use_smtp(root: Path, port: int, *, batch_size: int = 200, pool_size: int = 4) -> None:
    """Point the demo's default sender at 127.0.0.1:`port` (no TLS) and shrink the batches."""
    config = root / "campaignctl.yaml"
    text = config.read_text("utf-8")
    text = text.replace(
        "    transport: file                           # writes .eml files into .campaignctl/outbox/",
        f"    transport: smtp\n"
        f"    smtp: {{host: 127.0.0.1, port: {port}, starttls: false, pool_size: {pool_size},"
        " timeout: 5s}",
        1,
    )
    text = re.sub(r"rate: \{per_second: 20\}", "rate: {per_second: 100000}", text)
    text = text.replace(
        "delivery: {max_attempts: 5, retry_backoff: 5m, batch_size: 200}",
        f"delivery: {{max_attempts: 3, retry_backoff: 1m, batch_size: {batch_size}}}",
    )
    assert "transport: smtp" in text and f"batch_size: {batch_size}" in text
    config.write_text(text, "utf-8")


def write_contacts(root: Path, count: int, extra: tuple[str, ...] = ()) -> list[str]:
    """Replace the demo's contacts with `count` hotels, each with its own email, then one
    per `extra` address; returns the addresses."""
    lines = [HEADER]
    addresses = []
    for number in range(count + len(extra)):
        address = extra[number - count] if number >= count else f"c{number}@d{number % 13}.example"
        addresses.append(address)
        lines.append(f"HOT-{number:06d};Hôtel {number};hotel;Val;{address};;;adherent;;;;;;;actif")
    (root / "audiences" / "contacts.csv").write_text("\n".join(lines) + "\n", "utf-8")
    return addresses


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`campaignctl --workspace ROOT ARGS…` as a real process (stdout and stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "--workspace", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
