"""A demo workspace that has sent its messages, and `serve`'s app answering on a real port.

`sent` imports the demo audience and sends mise-a-jour-2027 (administrative: forms,
spaces, SMS short links) and rappel-renouvellement (marketing: unsubscribe and
preference links, tracked links) through the file transport, signed with a real
secret; on SQLite and on PostgreSQL (`backend`). `server` runs the app in uvicorn on
a free 127.0.0.1 port, in a thread of the test process.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app

NOW = "2026-11-23T10:00:00+01:00"  # a Monday morning, outside the SMS quiet hours
SECRET = "test-link-secret-5f2c9a1e7b3d4c6a8e0f"
API_TOKEN = "test-api-token-0c1d2e3f"
QUESTIONNAIRE = "mise-a-jour-2027"
MARKETING = "rappel-renouvellement"


def cli(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@dataclass
class Message:
    path: Path
    message_id: str
    to: str
    html: str
    text: str
    headers: dict[str, str]

    @property
    def links(self) -> list[str]:
        return re.findall(r'(?:href|src)="([^"]+)"', self.html)

    def link(self, kind: str) -> str:
        """The first link of the HTML part whose path starts with /{kind}/."""
        for url in self.links:
            if f"/{kind}/" in url:
                return url
        raise AssertionError(f"no /{kind}/ link in {self.path.name}: {self.links}")


def read_message(path: Path) -> Message:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    return Message(
        path,
        path.stem,
        str(parsed["To"]),
        html.get_content() if html else "",
        text.get_content() if text else "",
        {k: str(v) for k, v in parsed.items()},
    )


@dataclass
class Sent:
    root: Path
    store_url: str
    messages: dict[str, list[Message]] = field(default_factory=dict)  # campaign -> emails

    def store(self):
        from campaignctl.store import Store

        return Store(self.store_url, root=self.root)

    def query(self, sql: str, **params) -> list[tuple]:
        store = self.store()
        try:
            with store.read() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            store.close()

    def local(self, url: str) -> str:
        """A link of a message, as a path on the test server."""
        return url.removeprefix("https://campagnes.val-des-aiguilles.example")


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _send_all(root: Path) -> None:
    result = cli(root, "audience", "import")
    assert result.exit_code == 0, result.output
    for campaign in (QUESTIONNAIRE, MARKETING):
        for args in (
            ["apply", campaign, "--auto-approve"],
            ["lock", campaign],
            ["send", campaign, "--now"],
        ):
            result = cli(root, *args)
            assert result.exit_code == 0, (args, result.output)


def _admin() -> sa.Engine:
    return sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def _sent_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple]]:
    """The sends, made once per test process and backend; each test gets a copy (a
    copied folder, and on PostgreSQL a database made from the template database)."""
    from backends import REPO

    made: dict[str, tuple] = {}
    databases: list[str] = []

    def build(backend: str) -> tuple:
        if backend in made:
            return made[backend]
        root = tmp_path_factory.mktemp(f"sent-{backend}") / "demo"
        root.mkdir()
        shutil.copy2(REPO / "campaignctl.yaml", root / "campaignctl.yaml")
        for folder in ("audiences", "questionnaires", "campaigns", "templates", "documents"):
            shutil.copytree(REPO / folder, root / folder)
        with pytest.MonkeyPatch.context() as mp:
            for name, value in _ENV.items():
                mp.setenv(name, value)
            mp.delenv("CAMPAIGNCTL_STORE", raising=False)
            url = None
            if backend == "postgresql":
                name = f"tmpl_{uuid.uuid4().hex[:12]}"
                admin = _admin()
                try:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                except sa.exc.OperationalError as exc:
                    pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({exc.orig})")
                finally:
                    admin.dispose()
                databases.append(name)
                url = f"{PG_SERVER}/{name}"
                mp.setenv("CAMPAIGNCTL_STORE", url)
            _send_all(root)
        made[backend] = (root, url)
        return made[backend]

    yield build  # type: ignore[misc]
    admin = _admin()
    with admin.connect() as conn:
        for name in databases:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_ENV = {"CAMPAIGNCTL_NOW": NOW, "CAMPAIGNCTL_SECRET": SECRET, "CAMPAIGNCTL_API_TOKEN": API_TOKEN}


@pytest.fixture(params=["sqlite", "postgresql"])
def sent(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _sent_templates,
) -> Iterator[Sent]:
    """The demo after both sends, on SQLite then PostgreSQL; CAMPAIGNCTL_STORE points
    every command at this test's own copy."""
    for name, value in _ENV.items():
        monkeypatch.setenv(name, value)
    template, template_url = _sent_templates(request.param)
    root = tmp_path / "demo"
    shutil.copytree(template, root)
    database = None
    if request.param == "sqlite":
        url = "sqlite:///.campaignctl/store.db"
    else:
        database = f"t_{uuid.uuid4().hex[:12]}"
        admin = _admin()
        name = template_url.rsplit("/", 1)[1]
        with admin.connect() as conn:
            # the commands that built it leave pooled connections in this process
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(sa.text(f'CREATE DATABASE "{database}" TEMPLATE "{name}"'))
        admin.dispose()
        url = f"{PG_SERVER}/{database}"
        monkeypatch.setenv("CAMPAIGNCTL_STORE", url)
    done = Sent(root, url)
    for campaign in (QUESTIONNAIRE, MARKETING):
        folder = root / ".campaignctl" / "outbox" / campaign
        done.messages[campaign] = [read_message(p) for p in sorted(folder.glob("*.eml"))]
    yield done
    if database:
        admin = _admin()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Server:
    base: str
    sent: Sent

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=30, **kw)


def run_app(application, *, sockets_host: str = "127.0.0.1") -> Iterator[str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((sockets_host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application, log_level="warning", access_log=False, lifespan="on", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def server(sent: Sent) -> Iterator[Server]:
    from campaignctl.web.app import create_app
    from campaignctl.web.settings import ServeSettings

    application = create_app(ServeSettings(root=str(sent.root), store_url=sent.store_url))
    for base in run_app(application):
        yield Server(base, sent)


@pytest.fixture
def limited_server(sent: Sent) -> Iterator[Server]:
    """The app with rate limits of 3 POSTs a minute per IP (refilled one per 20 s)."""
    from campaignctl.web.app import create_app
    from campaignctl.web.settings import ServeSettings

    settings = ServeSettings(
        root=str(sent.root), store_url=sent.store_url, posts_per_minute=3, api_posts_per_minute=3
    )
    for base in run_app(create_app(settings)):
        yield Server(base, sent)
