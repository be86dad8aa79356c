"""The ASGI app `campaignctl serve` runs (DESIGN.md §4): `create_app(settings)`.

Routes (all under `tracking.base_url`), each checking a token signed for its purpose
only (`render.links.LinkSigner`, the signer that made the links):

- `/o/TOKEN` open pixel, `/c/TOKEN` click redirect to the URL the message held;
- `/u/TOKEN` unsubscribe (GET asks, POST opts out; RFC 8058 one-click POST at once);
- `/p/TOKEN` preference centre, per category;
- `/f/TOKEN` questionnaire form, `/s/TOKEN` personal space, `/q/CODE` short links;
- `POST /api/events` JSON lines of `events ingest`, with a bearer token.

Every hit is an event stored (web/writer.py) before the answer is sent. A tampered,
expired or foreign token gets the same 404 page, with no detail.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from campaignctl import clock
from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose, LinkSigner, ShortLinkError
from campaignctl.spec.models import EventType, WorkspaceConfig
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.web.pages import Pages
from campaignctl.web.security import CSRF_COOKIE, CSRF_FIELD, Csrf, RateLimiter, SecurityMiddleware
from campaignctl.web.settings import ServeSettings, serve_secret
from campaignctl.web.writer import EventWriter

log = logging.getLogger("campaignctl.web")

# A transparent 1×1 GIF: the open pixel.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_STORE = {"cache-control": "no-store, private"}


class InvalidToken(Exception):
    """A token that is tampered with, expired, or made for another purpose."""


@dataclass
class Web:
    """What every request handler needs: the workspace, the store, the signer, the writer."""

    settings: ServeSettings
    workspace: Workspace
    config: WorkspaceConfig
    store: Store
    signer: LinkSigner
    writer: EventWriter
    pages: Pages
    csrf: Csrf
    post_limit: RateLimiter
    api_limit: RateLimiter
    api_token: str | None

    def load(self, purpose: LinkPurpose, token: str) -> Any:
        try:
            return self.signer.load(purpose, token)
        except (BadData, UnicodeError, ValueError, TypeError) as exc:
            raise InvalidToken from exc

    async def hit(self, event: Event) -> None:
        """Store the event of a hit; the answer waits for its commit."""
        await self.writer.record(event)

    def now(self) -> Any:
        return clock.now()

    def client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    # ------------------------------------------------------------------ CSRF
    def csrf_cookie(self, request: Request) -> tuple[str, bool]:
        """The browser's CSRF cookie, or a new one (True: to set on the answer)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        if cookie and 16 <= len(cookie) <= 64:
            return cookie, False
        return self.csrf.new_cookie(), True

    def with_csrf_cookie(
        self, request: Request, response: Response, cookie: str, new: bool
    ) -> Response:
        if new:  # Secure when the browser came over HTTPS (the proxy says so)
            response.set_cookie(
                CSRF_COOKIE,
                cookie,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
        return response

    async def form_with_csrf(self, request: Request) -> Any:
        """The POSTed form, after the rate limit and the CSRF check (PostRefused if not)."""
        if not self.post_limit.allow(self.client(request)):
            raise PostRefused(429)
        form = await request.form(max_files=0, max_fields=1000, max_part_size=64 * 1024)
        if not self.csrf.check(
            request.cookies.get(CSRF_COOKIE), request.url.path, form.get(CSRF_FIELD)
        ):
            raise PostRefused(403)
        return form


class PostRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- tracking
async def open_pixel(request: Request) -> Response:
    web = _web(request)
    payload = web.load(LinkPurpose.OPEN, request.path_params["token"])
    await web.hit(Event(type=EventType.OPENED, message_id=payload["m"], at=web.now()))
    return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)


async def click(request: Request) -> Response:
    web = _web(request)
    payload = web.load(LinkPurpose.CLICK, request.path_params["token"])
    target = payload.get("u") if isinstance(payload, dict) else None
    if not isinstance(target, str) or not target.lower().startswith(("https://", "http://")):
        raise InvalidToken
    await web.hit(
        Event(type=EventType.CLICKED, message_id=payload["m"], at=web.now(), data={"url": target})
    )
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


async def short_link(request: Request) -> Response:
    web = _web(request)
    try:
        target = web.signer.resolve_short(request.path_params["code"])
    except ShortLinkError as exc:
        raise InvalidToken from exc
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


async def assets(request: Request) -> Response:
    name = request.path_params["name"]
    body = _web(request).pages.asset(name)
    if body is None:
        return _web(request).pages.error(404)
    return Response(body, media_type="text/css", headers={"cache-control": "public, max-age=86400"})


async def health(request: Request) -> Response:
    return Response("ok\n", media_type="text/plain")


# ---------------------------------------------------------------------- errors
async def _invalid_token(request: Request, exc: Exception) -> Response:
    return _web(request).pages.error(404)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PostRefused)
    web = _web(request)
    response = web.pages.error(exc.status)
    if exc.status == 429:
        response.headers["retry-after"] = str(web.post_limit.retry_after())
    return response


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return _web(request).pages.error(status if 400 <= status < 500 else 404)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("error answering %s %s: %s", request.method, _redacted(request.url.path), exc)
    return _web(request).pages.error(503)


def _redacted(path: str) -> str:
    """A path without its token: logs never hold one."""
    parts = path.split("/")
    return "/".join([*parts[:2], "…"] if len(parts) > 2 else parts)


def _routes() -> list[Route]:
    from campaignctl.web import api, questionnaire, unsubscribe

    return [
        Route("/o/{token}", open_pixel, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/q/{code}", short_link, methods=["GET"]),
        Route("/u/{token}", unsubscribe.page, methods=["GET"]),
        Route("/u/{token}", unsubscribe.opt_out, methods=["POST"]),
        Route("/p/{token}", unsubscribe.preferences, methods=["GET", "POST"]),
        Route("/f/{token}", questionnaire.form, methods=["GET", "POST"]),
        Route("/s/{token}", questionnaire.space, methods=["GET"]),
        Route("/api/events", api.events, methods=["POST"]),
        Route("/assets/{name}", assets, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]


def create_app(settings: ServeSettings) -> Starlette:
    """The app for one worker process: loads the workspace, opens the store, checks the
    secret (the development one only with `settings.dev`)."""
    import os

    from campaignctl.errors import SpecError, UsageError
    from campaignctl.spec.workspace import load_workspace

    workspace = load_workspace(settings.workspace_root, template_cache=True)
    config = workspace.config
    if config is None:
        raise SpecError(workspace.errors)
    if config.tracking is None:
        raise UsageError(
            "campaignctl.yaml has no `tracking:`: serve answers the links it describes",
            hint="add `tracking: {base_url: https://..., secret_env: CAMPAIGNCTL_SECRET}`",
        )
    secret = serve_secret(config.tracking, dev=settings.dev)
    store = Store(settings.store_url, root=workspace.root)
    store.ensure_schema()
    writer = EventWriter(store, region=config.phone_region, batch_max=settings.batch_max)
    web = Web(
        settings=settings,
        workspace=workspace,
        config=config,
        store=store,
        signer=LinkSigner(config.tracking, secret.value),
        writer=writer,
        pages=Pages(config),
        csrf=Csrf(secret.value),
        post_limit=RateLimiter(settings.posts_per_minute),
        api_limit=RateLimiter(settings.api_posts_per_minute),
        api_token=os.environ.get(config.tracking.api_token_env) or None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await writer.start()
        try:
            yield
        finally:
            await writer.stop()
            store.close()

    app = Starlette(
        routes=_routes(),
        exception_handlers={
            InvalidToken: _invalid_token,
            PostRefused: _refused,
            404: _not_found,
            405: _not_found,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.web = web
    app.add_middleware(
        SecurityMiddleware,
        max_body=settings.max_body_bytes,
        api_max_body=settings.api_max_body_bytes,
    )
    return app


def app_from_environment() -> Starlette:
    """uvicorn's factory in each worker of `serve --workers N` (settings from the env)."""
    return create_app(ServeSettings.from_environment())
