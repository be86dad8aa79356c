"""`campaignctl serve`: the web side recipients reach from their messages (DESIGN.md §4)."""

from __future__ import annotations

from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import WorkspaceOption


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes. The POST rate limits are per worker: with N workers a "
            "client may get up to N times them (a strict limit belongs in the reverse proxy).",
        ),
    ] = 1,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Accept the development link secret (when tracking.secret_env is unset): "
            "for trying links of the file transport locally, never for real recipients.",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated).",
        ),
    ] = "127.0.0.1",
    workspace: WorkspaceOption = None,
) -> None:
    """Answer the links of the messages: forms, spaces, short links, opens, clicks,
    unsubscribes, preferences and the events API.

    Every hit is stored as an event before it is answered. Links are checked with the
    secret of tracking.secret_env (the one `send` signed them with); without it serve
    refuses to start unless --dev is given. Run it behind a reverse proxy that
    terminates TLS at tracking.base_url (see the README).

    Example: campaignctl serve --port 8000 --workers 2  (with CAMPAIGNCTL_SECRET set)
    """
    import os

    import uvicorn

    from campaignctl.cli.options import EnvVars
    from campaignctl.errors import UsageError
    from campaignctl.web.settings import SETTINGS_VARIABLE, ServeSettings, serve_secret

    app = get_app(ctx).use(workspace)
    ws = app.valid_workspace()
    config = ws.config
    assert config is not None
    if config.tracking is None:
        raise UsageError(
            "campaignctl.yaml has no `tracking:`: serve answers the links it describes",
            hint="add `tracking: {base_url: https://..., secret_env: CAMPAIGNCTL_SECRET}`",
        )
    secret = serve_secret(config.tracking, dev=dev)
    store = app.store()
    store.ensure_schema()  # migrations run once, here, not in N workers at once
    store.close()
    settings = ServeSettings(
        root=str(ws.root),
        store_url=os.environ.get(EnvVars.STORE) or config.store,
        dev=dev,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    os.environ[SETTINGS_VARIABLE] = settings.to_environment()
    if secret.notice:
        app.err.print(f"warning: {secret.notice}")
    app.err.print(
        f"serving {config.tracking.base_url} on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}); Ctrl-C stops"
    )
    uvicorn.run(
        "campaignctl.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # paths hold tokens: never logged
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Web")(serve)
