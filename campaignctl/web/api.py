"""`POST /api/events`: the JSON lines of `events ingest`, over HTTP.

The bearer token is read from the environment variable `tracking.api_token_env`
names (no variable set: the API answers 404, as if absent). Calls are rate-limited
per client IP. The answer is the `events ingest --json` summary of the lines.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from campaignctl.events.model import LineProblem, numbered_lines, read_event
from campaignctl.events.record import IngestSummary
from campaignctl.web.context import _web


async def events(request: Request) -> Response:
    web = _web(request)
    if web.api_token is None:
        return web.pages.error(404)
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), web.api_token.encode()
    ):
        return JSONResponse(
            {"error": "a bearer token is required"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="campaignctl"'},
        )
    if not web.api_limit.allow(web.client(request)):
        return JSONResponse(
            {"error": "rate limited"},
            status_code=429,
            headers={"retry-after": str(web.api_limit.retry_after())},
        )
    import io

    body = await request.body()
    summary = IngestSummary()
    items = []
    for number, raw in numbered_lines(io.BytesIO(body)):
        item = read_event(number, raw)
        if item is None:
            continue
        summary.read += 1
        if isinstance(item, LineProblem):
            summary.refuse(item)
        else:
            items.append(item)
    if items:
        summary.add(await web.writer.ingest(items))
    status = 400 if summary.read and summary.bad_lines == summary.read else 200
    return JSONResponse(summary.as_json(), status_code=status)
