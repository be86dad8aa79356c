"""`POST /api/events`: the JSON lines of `events ingest`, over HTTP; `POST /api/lists/NAME`:
members added to or removed from a `kind: List`.

The bearer token is read from the environment variable `tracking.api_token_env`
names (no variable set: the API answers 404, as if absent). Calls are rate-limited
per client IP. The answer is the `events ingest --json` summary of the lines.
"""

from __future__ import annotations

import hmac
import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from campaignctl.automation.lists import change_members
from campaignctl.events.model import LineProblem, numbered_lines, read_event
from campaignctl.events.record import IngestSummary
from campaignctl.web.context import Web, _web

LIST_KEYS_MAX = 10_000  # per call: larger changes go through `campaignctl list add`


def refused(web: Web, request: Request) -> Response | None:
    """The answer to an API call without the bearer token, or over the rate limit; None
    when it may go on. No token configured: 404, as if the API were absent."""
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
    return None


async def events(request: Request) -> Response:
    web = _web(request)
    if (refusal := refused(web, request)) is not None:
        return refusal
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


async def list_members(request: Request) -> Response:
    """`POST /api/lists/NAME` with `{"add": [KEY…], "remove": [KEY…]}`: the members of a
    `kind: List` change as with `campaignctl list add/remove` (source `api`); the answer
    counts, per action, the keys changed, unchanged and unknown (named, never dropped)."""
    web = _web(request)
    if (refusal := refused(web, request)) is not None:
        return refusal
    name = request.path_params["name"]
    if name not in web.workspace.lists:
        return JSONResponse({"error": f"list {name!r} is not defined"}, status_code=404)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    actions = {a: body.get(a, []) for a in ("add", "remove")} if isinstance(body, dict) else {}
    valid = (
        isinstance(body, dict)
        and set(body) <= {"add", "remove"}
        and any(actions.values())
        and all(
            isinstance(v, list) and all(isinstance(k, str) for k in v) for v in actions.values()
        )
        and sum(len(v) for v in actions.values()) <= LIST_KEYS_MAX
    )
    if not valid:
        return JSONResponse(
            {"error": 'the body is a JSON object {"add": [KEY, …], "remove": [KEY, …]} '
                      f"(strings, {LIST_KEYS_MAX} keys at most)"},
            status_code=400,
        )  # fmt: skip
    answer: dict[str, object] = {"format_version": 1, "list": name}
    for action, keys in actions.items():
        if keys:
            change = await run_in_threadpool(
                change_members, web.store, web.workspace, name, keys,
                add=action == "add", source="api", now=web.now(),
            )  # fmt: skip
            answer[action] = change.as_json()
    return JSONResponse(answer)
