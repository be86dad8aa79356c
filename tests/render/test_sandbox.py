"""The sandbox's size limits: a template cannot make a text, a list or a message past them.

Each hostile case is sized so that, without the limits, it renders at most about 100 MB
(the test then fails by rendering) instead of taking the machine's memory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.render.environment import make_environment
from campaignctl.render.sandbox import TemplateTooLarge
from tests.delivery.locking import open_store

HOSTILE = {
    "text times n": (
        "{{ 'a' * 100000000 }}",
        "`*` would make 100,000,000 characters, more than 1,000,000",
    ),
    "list times n": (
        "{{ ['a'] * 1000000 }}",
        "`*` would make 1,000,000 items, more than 100,000",
    ),
    "percent width": (
        "{{ '%50000000s' % 'a' }}",
        "`%` with a width of 50,000,000: at most 1,000,000",
    ),
    "format width": (
        "{{ '{:>50000000}'.format(1) }}",
        "`format` with a width of 50,000,000: at most 1,000,000",
    ),
    "format width from an argument": (
        "{{ '{:>{}}'.format(1, 50000000) }}",
        "`format` with a width of 50,000,000: at most 1,000,000",
    ),
    "center filter": (
        "{{ 'a'|center(50000000) }}",
        "`center` would make 50,000,000 characters, more than 1,000,000",
    ),
    "doubling with ~": (
        "{% set ns = namespace(s='x' * 1000) %}{% for i in range(12) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "`~` would make 1,024,000 characters, more than 1,000,000",
    ),
    "doubling with +": (
        "{% set ns = namespace(s='x' * 1000) %}{% for i in range(12) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "`+` would make 1,024,000 characters, more than 1,000,000",
    ),
    "join": (
        "{{ (['x' * 100000] * 20)|join }}",
        "joining would make 1,100,000 characters, more than 1,000,000",
    ),
    "replace": (
        "{{ ('a' * 100000)|replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaa') }}",
        "`replace` would make 2,500,000 characters, more than 1,000,000",
    ),
    "a loop printing big texts": (
        "{% for i in range(20) %}{{ 'x' * 900000 }}{% endfor %}",
        "the template prints more than 10,000,000 characters in all (its loops, macros and "
        "blocks together)",
    ),
    "a loop in a set block": (
        "{% set b %}{% for i in range(20) %}{{ 'x' * 900000 }}{% endfor %}{% endset %}ok",
        "the template prints more than 10,000,000 characters in all (its loops, macros and "
        "blocks together)",
    ),
    "a loop appending to a list": (
        "{% set l = [] %}{% for i in range(20) %}{% set _ = l.append('x' * 900000) %}"
        "{% endfor %}{{ l|length }}",
        "`append`: the lists of this template would hold more than 10,000,000 characters of "
        "text in all",
    ),
    "a loop of plain text": (
        "{% for i in range(100000) %}0123456789x{% endfor %}",
        "the rendered text passes 1,000,000 characters",
    ),
    "nested loops": (
        "{% for a in range(2000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "the template's loops turn more than 1,000,000 times in one render",
    ),
    "a huge power": (
        "{{ 9 ** 100000 }}",
        "`**` with an exponent of 100,000: at most 10,000",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_templates_cannot_make_texts_or_lists_past_the_limits(scaffold: Path, case: str) -> None:
    source, message = HOSTILE[case]
    with pytest.raises(TemplateTooLarge) as caught:
        make_environment(scaffold).from_string(source).render()
    assert str(caught.value) == message


REASONABLE = {
    "{{ 'ab' * 3 }}|{{ [1, 2] * 2 }}": "ababab|[1, 2, 1, 2]",
    "{{ '%5s|%-3d' % ('a', 2) }}|{{ '{:>4}'.format(7) }}": "    a|2  |   7",
    "{% set l = [] %}{% for i in range(3) %}{% set _ = l.append(i) %}{% endfor %}{{ l|join(',') }}": (
        "0,1,2"
    ),
    "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}in{% endcall %}"
    "{% macro m(a) %}<{{ a }}>{% endmacro %}{{ m(1) ~ m(2) }}": "[in]<1><2>",
    "{{ 'a b'|replace(' ', '-')|center(5) }}|{{ 2 ** 10 }}": " a-b |1024",
}


@pytest.mark.parametrize("source", sorted(REASONABLE))
def test_ordinary_templates_render_as_before(scaffold: Path, source: str) -> None:
    assert make_environment(scaffold).from_string(source).render() == REASONABLE[source]


def _run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def test_a_huge_message_is_a_render_error_naming_the_template_and_the_record(
    scaffold: Path,
) -> None:
    with (scaffold / "templates" / "update-request.txt.j2").open("a", encoding="utf-8") as f:
        f.write("{{ 'a' * 100000000 }}\n")
    lines = (scaffold / "templates" / "update-request.txt.j2").read_text().splitlines()
    assert _run(scaffold, "audience", "import").exit_code == 0
    result = _run(scaffold, "preview", "update-2027", "--contact", "H001", "--format", "text")
    assert result.exit_code == 65, result.output
    assert result.stderr.splitlines()[:2] == [
        f"templates/update-request.txt.j2:{len(lines)}:1: error[template-too-large]: `*` would "
        "make 100,000,000 characters, more than 1,000,000 (rendering the text part for record "
        "H001)",
        "  hint: a template makes texts of at most 1,000,000 characters and lists of 100,000 "
        "items: look for a `*`, a width or a loop that grows without bound",
    ]


def test_send_marks_a_message_too_large_failed_with_the_reason_and_goes_on(
    scaffold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2027-03-01T10:00:00+01:00")
    path = scaffold / "templates" / "update-request.txt.j2"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "{% if record.key == 'H001' %}{{ 'a' * 100000000 }}{% endif %}\n",
        encoding="utf-8",
    )
    line = len(path.read_text(encoding="utf-8").splitlines())
    assert _run(scaffold, "audience", "import").exit_code == 0
    assert _run(scaffold, "apply", "--auto-approve").exit_code == 0
    result = _run(scaffold, "send", "update-2027", "--now")
    assert result.exit_code == 1, result.output  # some messages could not be sent
    with open_store(scaffold).read() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.key, o.state, o.error FROM outbox o JOIN record r "
                "ON r.id = o.record_id WHERE o.channel = 'email' ORDER BY r.key"
            )
        ).all()
    failed = [(key, error) for key, state, error in rows if state == "failed"]
    assert failed == [
        (
            "H001",
            f"cannot render: templates/update-request.txt.j2:{line}: `*` would make 100,000,000 "
            "characters, more than 1,000,000 (rendering the text part for record H001)",
        )
    ]
    assert [state for key, state, _ in rows if key != "H001"] == ["sent"] * (len(rows) - 1)
