"""The HTML report in a real browser: headless Chromium renders it without console errors."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


def non_white_pixels(png: bytes) -> tuple[int, int, int]:
    """(width, height, pixels that are not white) of an 8-bit RGB/RGBA PNG, with the stdlib."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, *_ = header
    assert depth == 8 and colour in (2, 6), header
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous, count, i = bytearray(stride), 0, 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):  # undo the PNG filters (RFC 2083 §6)
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        count += sum(1 for x in range(0, stride, channels) if min(line[x : x + 3]) < 250)
        previous = line
    return width, height, count


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_report_renders_in_chromium(reported, tmp_path: Path) -> None:
    page = tmp_path / "rapport.html"
    result = CliRunner().invoke(
        app,
        [
            "--workspace",
            str(reported.root),
            "report",
            "mise-a-jour-2027",
            "-f",
            "html",
            "-o",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    shot = tmp_path / "rapport.png"
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line]
    assert console == []
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "answers: 9 / 24 records contacted (37.5%)" in dom.stdout
    assert dom.stdout.count("<svg") == 2
    width, height, painted = non_white_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert painted > 20_000  # text, tables and both charts; a blank page has none
