"""Whatever a definition file holds, `validate` answers with diagnostics, never a crash.

Hypothesis writes one hostile file into a scaffold workspace (a definition of any kind, or
campaignctl.yaml itself, or a template) and runs what `campaignctl validate` runs: the
library entry point, and the CLI (where a crash would be exit 70). The files mix random
bytes, documents built from the real keys with odd scalars (dates at the ends of time,
huge numbers, NaN, control characters), deep nesting, anchors and aliases.
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.spec.validation import validate

TARGETS = [
    "campaigns/fuzz.yaml",
    "audiences/segments/fuzz.yaml",
    "audiences/fuzz.audience.yaml",
    "questionnaires/fuzz.yaml",
    "campaignctl.yaml",
]
KINDS = ["Campaign", "Segment", "Audience", "Questionnaire", "List", "Campain", None]
KEYS = [
    "kind", "name", "audience", "segments", "exclude_segments", "channels", "where", "all",
    "any", "not", "segment", "matches", "between", "in", "eq", "contains", "gt", "schedule",
    "send_at", "relaunch", "after", "to", "recurrence", "every", "until", "cron", "message",
    "template", "subject", "sender", "blocks", "options", "max_messages_per_contact",
    "questionnaire", "ref", "fields", "id", "type", "only_for", "source", "key", "columns",
    "separator", "region", "store", "timezone", "organization", "senders", "from", "reply_to",
    "smtp", "port", "sms", "quiet_hours", "start", "end", "tracking", "base_url", "delivery",
    "retry_backoff", "trigger", "event", "steps", "wait", "if", "then", "else", "active",
    "documents", "attachments", "exports", "draft", "category", "description",
]  # fmt: skip
ODD_TEXT = [
    "9999-12-31", "0001-01-01", "9999-12-31T23:59:59", "today+99999999d", "today-9999y",
    "99999999999d", "1e400", "-0", "0x1F", ".nan", "~", "*x", "&a", "<<", "{{", "{% if %}",
    "{{ 'a' * 100000000 }}", "^(a+)+$", "(a)\\1", "mysql://u@h/db", "\x1b[2J", "a\r\nb",
    "\x00", "\u202e", "é" * 300, "a" * 5000, "sqlite:///../../x.db", "Europe/Nowhere",
    "99:99", "Name <a@b\r\nBcc: c@d>", "hotels-renewing-soon",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(ODD_TEXT),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.times().map(time.isoformat),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=25,
)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """The bytes of one definition file."""
    shape = draw(st.sampled_from(["bytes", "document", "deep", "aliases", "several"]))
    if shape == "bytes":
        return draw(st.binary(max_size=300))
    kind = draw(st.sampled_from(KINDS))
    body = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=8))
    doc = {"kind": kind, "name": draw(st.sampled_from(["fuzz", "accommodation", "X Y"])), **body}
    text = yaml.safe_dump(doc, allow_unicode=True, width=10_000)
    if shape == "deep":
        depth = draw(st.integers(min_value=50, max_value=1500))
        opener = draw(st.sampled_from(["[", "{a: ", "- "]))
        closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
        nested = opener * depth + "x" + closer * depth
        if opener == "- ":
            nested = "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "- x"
        text += "deep:\n" + nested + "\n" if opener == "- " else f"deep: {nested}\n"
    elif shape == "aliases":
        text = "base: &b " + yaml.safe_dump(draw(values), default_flow_style=True).strip() + "\n"
        text += "\n".join(f"k{i}: *b" for i in range(draw(st.integers(1, 5)))) + "\n"
        text += yaml.safe_dump(doc, allow_unicode=True, width=10_000)
    elif shape == "several":
        text = "\n---\n".join([text, yaml.safe_dump(draw(values), allow_unicode=True)])
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])), "surrogatepass")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from campaignctl.scaffold import create_workspace

    root = tmp_path_factory.mktemp("fuzz") / "ws"
    create_workspace(root)
    return root


def _write(root: Path, target: str, data: bytes) -> bytes | None:
    path = root / target
    before = path.read_bytes() if path.exists() else None
    path.write_bytes(data)
    return before


def _restore(root: Path, target: str, before: bytes | None) -> None:
    if before is None:
        (root / target).unlink()
    else:
        (root / target).write_bytes(before)


FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(target=st.sampled_from(TARGETS), data=documents())
@example(  # found by this test: salvaging the rest of the file raised IndexError (exit 70)
    target="campaigns/fuzz.yaml", data=b"fields:\n- kind: null\nkind: Questionnaire\nname: fuzz\n"
)
def test_validate_never_crashes_on_a_hostile_definition(
    workspace: Path, target: str, data: bytes
) -> None:
    before = _write(workspace, target, data)
    try:
        result = validate(workspace)
    finally:
        _restore(workspace, target, before)
    for diagnostic in result.diagnostics:
        assert diagnostic.file and diagnostic.message and diagnostic.code


@FUZZ
@given(source=st.text(max_size=400) | st.sampled_from(ODD_TEXT))
def test_validate_never_crashes_on_a_hostile_template(workspace: Path, source: str) -> None:
    before = _write(workspace, "templates/renewal.txt.j2", source.encode("utf-8", "surrogatepass"))
    try:
        validate(workspace)
    finally:
        _restore(workspace, "templates/renewal.txt.j2", before)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(TARGETS), data=documents())
def test_the_validate_command_never_exits_70(workspace: Path, target: str, data: bytes) -> None:
    before = _write(workspace, target, data)
    try:
        result = CliRunner().invoke(app, ["--workspace", str(workspace), "validate"])
    finally:
        _restore(workspace, target, before)
    assert result.exit_code in (0, 65), result.output
    assert "internal error" not in result.output


def test_the_workspace_is_restored_between_examples(workspace: Path) -> None:
    """The examples above each break one file and put it back: the scaffold is still clean."""
    assert validate(workspace).errors == []
