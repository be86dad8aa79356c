"""`/f/TOKEN` questionnaire form and `/s/TOKEN` personal space."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaignctl.web.app import _web


async def form(request: Request) -> Response:
    return _web(request).pages.error(404)


async def space(request: Request) -> Response:
    return _web(request).pages.error(404)
