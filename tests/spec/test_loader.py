"""The YAML loader: located values, duplicate keys, and no traceback on any input."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaignctl.spec.loader import Mark, load_yaml_text
from campaignctl.spec.workspace import load_workspace


def test_marks_point_at_values_and_keys() -> None:
    docs, problems = load_yaml_text(
        "kind: Segment\nwhere:\n  all:\n    - city: {in: [Val]}\n", "f.yaml"
    )
    assert problems == []
    smap = docs[0].source_map
    assert smap.locate(("where", "all", 0, "city", "in", 0)) == Mark(4, 19)
    assert smap.locate(("where", "all", 0, "city"), key=True) == Mark(4, 7)
    # a path that is not in the file falls back to its deepest existing ancestor
    assert smap.locate(("where", "all", 0, "nope")) == Mark(4, 7)


def test_duplicate_keys_are_errors_not_overwrites() -> None:
    docs, problems = load_yaml_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert docs[0].data == {"a": 1, "b": 2}
    assert [p.format() for p in problems] == [
        "f.yaml:3:1: error[duplicate-key]: key 'a' appears twice in the same mapping (first at line 1)"
        "\n  hint: remove one of them; YAML would silently keep only the last"
    ]


def test_recursive_alias_is_an_error() -> None:
    docs, problems = load_yaml_text("a: &x [1, *x]\n", "f.yaml")
    assert docs == []
    assert problems[0].code == "yaml-syntax"
    assert "an alias refers to a collection that contains it" in problems[0].message


def test_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{','.join(['*' + prev] * 9)}]")
    docs, problems = load_yaml_text("\n".join(lines) + "\n", "f.yaml")
    assert docs == []
    assert "too many values" in problems[0].message


def test_on_and_yes_keys_stay_text() -> None:
    docs, _ = load_yaml_text("on: 1\nyes: 2\n", "f.yaml")
    assert docs[0].data == {"on": 1, "yes": 2}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_loader_never_raises_on_arbitrary_text(text: str) -> None:
    _docs, problems = load_yaml_text(text, "f.yaml")
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["7d", "today+1q", "Campaign", "email", "[", "{a: b}"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "name",
                    "audience",
                    "segments",
                    "channels",
                    "where",
                    "all",
                    "not",
                    "schedule",
                    "relaunch",
                    "after",
                    "message",
                    "template",
                    "x",
                ]
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=yaml_values)
def test_workspace_loading_never_crashes_on_arbitrary_documents(
    scaffold: Path, value: object
) -> None:
    import yaml

    doc = {"kind": "Campaign", "name": "fuzz", **value} if isinstance(value, dict) else value
    (scaffold / "campaigns" / "fuzz.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
    )
    workspace = load_workspace(scaffold)
    for diagnostic in workspace.diagnostics:
        assert diagnostic.file and diagnostic.message


def test_a_value_yaml_cannot_build_is_located_at_the_value() -> None:
    _docs, problems = load_yaml_text("a: 1\nb: {eq: 2027-02-30}\n", "f.yaml")
    assert [p.format() for p in problems] == [
        "f.yaml:2:9: error[yaml-syntax]: invalid YAML value: day is out of range for month\n"
        "  hint: quote the value to keep it as text"
    ]


def test_a_nul_character_is_refused_where_it_is() -> None:
    """PostgreSQL refuses NUL in any text: a segment value holding one ended in exit 70."""
    docs, problems = load_yaml_text('kind: Segment\nwhere:\n  nom: {eq: "a\\x00b"}\n', "f.yaml")
    assert docs == []
    assert [p.format().splitlines()[0] for p in problems] == [
        "f.yaml:3:13: error[yaml-syntax]: a text value holds a NUL character (\\x00)"
    ]
