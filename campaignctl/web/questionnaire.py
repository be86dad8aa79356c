"""`/f/TOKEN` questionnaire form of one record, and `/s/TOKEN` personal space of an address.

The form shows the fields the campaign asks this record (its category's, `only_for`),
prefilled with the record's values when the campaign says `prefill` (periods
shifted a year with `periods_mode: next_year`), or with the answers already given
while they are still to process: the recipient may correct them until the office
processes them. Opening it is a `form_opened` event; a valid submit is a
`form_submitted` event with the answers in `data`, which makes the response to
process (events/responses.py). Both are stored before the page is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose
from campaignctl.render.questionnaire import QuestionField, QuestionnairePlan
from campaignctl.spec.models import Campaign, EventType
from campaignctl.web import answers as form_answers
from campaignctl.web import information, queries
from campaignctl.web.context import InvalidToken, Web, _web
from campaignctl.web.security import CSRF_FIELD

PROCESSED = ("accepted", "rejected")


@dataclass
class _Asked:
    campaign: Campaign
    plan: QuestionnairePlan
    audience: str | None


def _asked(web: Web, name: Any) -> _Asked:
    """The campaign a link names and its questionnaire (built once per worker)."""
    cache: dict[str, _Asked] = web.__dict__.setdefault("_asked", {})
    if not isinstance(name, str):
        raise InvalidToken
    if name in cache:
        return cache[name]
    workspace = web.workspace
    campaign = workspace.campaigns.get(name)
    if campaign is None or campaign.questionnaire is None:
        raise InvalidToken  # the link outlived its campaign: nothing to show
    questionnaire = workspace.questionnaires.get(campaign.questionnaire.ref)
    audience = None
    for segment_name in campaign.audience.segments:
        segment = workspace.segments.get(segment_name)
        if segment is not None:
            audience = workspace.audiences.get(segment.audience)
            break
    plan = QuestionnairePlan(
        questionnaire,
        campaign.questionnaire,
        audience,
        campaign.options,
        workspace.record_columns(audience) if audience else None,
    )
    cache[name] = _Asked(campaign, plan, audience.name if audience else None)
    return cache[name]


def _title(asked: _Asked) -> str:
    return asked.plan.title or asked.campaign.description or "Votre fiche"


async def form(request: Request) -> Response:
    web = _web(request)
    payload = web.load(LinkPurpose.FORM, request.path_params["token"])
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), str):
        raise InvalidToken
    asked = _asked(web, payload.get("c"))
    key = payload["r"]
    records = await run_in_threadpool(queries.records_by_keys, web.store, [key], asked.audience)
    if not records:
        raise InvalidToken  # the record is gone (forgotten): nothing to show
    record = records[0]
    fields: list[QuestionField] = asked.plan.fields_for(record.category, record.attributes)
    latest = await run_in_threadpool(
        queries.latest_response, web.store, asked.campaign.name, record.id
    )
    if latest is not None and latest[0] in PROCESSED:
        return web.pages.error(409)
    event = {"campaign": asked.campaign.name, "record": key, "at": web.now()}
    cookie, new = web.csrf_cookie(request)
    context = {
        "title": _title(asked),
        "record_name": record.attributes.get("name") or key,
        "csrf_field": CSRF_FIELD,
        "csrf_token": web.csrf.token(cookie, request.url.path),
        "answered": latest is not None,
    }
    if request.method == "POST":
        submitted = await web.form_with_csrf(request)
        answers, shown = form_answers.read(fields, submitted, web.config.phone_region)
        errors = [v for v in shown if v.error]
        if errors:
            response = web.pages.html("form.html", 400, fields=shown, errors=errors, **context)
            return web.with_csrf_cookie(request, response, cookie, new)
        await web.hit(Event(type=EventType.FORM_SUBMITTED, data=answers, **event))
        return web.pages.html(
            "message.html",
            title="Merci, vos réponses sont enregistrées",
            text=(
                f"Vos réponses pour « {context['record_name']} » sont transmises à "
                f"{web.config.organization.name}. Vous pouvez les corriger en revenant sur "
                "ce lien tant que l'équipe ne les a pas traitées."
            ),
            link=request.url.path,
            link_text="Revoir mes réponses",
        )
    await web.hit(Event(type=EventType.FORM_OPENED, **event))
    values = latest[1] if latest is not None else None
    shown = form_answers.views(fields, values)
    response = web.pages.html("form.html", fields=shown, errors=[], **context)
    return web.with_csrf_cookie(request, response, cookie, new)


async def space(request: Request) -> Response:
    web = _web(request)
    payload = web.load(LinkPurpose.SPACE, request.path_params["token"])
    keys = payload.get("r") if isinstance(payload, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise InvalidToken
    linked = web.workspace.campaigns.get(payload.get("c"))
    if linked is None:
        raise InvalidToken
    # a questionnaire campaign's link lists the forms; another's (an information notice)
    # shows the records and their information campaigns only
    asked = _asked(web, linked.name) if linked.questionnaire is not None else None
    audience = asked.audience if asked else information.campaign_audience(web, linked.name)
    records = await run_in_threadpool(queries.records_by_keys, web.store, keys, audience)
    if not records:
        raise InvalidToken
    done = (
        await run_in_threadpool(queries.answered, web.store, linked.name, [r.id for r in records])
        if asked
        else set()
    )
    wave = payload.get("w", 1)
    rows = [
        {
            "name": r.attributes.get("name") or r.key,
            "place": r.attributes.get("commune") or "",
            "answered": r.id in done,
            "link": web.signer.url(
                LinkPurpose.FORM, {"c": linked.name, "r": r.key, "w": wave}
            ).removeprefix(web.signer.base_url)
            if asked
            else None,
        }
        for r in records
    ]
    shown = information.SpaceRecords([r.key for r in records], [r.id for r in records])
    info = await information.section(web, request, shown)
    cookie, new = info.pop("_csrf_cookie")
    title = _title(asked) if asked else (linked.description or linked.name)
    response = web.pages.html("space.html", title="Mon espace", rows=rows, campaign=title, **info)
    return web.with_csrf_cookie(request, response, cookie, new)
