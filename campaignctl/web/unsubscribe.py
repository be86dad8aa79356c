"""`/u/TOKEN` unsubscribe and `/p/TOKEN` preference centre.

A GET of `/u/TOKEN` only asks (mail scanners follow links: a GET never opts out);
the POST of its form (with its CSRF token) opts out. A POST whose body is
`List-Unsubscribe=One-Click` (RFC 8058, sent by mail providers without cookies) opts
out at once. An opt-out is an `unsubscribed` event, stored before the answer: the
event writer adds the suppression for the category.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose
from campaignctl.spec.models import EventType
from campaignctl.web import queries
from campaignctl.web.context import InvalidToken, PostRefused, Web, _web
from campaignctl.web.security import CSRF_FIELD

ONE_CLICK = "One-Click"


def masked(address: str | None) -> str:
    """j…@example.org: enough for the recipient to recognise, little for anyone else."""
    if not address or "@" not in address:
        return "votre adresse"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _keys(payload: Any) -> list[str]:
    keys = payload.get("r") if isinstance(payload, dict) else None
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise InvalidToken
    return keys


def _label(web: Web, category: str | None) -> str:
    settings = web.config.categories.get(category or "")
    return (settings.label if settings and settings.label else category) or "tous nos messages"


async def _address(web: Web, keys: list[str]) -> str | None:
    records = await run_in_threadpool(queries.records_by_keys, web.store, keys)
    return next((r.email for r in records if r.email), None)


async def page(request: Request) -> Response:
    web = _web(request)
    token = request.path_params["token"]
    payload = web.load(LinkPurpose.UNSUBSCRIBE, token)
    keys = _keys(payload)
    address = await _address(web, keys)
    cookie, new = web.csrf_cookie(request)
    response = web.pages.html(
        "unsubscribe.html",
        title="Se désinscrire",
        address=masked(address),
        category=_label(web, payload.get("k")),
        csrf_field=CSRF_FIELD,
        csrf_token=web.csrf.token(cookie, request.url.path),
    )
    return web.with_csrf_cookie(request, response, cookie, new)


async def opt_out(request: Request) -> Response:
    web = _web(request)
    token = request.path_params["token"]
    payload = web.load(LinkPurpose.UNSUBSCRIBE, token)
    keys = _keys(payload)
    one_click = False
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        one_click = body.strip() == b"List-Unsubscribe=One-Click"
    if one_click:  # RFC 8058: no cookie, no CSRF token; rate-limited as the API is
        if not web.api_limit.allow(web.client(request)):
            raise PostRefused(429)
    else:
        await web.form_with_csrf(request)
    address = await _address(web, keys)
    category = payload.get("k")
    await web.hit(
        Event(
            type=EventType.UNSUBSCRIBED,
            campaign=payload.get("c"),
            record=keys[0],
            address=address,
            at=web.now(),
            data={"category": category, "via": "one-click" if one_click else "page"},
        )
    )
    preferences = web.signer.url(LinkPurpose.PREFERENCES, {"r": keys})
    return web.pages.html(
        "message.html",
        title="Vous êtes désinscrit",
        text=f"{masked(address)} ne recevra plus les messages « {_label(web, category)} ».",
        link=preferences.removeprefix(web.signer.base_url),
        link_text="Gérer mes autres abonnements",
    )


async def preferences(request: Request) -> Response:
    web = _web(request)
    payload = web.load(LinkPurpose.PREFERENCES, request.path_params["token"])
    keys = _keys(payload)
    address = await _address(web, keys)
    saved = False
    if request.method == "POST":
        form = await web.form_with_csrf(request)
        if address:
            await _save_preferences(web, address, keys, set(form.getlist("category")))
        saved = True
    categories: list[dict[str, Any]] = []
    blocked = None
    if address:
        off, blocked = await run_in_threadpool(queries.suppressed_categories, web.store, address)
        categories = [
            {"name": name, "label": settings.label or name, "on": name not in off}
            for name, settings in web.config.categories.items()
            if settings.unsubscribe
        ]
    cookie, new = web.csrf_cookie(request)
    response = web.pages.html(
        "preferences.html",
        title="Mes abonnements",
        address=masked(address),
        categories=categories,
        blocked=blocked,
        saved=saved,
        csrf_field=CSRF_FIELD,
        csrf_token=web.csrf.token(cookie, request.url.path),
    )
    return web.with_csrf_cookie(request, response, cookie, new)


async def _save_preferences(web: Web, address: str, keys: list[str], wanted: set[str]) -> None:
    allowed = [n for n, s in web.config.categories.items() if s.unsubscribe]
    off, _ = await run_in_threadpool(queries.suppressed_categories, web.store, address)
    for name in allowed:
        if name not in wanted and name not in off:
            await web.hit(
                Event(
                    type=EventType.UNSUBSCRIBED,
                    address=address,
                    at=web.now(),
                    data={"category": name, "via": "preferences"},
                )
            )
    back = [n for n in allowed if n in wanted and n in off]
    if back:
        await run_in_threadpool(queries.resubscribe, web.store, address, back, "preference centre")
