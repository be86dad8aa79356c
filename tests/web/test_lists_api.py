"""`POST /api/lists/NAME` of `serve` on a real port, on SQLite and PostgreSQL: members
added and removed by key with the bearer token, unknown keys counted and named, the
change seen by `list show` (source `api`) and by a `list_added` automation's next pass."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from campaignctl.cli.main import app
from tests.web.conftest import API_TOKEN, Server, cli

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
LIST = "nouveaux-adherents"


def test_list_members_are_added_and_removed_through_the_api(server: Server) -> None:
    url = f"{server.base}/api/lists/{LIST}"
    body = {"add": ["ACT-001", "ACT-002", "NOPE-9"]}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"authorization": "Bearer no"}).status_code == 401
    added = httpx.post(url, json=body, headers=AUTH)
    assert added.status_code == 200, added.text
    assert added.json() == {
        "format_version": 1,
        "list": LIST,
        "add": {"format_version": 1, "list": LIST, "audience": "providers", "action": "add",
                "changed": 2, "unchanged": 0, "unknown_keys": ["NOPE-9"]},
    }  # fmt: skip
    both = httpx.post(url, json={"add": ["ACT-002"], "remove": ["ACT-001"]}, headers=AUTH)
    assert both.status_code == 200, both.text
    assert (both.json()["add"]["unchanged"], both.json()["remove"]["changed"]) == (1, 1)

    shown = cli(server.sent.root, "list", "show", LIST, "--json")
    assert shown.exit_code == 0, shown.output
    members = json.loads(shown.stdout)["members"]
    assert [(m["key"], m["source"]) for m in members] == [("ACT-002", "api")]

    # the list_added automation of the demo welcomes the member the API added
    for args in (["apply", "bienvenue-adherents", "--auto-approve"], ["scheduler", "tick"]):
        result = CliRunner().invoke(app, ["--workspace", str(server.sent.root), *args],
                                    env={"CAMPAIGNCTL_NOW": "2027-01-05T10:00:00+01:00"})  # fmt: skip
        assert result.exit_code in (0, 1), result.output
    assert "; automations: 1 active, 1 enrolled, " in result.stderr, result.stderr


def test_the_lists_api_refuses_an_unknown_list_and_a_bad_body(server: Server) -> None:
    unknown = httpx.post(f"{server.base}/api/lists/nope", json={"add": ["A"]}, headers=AUTH)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "list 'nope' is not defined"})
    url = f"{server.base}/api/lists/{LIST}"
    for body in (b"not json", b"[]", b'{"add": "ACT-001"}', b'{"drop": ["ACT-001"]}', b"{}",
                 b'{"add": [1]}'):  # fmt: skip
        answer = httpx.post(url, content=body, headers=AUTH)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"].startswith('the body is a JSON object {"add": [KEY, …]')
    assert server.sent.query("SELECT COUNT(*) FROM list_member") == [(0,)]
