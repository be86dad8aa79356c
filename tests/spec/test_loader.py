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


def test_a_key_overriding_a_merged_one_is_not_a_duplicate_and_wins() -> None:
    text = "base: &base {after: 7d, to: non_responders}\nrule:\n  <<: *base\n  after: 14d\n"
    docs, problems = load_yaml_text(text, "f.yaml")
    assert problems == []
    assert docs[0].data["rule"] == {"after": "14d", "to": "non_responders"}
    # the overriding key is located where it is written, not in the anchor
    assert docs[0].source_map.locate(("rule", "after")) == Mark(4, 10)


def test_merged_mappings_follow_yaml_precedence() -> None:
    # the first mapping of `<<: [...]` wins over the next ones, the mapping's own keys over all
    text = "a: &a {k: 1}\nb: &b {k: 2, j: 2, m: 2}\nx:\n  <<: [*a, *b]\n  m: 3\n"
    docs, problems = load_yaml_text(text, "f.yaml")
    assert problems == []
    assert docs[0].data["x"] == {"k": 1, "j": 2, "m": 3}


def test_a_key_written_twice_beside_a_merge_is_still_a_duplicate() -> None:
    text = "base: &base {after: 7d}\nrule:\n  <<: *base\n  after: 14d\n  after: 21d\n"
    docs, problems = load_yaml_text(text, "f.yaml")
    assert docs[0].data["rule"] == {"after": "14d"}
    assert [p.format() for p in problems] == [
        "f.yaml:5:3: error[duplicate-key]: key 'after' appears twice in the same mapping (first at line 4)"
        "\n  hint: remove one of them; YAML would silently keep only the last"
    ]


def test_an_anchor_merged_and_reused_reads_the_same_each_time() -> None:
    text = "b: &b {a: 1}\nx: &x\n  <<: *b\n  a: 2\ny: *x\nz: {<<: *x, q: 1}\n"
    docs, problems = load_yaml_text(text, "f.yaml")
    assert problems == []
    assert docs[0].data == {"b": {"a": 1}, "x": {"a": 2}, "y": {"a": 2}, "z": {"a": 2, "q": 1}}


def test_merging_something_that_is_not_a_mapping_is_a_located_error() -> None:
    docs, problems = load_yaml_text("x:\n  <<: 3\n", "f.yaml")
    assert docs == []
    assert (problems[0].code, problems[0].line) == ("yaml-syntax", 2)
    assert "`<<:` takes a mapping" in problems[0].message


def test_a_campaign_sharing_relaunch_settings_through_a_merge_key_validates(
    scaffold: Path,
) -> None:
    path = scaffold / "campaigns" / "update-2027.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    - {after: 7d, to: non_responders}\n    - {after: 14d, to: non_openers, channels: [sms]}\n",
        "    - &first {after: 7d, to: non_responders}\n    - {<<: *first, after: 14d}\n",
    )
    path.write_text(text, encoding="utf-8")
    workspace = load_workspace(scaffold)
    assert workspace.errors == []
    rules = workspace.campaigns["update-2027"].schedule.relaunch
    assert [(r.after.days, str(r.to)) for r in rules] == [
        (7, "non_responders"),
        (14, "non_responders"),
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
