"""What every request handler shares: the `Web` state of a worker, and the errors the app
turns into pages (a bad token, a refused POST). Below `app` and the handlers, which both
import it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData
from starlette.requests import Request
from starlette.responses import Response

from campaignctl import clock
from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose, LinkSigner
from campaignctl.spec.models import WorkspaceConfig
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.web.pages import Pages
from campaignctl.web.security import CSRF_COOKIE, CSRF_FIELD, Csrf, RateLimiter
from campaignctl.web.settings import ServeSettings
from campaignctl.web.writer import EventWriter


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

    async def hits(self, events: Iterable[Event]) -> None:
        """Store the events of one hit (in one transaction); the answer waits for it."""
        await asyncio.gather(*(self.writer.record(event) for event in events))

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
