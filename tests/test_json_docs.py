"""docs/json.md says what every `--json` output holds: the outputs the commands print on
the demo workspace carry exactly the keys it documents (and nested lists of objects
theirs), so the document cannot fall behind the code."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "json.md"
HEADING = re.compile(r"^## `campaignctl ([^`]+)`", re.M)
OPEN = "…"  # a documented structure that ends in `...` lists some of the keys only


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    return {
        m.group(1): text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
        for i, m in enumerate(found)
    }


def structure(text: str) -> str | None:
    """The first `{…}` of a section (in a code block or an inline code span)."""
    start = text.find("{")
    if start < 0:
        return None
    depth, quoted = 0, False
    for i in range(start, len(text)):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
            if depth == 0:
                return text[start : i + 1].replace("`", "")
    raise AssertionError(f"unbalanced structure in docs/json.md: {text[start : start + 80]!r}")


def keys(obj: str) -> dict[str, object]:
    """The keys of one documented object, `{a, "b": 1, c: [{d, e}], ...}` → {a, b, c: [{d, e}]}.
    A key maps to the keys of its items when its value is a list of objects, else None."""
    assert obj[0] == "{" and obj[-1] == "}", obj
    items, depth, quoted, current = [], 0, False, ""
    for c in obj[1:-1]:
        if c == '"':
            quoted = not quoted
        elif not quoted and c in "{[(":
            depth += 1
        elif not quoted and c in "}])":
            depth -= 1
        if c == "," and depth == 0 and not quoted:
            items.append(current)
            current = ""
        else:
            current += c
    items.append(current)
    out: dict[str, object] = {}
    for item in (i.strip() for i in items):
        if item in ("...", "…"):
            out[OPEN] = None
            continue
        item = re.sub(r"^\([^)]*\)\s*", "", item)  # a comment on the previous key
        m = re.match(r'"?([a-z_]+)"?\s*(?:\([^)]*\)\s*)?(?::\s*(.*))?$', item, re.S)
        if not m:
            continue  # a placeholder such as `IMPORT...` or prose
        value = (m.group(2) or "").strip()
        nested = re.match(r"\[\s*(\{.*\})\s*\]", value, re.S)
        out[m.group(1)] = keys(nested.group(1)) if nested else None
    return out


def prose_keys(text: str) -> dict[str, object] | None:
    """`format_version`, `key`, `records` (RECORDs), …: the backticked names outside
    parentheses of a section's first paragraph, when it is such a list."""
    paragraph = text.strip().split("\n\n")[0]
    if not paragraph.startswith("`format_version`"):
        return None
    return {name: None for name in re.findall(r"`([a-z_]+)`", _outside_parentheses(paragraph))}


def _outside_parentheses(text: str) -> str:
    out, depth = [], 0
    for c in text:
        depth += c == "("
        if depth == 0:
            out.append(c)
        depth -= c == ")" and depth > 0
    return "".join(out)


def documented(section: str) -> dict[str, object] | None:
    found = structure(section)
    return keys(found) if found else prose_keys(section)


def ndjson_types(section: str) -> dict[str, dict[str, object]]:
    """`- \\`type\\` (…): \\`key\\`, …` bullets: the keys of each NDJSON object type."""
    out = {}
    for line in section.splitlines():
        m = re.match(r"- `([a-z_]+)`(.*)$", line)
        if m:
            rest = _outside_parentheses(m.group(2)).split(":", 1)[1]
            names = re.findall(r"`([a-z_]+)`", rest)
            out[m.group(1)] = {name: None for name in names}
    return out


NOW = "2027-01-05T10:00:00+01:00"  # before the demo's first send_at: nothing is late yet
CAMPAIGN = "mise-a-jour-2027"
KEY = "HOT-003"


def run(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["--workspace", str(root), *args])
    assert result.exit_code == code, (args, result.output)
    return result.stdout


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def outputs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[dict[str, object]]]]:
    """Every documented command run once on a copy of the demo, in the README tour's order,
    on SQLite and on PostgreSQL: section heading -> the JSON objects it printed."""
    from backends import copy_demo, postgres_store_url

    root = copy_demo(tmp_path_factory.mktemp("json"))
    env = {"NO_COLOR": "1", "COLUMNS": "100", "CI": "1", "CAMPAIGNCTL_NOW": NOW}
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            env["CAMPAIGNCTL_STORE"] = stack.enter_context(postgres_store_url())
        yield _run_every_section(root, env)


def _run_every_section(root: Path, env: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("CAMPAIGNCTL_STORE", "CAMPAIGNCTL_WORKSPACE", "GITHUB_ACTIONS"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        out: dict[str, list[str]] = {}

        def save(heading: str, *args: str, code: int = 0) -> None:
            out.setdefault(heading, []).append(run(root, *args, code=code))

        save("validate --format json", "validate", "--format", "json")
        save("schema", "schema")
        save("audience import --json", "audience", "import", "--json")
        save("audience show --json", "audience", "show", KEY, "--json")
        save("audience show --json", "audience", "list", "--json")
        segment = ("segment", "show", "accommodation", "--sample", "2", "--sql", "--json")
        save("segment show --json", *segment)
        save("db status|upgrade --json", "db", "status", "--json")
        save("plan --json", "plan", "--json", "--show", "not-contacted")
        run(root, "plan", "--out", str(root / "plan.json"))
        save("show PLANFILE --json", "show", str(root / "plan.json"), "--json")
        save("apply --json", "apply", "--auto-approve", "--json")
        save("list add|remove --json", "list", "add", "a-appeler", KEY, "--json")
        save("campaign activate|deactivate --json", "campaign", "activate", "merci-mise-a-jour",
             "--json")  # fmt: skip
        save("lock --json", "lock", CAMPAIGN, "--json")
        save("send --json", "send", CAMPAIGN, "--now", "--json")
        events = root / "events.jsonl"
        lines = [
            {"type": "opened", "campaign": CAMPAIGN, "record": KEY, "at": NOW},
            {"type": "clicked", "message_id": "nobody@example.org", "at": NOW},
            {"type": "form_submitted", "campaign": CAMPAIGN, "record": KEY, "at": NOW,
             "data": {"answers": {"telephone": "06 11 22 33 44"}}},
        ]  # fmt: skip
        events.write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n", encoding="utf-8")
        save("events ingest --json", "events", "ingest", str(events), "--json")
        save("responses list|accept|reject --json", "responses", "list", "--json")
        save("responses show ID --json", "responses", "show", "1", "--json")
        save("responses list|accept|reject --json", "responses", "accept", "1", "--yes", "--json")
        run(root, "lock", "appel-cotisation-2027")
        push = ("export", "push", "appel-cotisation-2027", "--system", "crm-fichier", "--json")
        save("export push --json", *push)
        save("export status --json", "export", "status", "appel-cotisation-2027", "--json")
        save("report --format json", "report", "--format", "json")
        save("report --format json", "report", CAMPAIGN, "--format", "json")
        save("relaunch --json", "relaunch", CAMPAIGN, "--dry-run", "--json")
        calendar = ("calendar", "--from", "2027-01-01", "--to", "2027-12-31", "--json")
        save("calendar --json", *calendar)
        tick = ("scheduler", "tick", "--log-format", "json")
        save("scheduler tick|run --log-format json", *tick, code=1)  # 6 waves missed
        save("scheduler status --json", "scheduler", "status", "--json")
        save("lease list --json", "lease", "list", "--json")
        run(root, "suppress", "add", "nobody@example.org", "--json")
        save("suppress add|remove|list --json", "suppress", "list", "--json")
        save("contacts export", "contacts", "export", KEY)
        save("campaign archive --json", "campaign", "archive", "medias-2027", "--json")
        save("contacts forget --json", "contacts", "forget", KEY, "--yes", "--json")
        save("campaign clone --json", "campaign", "clone", CAMPAIGN, "copie-2027", "--json")
    return {
        heading: [
            json.loads(doc)
            for text in texts
            for doc in (text.splitlines() if heading in NDJSON else [text])
            if doc.strip()
        ]
        for heading, texts in out.items()
    }


SAME_AS = {"show PLANFILE --json": "plan --json"}  # "the saved plan document unchanged"
NDJSON = {"send --json", "scheduler tick|run --log-format json"}


def test_every_section_of_docs_json_is_run(outputs: dict[str, list[dict[str, object]]]) -> None:
    assert sorted(outputs) == sorted(sections())


@pytest.mark.parametrize("heading", sorted(set(sections()) - NDJSON))
def test_documented_keys_are_the_keys_printed(
    heading: str, outputs: dict[str, list[dict[str, object]]]
) -> None:
    expected = documented(sections()[SAME_AS.get(heading, heading)])
    assert expected, f"docs/json.md: `{heading}` lists no keys this test can read"
    for printed in outputs[heading]:
        assert_keys(heading, expected, printed)


def assert_keys(where: str, expected: dict[str, object], printed: object) -> None:
    assert isinstance(printed, dict), (where, printed)
    names = set(expected) - {OPEN}
    if OPEN in expected:
        assert names <= set(printed), f"{where}: documented, not printed: {names - set(printed)}"
    else:
        assert set(printed) == names, (
            f"{where}: documented, not printed: {sorted(names - set(printed))}; "
            f"printed, not documented: {sorted(set(printed) - names)}"
        )
    for name, nested in expected.items():
        items = printed.get(name) if name != OPEN else None
        if isinstance(nested, dict) and isinstance(items, list):
            for item in items:
                assert_keys(f"{where} {name}[]", nested, item)


def test_each_send_line_carries_the_keys_documented_for_its_type(
    outputs: dict[str, list[dict[str, object]]],
) -> None:
    documented_types = ndjson_types(sections()["send --json"])
    printed = outputs["send --json"]
    assert {"start", "summary"} <= {line["type"] for line in printed}
    for line in printed:
        kind = str(line["type"])
        assert kind in documented_types, f"send --json: type {kind!r} is not documented"
        expected = {**documented_types[kind], "type": None}
        if kind == "summary":
            expected["format_version"] = None
            line = {k: v for k, v in line.items() if k != "rendered"}  # dry runs only
            expected.pop("rendered")
        assert_keys(f"send --json {kind}", expected, line)


def test_each_scheduler_action_line_carries_the_documented_keys(
    outputs: dict[str, list[dict[str, object]]],
) -> None:
    heading = "scheduler tick|run --log-format json"
    expected = documented(sections()[heading])
    assert expected
    actions = [line for line in outputs[heading] if line["type"] != "pass"]
    assert actions, "the demo's tick did nothing to compare"
    for line in actions:
        assert_keys(heading, expected, line)
