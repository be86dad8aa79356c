"""The information campaigns of a partner space (`/s/TOKEN`, DESIGN.md §4, seed 003), and
the signing form of their `to_sign` documents (`POST /s/TOKEN/sign`).

The space shows, for the records of its link, the information campaigns they were
enrolled in and the `space_visited` ones they enter by this visit
(`automation.information.space_view`): the organisation's logo, each campaign's own logo
(`logo:`), its dashboard message, its documents by typology, each downloaded through `/d/`
(confined to documents/), and for a `to_sign` document either the date it was signed or a
form to sign it. Signing is a `document_signed` event per record of the link, stored before
the answer, with the SHA-256 of the file signed (who: the record; when: the event's time;
what: the hash).
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from campaignctl.automation.information import SpaceCampaign, signatures, space_view
from campaignctl.errors import SpecError
from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose
from campaignctl.render.signing import signed_copy
from campaignctl.spec.files import DOCUMENTS_DIR, LOGO_MAX_BYTES
from campaignctl.spec.models import EventType
from campaignctl.web import queries
from campaignctl.web.context import InvalidToken, Web, _web
from campaignctl.web.security import CSRF_FIELD


@dataclass(frozen=True)
class SpaceRecords:
    keys: list[str]
    ids: list[int]


def logo_src(web: Web, campaign: SpaceCampaign | None = None) -> str | None:
    """A logo as the page shows it (read once per worker): the organisation's (its https://
    URL, or its file under documents/), or with `campaign`, that campaign's applied `logo:`
    (a file under documents/, named from there), the files as data: URIs."""
    cache = web.__dict__.setdefault("_logo", {})
    key = (campaign.campaign, campaign.logo) if campaign else None
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    if campaign is None:
        logo = web.config.organization.logo
        at: tuple[Any, ...] = (None, None, "organization", "logo")
        base = ""
    else:
        logo = campaign.logo
        at, base = ("Campaign", campaign.campaign, "logo"), DOCUMENTS_DIR
    src = None
    if logo and logo.startswith("https://") and campaign is None:
        src = logo
    elif logo:
        try:
            path = web.workspace.confined_file(logo, DOCUMENTS_DIR, "logo", at, base=base)
            data = path.read_bytes() if path.is_file() else b""
        except (SpecError, OSError):
            data = b""
        kind = mimetypes.guess_type(logo)[0] or ""
        if data and len(data) <= LOGO_MAX_BYTES and kind.startswith("image/"):
            src = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    cache[key] = src
    return src


def _document_path(web: Web, campaign: str, document: str) -> Path:
    spec = web.workspace.campaigns.get(campaign)
    index = next(
        (i for i, d in enumerate(spec.documents) if d.path == document) if spec else iter(()),
        None,
    )
    if spec is None or index is None:
        raise InvalidToken
    try:
        at = ("Campaign", campaign, "documents", index, "path")
        path = web.workspace.confined_file(
            document, DOCUMENTS_DIR, "document", at, base=DOCUMENTS_DIR
        )
    except SpecError as exc:
        raise InvalidToken from exc
    if not path.is_file():
        raise InvalidToken
    if spec.documents[index].sign and web.config.signing is not None:
        # the organisation-signed copy /d/ serves: the hash is of what the partner read
        path = signed_copy(path, web.config.signing, web.workspace.root)
    return path


def _view(
    web: Web, records: SpaceRecords
) -> tuple[list[SpaceCampaign], dict[tuple[str, str], Any]]:
    with web.store.read() as conn:
        shown = space_view(conn, web.workspace, records.ids, web.now())
        zone = ZoneInfo(web.config.timezone)
        signed = {
            (s.campaign, s.document): (
                s.at if s.at.tzinfo else s.at.replace(tzinfo=UTC)
            ).astimezone(zone)
            for s in signatures(conn, records.ids)
        }
    return shown, signed


async def section(web: Web, request: Request, records: SpaceRecords) -> dict[str, Any]:
    """The template context of the space's information campaigns (`space_information`)."""
    shown, signed = await run_in_threadpool(_view, web, records)
    token = request.path_params["token"]
    campaigns = []
    for campaign in shown:
        typologies = []
        for typology, docs in campaign.documents.items():
            items = []
            for d in docs:
                link = web.signer.url(
                    LinkPurpose.DOCUMENT, {"c": campaign.campaign, "r": records.keys, "d": d.path}
                ).removeprefix(web.signer.base_url)
                items.append(
                    {
                        "label": d.label,
                        "link": link,
                        "to_sign": d.to_sign,
                        "path": d.path,
                        "signed_at": signed.get((campaign.campaign, d.path)),
                    }
                )
            typologies.append((typology, items))
        campaigns.append(
            {
                "name": campaign.campaign,
                "title": campaign.description or campaign.campaign,
                "message": campaign.dashboard_message,
                "logo": logo_src(web, campaign) if campaign.logo else None,
                "typologies": typologies,
            }
        )
    cookie, new = web.csrf_cookie(request)
    return {
        "information": campaigns,
        "logo": logo_src(web) if campaigns else None,
        "sign_action": f"/s/{token}/sign",
        "csrf_field": CSRF_FIELD,
        "csrf_token": web.csrf.token(cookie, f"/s/{token}/sign"),
        "_csrf_cookie": (cookie, new),
    }


def space_records(web: Web, payload: Any, audience: str | None) -> SpaceRecords:
    keys = payload.get("r") if isinstance(payload, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise InvalidToken
    records = queries.records_by_keys(web.store, keys, audience)
    if not records:
        raise InvalidToken
    return SpaceRecords([r.key for r in records], [r.id for r in records])


async def sign(request: Request) -> Response:
    """`POST /s/TOKEN/sign`: the records of the link sign a `to_sign` document of an
    information campaign their space shows; one `document_signed` event per record."""
    web = _web(request)
    token = request.path_params["token"]
    payload = web.load(LinkPurpose.SPACE, token)
    form = await web.form_with_csrf(request)
    campaign, document = form.get("campaign"), form.get("document")
    if not isinstance(campaign, str) or not isinstance(document, str):
        raise InvalidToken
    linked = web.workspace.campaigns.get(payload.get("c")) if isinstance(payload, dict) else None
    audience = _campaign_audience(web, linked)
    records = await run_in_threadpool(space_records, web, payload, audience)
    shown, signed = await run_in_threadpool(_view, web, records)
    offered = next((c for c in shown if c.campaign == campaign), None)
    spec_doc = offered.document(document) if offered is not None else None
    if spec_doc is None or not spec_doc.to_sign:
        raise InvalidToken  # not (or no longer) offered to sign in this space
    if (campaign, document) not in signed:
        path = await run_in_threadpool(_document_path, web, campaign, document)
        digest = await run_in_threadpool(_sha256, path)
        for key in records.keys:
            await web.hit(
                Event(
                    type=EventType.DOCUMENT_SIGNED,
                    campaign=campaign,
                    record=key,
                    at=web.now(),
                    data={"document": document, "sha256": digest},
                )
            )
    return web.pages.html(
        "message.html",
        title="Document signé",
        text=f"Merci : « {spec_doc.label} » est signé. {web.config.organization.name} en "
        "garde la trace (date et empreinte du document).",
        link=f"/s/{token}",
        link_text="Revenir à mon espace",
    )


def _campaign_audience(web: Web, campaign: Any) -> str | None:
    if campaign is None:
        return None
    for name in campaign.audience.segments:
        segment = web.workspace.segments.get(name)
        if segment is not None:
            return segment.audience
    return None


def campaign_audience(web: Web, name: Any) -> str | None:
    """The audience of the campaign a space link names (None: any)."""
    return _campaign_audience(
        web, web.workspace.campaigns.get(name) if isinstance(name, str) else None
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
