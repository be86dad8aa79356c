from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from campaignctl.audience.importer import ImportOptions, import_audiences
from campaignctl.audience.segments import count_segment
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import Store

TODAY = date(2027, 3, 1)


@pytest.fixture
def segment_ws(scaffold: Path, store: Store):  # type: ignore[no-untyped-def]
    import_audiences(store, load_workspace(scaffold), None, ImportOptions())
    return scaffold


def _count(root: Path, store: Store, where: str) -> int:
    (root / "audiences" / "segments" / "t.yaml").write_text(
        f"kind: Segment\nname: t\naudience: providers\nwhere:\n  {where}\n"
    )
    ws = load_workspace(root).require_valid()
    return count_segment(store, ws, "t", TODAY)


# Every operator and combinator, with the count on the scaffold's providers on TODAY.
OPERATOR_CASES = [
    ("category: hotel", 2),
    ("category: {ne: hotel}", 5),
    ("category: {in: [hotel, gite]}", 4),
    ("category: {not_in: [hotel, gite]}", 3),
    ("tags: {contains: adherent}", 5),
    ("email: {exists: false}", 1),
    ("telephone: {exists: true}", 5),
    ("contract_end: {gt: today}", 7),
    ("contract_end: {between: [today, today+10d]}", 2),
    ("contract_end: {lt: 2027-03-06}", 1),
    ("nom: {matches: '^Hôtel'}", 2),
    ("all: [{category: camping}, {commune: Val}]", 1),
    ("any: [{category: camping}, {commune: Mont}]", 3),
    ("not: {category: hotel}", 5),
    ("segment: accommodation", 4),
    ("all: [{segment: accommodation}, {not: {segment: renewing-soon}}]", 2),
]


@pytest.mark.parametrize(("where", "expected"), OPERATOR_CASES)
def test_every_operator_and_combinator(
    segment_ws: Path, store: Store, where: str, expected: int
) -> None:
    assert _count(segment_ws, store, where) == expected


def test_relative_dates_resolve_for_the_given_day(segment_ws: Path, store: Store) -> None:
    ws = load_workspace(segment_ws).require_valid()
    assert count_segment(store, ws, "renewing-soon", TODAY) == 2
    assert count_segment(store, ws, "renewing-soon", date(2030, 1, 1)) == 0
