"""CSS inlined once per message shape gives the same bytes as inlining every message.

Each test renders the same recipients with two renderers, one reusing inlined shapes
(the default) and one inlining every message on its own, and compares the messages.
The recipients' values are chosen to stress the substitution: escapes, entities,
no-break spaces, braces, blank values, control and marker characters, and values in
attributes and classes.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from campaignctl.render import (
    CampaignRenderer,
    Recipient,
    RecordData,
    RenderOptions,
    Wave,
    WaveKind,
)
from campaignctl.spec.workspace import load_workspace

PIECES = [
    "Hôtel",
    "du Lac",
    " ",
    "&",
    "&amp;",
    "&#39;",
    "&eacute;",
    "&copy",
    "<b>",
    ">",
    '"',
    "'",
    "\xa0",
    "{0}",
    "}",
    "😀",
    "\n",
    "\t",
    "\r\n",
    "\x01",
    "\ue000",
    "\ue001",
    "—",
    "",
]
# A layout and template that give css-inline more to do than the scaffold's: classes,
# structural selectors and :empty, a table, an @media rule kept in a <style>, values in
# attributes, a title, entities in the template's own text.
LAYOUT = """<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><title>{{ campaign.name }} &amp; {{ record.nom }}</title>
<style>
body { font-family: Arial, sans-serif; }
p:first-child { margin-top: 0; }
td.label { font-weight: bold; }
td:empty { background: #eee; }
.cat-hotel { color: #a00; }
ul > li + li { border-top: 1px solid #eee; }
@media (max-width: 600px) { td { display: block; } }
</style>
</head>
<body>{% block content %}{% endblock %}
<p class="footer">{{ organization.name }}&nbsp;&mdash; {{ organization.address }}</p>
</body>
</html>
"""
TEMPLATE = """{% extends "layouts/base.html.j2" %}
{% block content %}
<p>Bonjour {{ record.nom }},</p>
<table><tr><td class="label">Commune</td><td title="{{ record.commune }}">{{ record.commune }}</td></tr>
<tr><td class="cat">{{ record.category }}</td><td>{{ records | length }}</td></tr></table>
<p><a href="{{ links.form }}" title="Fiche de {{ record.nom }}">Mettre à jour</a>
<a href="mailto:{{ record.email }}">{{ record.email }}</a></p>
<ul>{% for field in questionnaire %}<li>{{ field.label }} : {{ field.value }}</li>{% endfor %}</ul>
<p>{{ blocks.intro }}</p>
{% endblock %}
"""


def renderers(root: Path) -> tuple[CampaignRenderer, CampaignRenderer]:
    workspace = load_workspace(root)
    return (
        CampaignRenderer(workspace, "update-2027", RenderOptions()),
        CampaignRenderer(workspace, "update-2027", RenderOptions(reuse_inlined_shapes=False)),
    )


def recipients(n: int, seed: int, tricky: bool, crafted: tuple[str, ...] = ()) -> list[Recipient]:
    """n recipients, some of whose values are tricky; then one per `crafted` value
    (used for `nom` and `commune`), which each test's shape should be robust to."""
    rng = random.Random(seed)

    def value(plain: str) -> str:
        if not tricky or rng.random() < 0.75:
            return plain
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))

    out = []
    for i in range(n + len(crafted)):
        records = []
        for j in range(1 if rng.random() < 0.8 or i >= n else 2):
            key = f"H{i:03d}{j}"
            special = crafted[i - n] if i >= n else None
            attributes = {
                "id": key,
                "nom": special or value(f"Hôtel n°{i}"),
                "email": f"c{i}@h{i}.example",
                "telephone": value("+33450123456"),
                "category": rng.choice(["hotel", "camping", "gite"]),
                "commune": special or value(rng.choice(["Val", "Mont", "Lac"])),
                "tags": ["adherent"],
                "contract_end": date(2027, 3, 10),
                "opening_periods": [["2026-04-01", "2026-10-31"]] if rng.random() < 0.7 else [],
            }
            records.append(RecordData(key, attributes, attributes["category"]))
        out.append(Recipient(records, email=records[0].attributes["email"]))
    return out


def assert_same_messages(root: Path, people: list[Recipient]) -> CampaignRenderer:
    fast, slow = renderers(root)
    for n, person in enumerate(people):
        wave = Wave(2, WaveKind.RELAUNCH) if n % 7 == 3 else Wave()
        ours, reference = fast.render_email(person, wave), slow.render_email(person, wave)
        assert ours.html == reference.html, person
        assert ours.data == reference.data
    return fast


def test_demo_messages_reuse_one_inlined_shape_and_stay_byte_identical(
    scaffold: Path, frozen: object
) -> None:
    fast = assert_same_messages(scaffold, recipients(120, seed=1, tricky=False))
    # a handful of shapes (single or grouped record, relaunch, periods or none)
    assert fast._inliner.new_shapes <= 12
    assert fast._inliner.reused >= 100


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_tricky_values_in_text_and_attributes_give_the_same_bytes(
    scaffold: Path, frozen: object, seed: int
) -> None:
    (scaffold / "templates" / "layouts" / "base.html.j2").write_text(LAYOUT)
    (scaffold / "templates" / "update-request.html.j2").write_text(TEMPLATE)
    campaign = scaffold / "campaigns" / "update-2027.yaml"
    campaign.write_text(
        campaign.read_text()
        .replace("intro: Comme", "intro: \"L'hôtel & co, 5 < 6 {x} — Comme")
        .replace("de votre établissement.", 'de votre établissement."')
    )
    fast = assert_same_messages(scaffold, recipients(150, seed=seed, tricky=True))
    assert fast._inliner.reused >= 50  # the substitution itself was compared, not only skipped


@pytest.mark.parametrize(
    "change",
    [
        ("</style>", '[title="Lac"] { color: red; }\n</style>'),  # attribute selector
        ('class="cat"', 'class="cat-{{ record.category }}"'),  # a value in a class
        ("<p>Bonjour", "<pre>{{ record.nom }}</pre><p>Bonjour"),  # pre drops a first newline
        (  # a value in a style attribute
            "<p>Bonjour",
            "<p style=\"{{ 'color: red' if record.category == 'hotel' else 'margin: 0' }}\">Bonjour",
        ),
        ("<p>Bonjour", "<p>&{{ record.commune }};</p><p>Bonjour"),  # value completes an entity
        ("<p>Bonjour", "<p>\ue000</p><p>Bonjour"),  # the marker in the template itself
    ],
)
def test_shapes_that_values_could_change_are_inlined_per_message(
    scaffold: Path, frozen: object, change: tuple[str, str]
) -> None:
    layout, template = LAYOUT.replace(*change), TEMPLATE.replace(*change)
    assert (layout, template) != (LAYOUT, TEMPLATE)
    (scaffold / "templates" / "layouts" / "base.html.j2").write_text(layout)
    (scaffold / "templates" / "update-request.html.j2").write_text(template)
    crafted = ("Val", "Lac", "Hôtel", "\nHôtel", "eacute", "amp") * 6
    assert_same_messages(scaffold, recipients(60, seed=5, tricky=True, crafted=crafted))


def test_threads_sharing_one_renderer_get_their_own_messages(
    scaffold: Path, frozen: object
) -> None:
    # the send engine renders batches in several threads with one renderer
    from concurrent.futures import ThreadPoolExecutor

    (scaffold / "templates" / "layouts" / "base.html.j2").write_text(LAYOUT)
    (scaffold / "templates" / "update-request.html.j2").write_text(TEMPLATE)
    people = recipients(400, seed=6, tricky=True)
    fast, slow = renderers(scaffold)
    expected = [slow.render_email(person).data for person in people]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda person: fast.render_email(person).data, people))
    assert got == expected
