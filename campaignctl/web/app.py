"""The ASGI app `campaignctl serve` runs (DESIGN.md §4): `create_app(settings)`.

Routes (all under `tracking.base_url`), each checking a token signed for its purpose
only (`render.links.LinkSigner`, the signer that made the links):

- `/o/TOKEN` open pixel, `/c/TOKEN` click redirect to the URL the message held;
- `/u/TOKEN` unsubscribe (GET asks, POST opts out; RFC 8058 one-click POST at once);
- `/p/TOKEN` preference centre, per category;
- `/f/TOKEN` questionnaire form, `/s/TOKEN` personal space (with its information
  campaigns; `POST /s/TOKEN/sign` signs a `to_sign` document), `/q/CODE` short links;
- `/d/TOKEN` the documents a campaign offers (a list, or one file);
- `POST /api/events` JSON lines of `events ingest`, and `POST /api/lists/NAME` list
  members to add or remove, with a bearer token.

Every hit is an event stored (web/writer.py) before the answer is sent. A tampered,
expired or foreign token gets the same 404 page, with no detail.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from campaignctl.errors import SpecError, UsageError
from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose, LinkSigner, ShortLinkError
from campaignctl.spec.models import EventType
from campaignctl.spec.workspace import load_workspace
from campaignctl.store.store import Store
from campaignctl.web import api, documents, information, questionnaire, unsubscribe
from campaignctl.web.context import InvalidToken, PostRefused, Web, _web
from campaignctl.web.pages import Pages
from campaignctl.web.security import Csrf, RateLimiter, SecurityMiddleware, image_origins
from campaignctl.web.settings import ServeSettings, serve_secret
from campaignctl.web.writer import EventWriter

log = logging.getLogger("campaignctl.web")

# A transparent 1×1 GIF: the open pixel.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
NO_STORE = {"cache-control": "no-store, private"}


# ---------------------------------------------------------------------- tracking
async def refused_hit(request: Request) -> Response:
    """`/o/` and `/c/` reach the app only when TrackingFastPath refused their token."""
    raise InvalidToken


async def short_link(request: Request) -> Response:
    """An SMS short link: a `clicked` event per record it names (the SMS of the campaign
    that reached the record, found as for `events ingest`), then the redirect."""
    web = _web(request)
    try:
        purpose, payload = web.signer.load_short(request.path_params["code"])
    except ShortLinkError as exc:
        raise InvalidToken from exc
    target = web.signer.url(purpose, payload)
    keys = payload["r"] if isinstance(payload["r"], list) else [payload["r"]]
    at = web.now()
    await web.hits(
        Event(
            type=EventType.CLICKED,
            campaign=payload["c"],
            record=key,
            at=at,
            data={"link": str(purpose), "short": True},
        )
        for key in keys
    )
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


class TrackingFastPath:
    """`GET /o/TOKEN` and `GET /c/TOKEN` answered in plain ASGI, before Starlette's routing,
    request objects and middleware: they are most of the traffic (every open, every
    click) and each must wait for its event's commit. Anything else (a bad token
    included, for its HTML page) goes to the app."""

    def __init__(self, app: ASGIApp, web: Web) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(("/o/", "/c/")) and path.count("/") == 2:
                answered = await self._track(path, send)
                if answered:
                    return
        await self.app(scope, receive, send)

    async def _track(self, path: str, send: Send) -> bool:
        web = self.web
        open_ = path[1] == "o"
        try:
            payload = web.load(LinkPurpose.OPEN if open_ else LinkPurpose.CLICK, path[3:])
            message_id = payload["m"]
            target = None if open_ else payload["u"]
        except (InvalidToken, KeyError, TypeError):
            return False
        if not isinstance(message_id, str) or not (
            open_ or (isinstance(target, str) and target.lower().startswith(_WEB_SCHEMES))
        ):
            return False
        try:
            if open_:
                await web.writer.track(EventType.OPENED, message_id)
            else:
                await web.writer.track(EventType.CLICKED, message_id, target)
        except Exception as exc:  # not stored: not answered as if it were
            log.error("event not stored (%s): %s", path[:3], type(exc).__name__)
            await _answer(send, 503, [(b"content-type", b"text/plain")], b"retry later\n")
            return True
        if open_:
            await _answer(send, 200, _PIXEL_HEADERS, PIXEL_GIF)
        else:
            location = target.encode("latin-1", "replace")  # type: ignore[union-attr]
            await _answer(send, 302, [*_NO_STORE, (b"location", location)], b"")
        return True


_WEB_SCHEMES = ("https://", "http://")
_NO_STORE = [
    (b"cache-control", b"no-store, private"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_PIXEL_HEADERS = [*_NO_STORE, (b"content-type", b"image/gif")]


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _routes() -> list[Route]:
    return [
        Route("/o/{token}", refused_hit, methods=["GET"]),
        Route("/c/{token}", refused_hit, methods=["GET"]),
        Route("/q/{code}", short_link, methods=["GET"]),
        Route("/u/{token}", unsubscribe.page, methods=["GET"]),
        Route("/u/{token}", unsubscribe.opt_out, methods=["POST"]),
        Route("/p/{token}", unsubscribe.preferences, methods=["GET", "POST"]),
        Route("/f/{token}", questionnaire.form, methods=["GET", "POST"]),
        Route("/s/{token}", questionnaire.space, methods=["GET"]),
        Route("/s/{token}/sign", information.sign, methods=["POST"]),
        Route("/d/{token}", documents.documents, methods=["GET"]),
        Route("/api/events", api.events, methods=["POST"]),
        Route("/api/lists/{name}", api.list_members, methods=["POST"]),
        Route("/assets/{name}", assets, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]


def create_app(settings: ServeSettings) -> ASGIApp:
    """The app for one worker process: loads the workspace, opens the store, checks the
    secret (the development one only with `settings.dev`)."""
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
        images=image_origins(web.config.organization.logo),
    )
    return TrackingFastPath(app, web)  # type: ignore[return-value]


def app_from_environment() -> ASGIApp:
    """uvicorn's factory in each worker of `serve --workers N` (settings from the env)."""
    return create_app(ServeSettings.from_environment())
