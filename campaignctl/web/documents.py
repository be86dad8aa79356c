"""`/d/TOKEN`: the documents a campaign offers a record (`links.documents`,
`links.document_list`).

A token naming one document (`d`) downloads it, if the campaign still offers it and
the file is still inside documents/ (a link changed since `validate` is refused as
everywhere else); a token without one lists the campaign's documents by typology.
A download is a `clicked` event of the record (`data.document`), stored first.
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from campaignctl.errors import SpecError
from campaignctl.events.model import Event
from campaignctl.render.links import LinkPurpose
from campaignctl.render.signing import signed_copy
from campaignctl.spec.files import DOCUMENTS_DIR
from campaignctl.spec.models import EventType
from campaignctl.web.context import InvalidToken, _web


async def documents(request: Request) -> Response:
    web = _web(request)
    token = request.path_params["token"]
    payload = web.load(LinkPurpose.DOCUMENT, token)
    keys = payload.get("r") if isinstance(payload, dict) else None
    campaign = web.workspace.campaigns.get(payload.get("c")) if isinstance(payload, dict) else None
    if campaign is None or not isinstance(keys, list) or not keys:
        raise InvalidToken
    wanted = payload.get("d")
    if wanted is None:
        by_typology: dict[str, list[dict[str, object]]] = {}
        for document in campaign.documents:
            link = web.signer.url(
                LinkPurpose.DOCUMENT, {"c": campaign.name, "r": keys, "d": document.path}
            )
            by_typology.setdefault(document.typology, []).append(
                {
                    "label": document.label or Path(document.path).name,
                    "link": link.removeprefix(web.signer.base_url),
                    "to_sign": document.to_sign,
                }
            )
        return web.pages.html(
            "documents.html",
            title="Vos documents",
            campaign=campaign.description or campaign.name,
            typologies=sorted(by_typology.items()),
        )
    index = next((i for i, d in enumerate(campaign.documents) if d.path == wanted), None)
    if index is None:
        raise InvalidToken  # no longer offered
    try:
        path = web.workspace.confined_file(
            wanted,
            DOCUMENTS_DIR,
            "document",
            ("Campaign", campaign.name, "documents", index, "path"),
            base=DOCUMENTS_DIR,
        )
    except SpecError as exc:
        raise InvalidToken from exc
    if not path.is_file():
        raise InvalidToken
    if campaign.documents[index].sign and web.config.signing is not None:  # seed 003
        path = await run_in_threadpool(signed_copy, path, web.config.signing, web.workspace.root)
    await web.hit(
        Event(
            type=EventType.CLICKED,
            campaign=campaign.name,
            record=keys[0],
            at=web.now(),
            data={"document": wanted},
        )
    )
    return FileResponse(
        path,
        filename=Path(wanted).name,
        content_disposition_type="attachment",
        headers={"cache-control": "no-store, private"},
    )
