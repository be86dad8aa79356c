"""Drive `wrk` against `campaignctl serve`'s open pixel and click redirect (goal ≥ 3,000
requests/s with p99 ≤ 50 ms, every answered hit stored).

Usage: python benchmarks/serve.py [--workers 1 2] [--duration 10] [--connections 64] [--no-forms]
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
checking and storing costs.

Form submits (goal ≥ 300/s): wrk POSTs the questionnaire forms of the record update
(`/f/TOKEN`), each as a browser would send it back: the CSRF cookie and token of a GET
of the page, the values it shows (prefilled), a phone number where a required one is
empty. Every POST comes from another client address (X-Forwarded-For, as behind the
reverse proxy; the rate limit is per client), and every answer 200 must be a
`form_submitted` event in the store (each one also updates the record's response to
process). The reference: GETs of the same forms (the page, and its `form_opened` event).

wrk runs on the same 2 cores as serve and takes a good part of one: the CPU serve itself
used per request is printed too. `--store postgresql+psycopg://…` uses a fresh database
there (dropped at the end). The machine is shared: compare the ratios.
"""

from __future__ import annotations

import argparse
import html.parser
import json
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
from typing import Any

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


def form_paths(root: Path) -> list[str]:
    """The `/f/` links of the record update's emails."""
    paths = []
    for eml in sorted((root / ".campaignctl" / "outbox" / CAMPAIGNS[1]).glob("*.eml")):
        text = eml.read_bytes().decode("utf-8", "replace").replace("=\r\n", "")
        found = re.search(rf"{re.escape(BASE)}/f/([A-Za-z0-9_.\-=3D]+)", text)
        if found:
            paths.append("/f/" + found.group(1).replace("=3D", "="))
    return paths


class _Form(html.parser.HTMLParser):
    """The fields a browser would send back from a form page, as shown; a required field
    shown empty gets a plausible value, as a person would type or tick."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._group: tuple[bool, int, list[tuple[str, str, str]]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        required = a.get("aria-required") == "true"
        if tag == "fieldset":
            self._group = (required, len(self.fields), [])
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if self._group is not None:
                self._group[2].append((a["name"], kind, a.get("value", "on")))
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            elif a.get("value"):
                self.fields.append((a["name"], a["value"]))
            elif required:
                self.fields.append((a["name"], FILL.get(kind, "x")))
        elif tag == "textarea":
            self._textarea = a.get("name")
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields.append((self._textarea, data))
            self._textarea = None
        elif self._select and self._options and not self._options[-1][0]:
            self._options[-1] = (data.strip(), self._options[-1][1])

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, ""))
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = [value for value, selected in self._options if selected]
            if chosen:
                self.fields.append((self._select, chosen[0]))
            self._select = None
        elif tag == "fieldset" and self._group is not None:
            required, first, inputs = self._group
            self._group = None
            if required and len(self.fields) == first and inputs:
                name, kind, value = inputs[0]
                if kind == "date":  # a period: its first row
                    self.fields += [(name, "2027-01-01"), (inputs[1][0], "2027-12-31")]
                else:
                    self.fields.append((name, value))


FILL = {"tel": "+33 4 79 00 00 00", "email": "contact@example.org", "number": "1"}


def form_posts(base: str, paths: list[str]) -> list[tuple[str, str, str]]:
    """(path, cookie, body) of a valid submit of each form; one POST each checks it."""
    from urllib.parse import urlencode

    posts = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for n, path in enumerate(paths):
            page = client.get(path, headers={"x-forwarded-for": f"10.255.0.{n % 250 + 1}"})
            if page.status_code != 200:
                continue
            form = _Form()
            form.feed(page.text)
            body = urlencode(form.fields)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            client.cookies.clear()
            check = client.post(
                path,
                content=body,
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "cookie": cookie,
                    "x-forwarded-for": f"10.255.1.{n % 250 + 1}",
                },
            )
            client.cookies.clear()
            if check.status_code == 200:
                posts.append((path, cookie, body))
            else:
                print(f"  (a form answered {check.status_code} to its check: left out)")
    return posts


# Each wrk thread's requests come from addresses of their own (X-Forwarded-For), so that
# serve's per-IP limit on POSTs does not turn a load test into a test of the limit.
_DISTINCT_IPS = """
function next_ip()
  counter = counter + 1
  local n = id * 1000000 + counter
  return "10." .. (math.floor(n / 65536) %% 256) .. "." .. (math.floor(n / 256) %% 256)
    .. "." .. (n %% 256)
end
setup = function(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end
thread_id = 1
counter = 0
"""

POST_LUA = (
    """
posts = {%s}
request = function()
  local ip = next_ip()
  local p = posts[(counter %% #posts) + 1]
  return wrk.format("POST", p[1], {["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = p[2], ["X-Forwarded-For"] = ip}, p[3])
end
"""
    + _DISTINCT_IPS
)

GET_LUA = (
    """
paths = {%s}
request = function()
  local ip = next_ip()
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["X-Forwarded-For"] = ip})
end
"""
    + _DISTINCT_IPS
)


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


def lua(paths: list[str]) -> str:
    return LUA % ", ".join(f'"{p}"' for p in paths)


def wrk(base: str, script_text: str, args: argparse.Namespace, script_dir: Path) -> dict:
    script = script_dir / "wrk.lua"
    script.write_text(script_text, encoding="utf-8")
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


def count_events(url: str, root: Path, types: tuple[str, ...] = ("opened", "clicked")) -> int:
    from campaignctl.store import Store

    store = Store(url, root=root)
    try:
        with store.read() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT COUNT(*) FROM event WHERE type IN :types").bindparams(
                        sa.bindparam("types", expanding=True)
                    ),
                    {"types": list(types)},
                ).scalar_one()
            )
    finally:
        store.close()


def serve(root: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cli = str(Path(sys.executable).with_name("campaignctl"))
    log = root / "serve.log"  # a file: a pipe nobody reads would stop serve once full
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
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
            sys.exit(f"serve did not start: {log.read_text(errors='replace')}")
        time.sleep(0.2)


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (uvicorn's workers)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measured(
    root: Path, env: dict[str, str], workers: int, script: Any, args: argparse.Namespace
) -> tuple[dict, float]:
    """wrk's figures on a fresh `serve`, and the CPU seconds serve (and its workers) used
    while wrk ran: the cost per request, which a machine shared with other work does not
    distort. `script`: wrk's Lua, or a function of the server's base URL that makes it."""
    process, base = serve(root, env, workers)
    try:
        text = script(base) if callable(script) else script
        start = tree_cpu(process.pid)
        result = wrk(base, text, args, root)
        cpu = tree_cpu(process.pid) - start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    result["wrk_cpu"] = result.pop("cpu")
    return result, cpu


def figures(what: str, result: dict, cpu: float, stored: int | None) -> str:
    per = cpu / max(result["answered"], 1) * 1e6
    text = (
        f"{what + ' ' if what else ''}{result['rps']:,.0f} req/s, p50 {result['p50']:.1f} ms, "
        f"p99 {result['p99']:.1f} ms; answered {result['answered']:,}"
    )
    if stored is not None:
        ok = "every answered hit stored" if stored >= result["answered"] else "HITS MISSING"
        text += f", stored {stored:,} ({ok})"
    return (
        text + f", errors {result['errors']}, socket errors {result['socket_errors']}; "
        f"serve CPU {per:.0f} us/request, wrk CPU {result['wrk_cpu']:.1f} s"
    )


def ratios(ours: dict, ours_cpu: float, reference: dict, reference_cpu: float) -> str:
    per = ours_cpu / max(ours["answered"], 1)
    per_ref = reference_cpu / max(reference["answered"], 1)
    return (
        f" | ratios: rate {ours['rps'] / reference['rps']:.2f}, CPU per request {per / per_ref:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--store", help="postgresql+psycopg://… (default: SQLite in the workspace)")
    parser.add_argument("--no-forms", action="store_true", help="skip the form submits")
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
            ours, ours_cpu = measured(root, env, workers, lua(paths), args)
            stored = count_events(url, root) - before
            reference, reference_cpu = measured(root, env, workers, lua(["/healthz"]), args)
            print(f"--workers {workers}: " + figures("pixel+click", ours, ours_cpu, stored))
            print(
                "  reference /healthz: "
                + figures("", reference, reference_cpu, None)
                + ratios(ours, ours_cpu, reference, reference_cpu)
            )
            if args.no_forms:
                continue
            forms = form_paths(root)
            before = count_events(url, root, ("form_submitted",))
            checked: list[int] = []

            def post_script(
                base: str, forms: list[str] = forms, checked: list[int] = checked
            ) -> str:
                posts = form_posts(base, forms)
                checked.append(len(posts))
                return POST_LUA % ", ".join(
                    "{" + ", ".join(json.dumps(v) for v in post) + "}" for post in posts
                )

            submits, submits_cpu = measured(root, env, workers, post_script, args)
            stored = count_events(url, root, ("form_submitted",)) - before - checked[0]
            pages, pages_cpu = measured(
                root, env, workers, GET_LUA % ", ".join(f'"{p}"' for p in forms), args
            )
            print(f"  {checked[0]} forms: " + figures("form submits", submits, submits_cpu, stored))
            print(
                "  reference form pages (GET): "
                + figures("", pages, pages_cpu, None)
                + ratios(submits, submits_cpu, pages, pages_cpu)
            )
        print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        errors = (root / "serve.log").read_text(errors="replace").count("ERROR")
        print(
            f"serve logged {errors} error(s)" + (f": see {root / 'serve.log'}" if args.keep else "")
        )
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
