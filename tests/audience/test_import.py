from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from campaignctl.audience.importer import ImportOptions, import_audiences
from campaignctl.audience.records import find_records
from campaignctl.audience.segments import count_segment
from campaignctl.audience.values import ValueProblem, parse_int, parse_number
from campaignctl.errors import InputError
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import Store

HEADER = "id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n"


def _write(root: Path, body: str, bom: bool = False) -> None:
    (root / "audiences" / "contacts.csv").write_text(("\ufeff" if bom else "") + HEADER + body)


def _import(root: Path, store: Store, **kw: object) -> object:
    ws = load_workspace(root).require_valid()
    return import_audiences(store, ws, None, ImportOptions(**kw))[0]  # type: ignore[arg-type]


def test_reimport_of_the_same_file_changes_nothing(scaffold: Path, store: Store) -> None:
    first = _import(scaffold, store)
    assert (first.added, first.updated, first.unchanged) == (7, 0, 0)
    serial = store.serial()
    again = _import(scaffold, store)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 7, 0)
    assert not again.changed
    assert "no changes" in again.summary()
    assert store.serial() == serial + 1  # the audit entry only


def test_messy_rows_are_kept_or_rejected_with_reasons(scaffold: Path, store: Store) -> None:
    _write(
        scaffold,
        'A1;"Hôtel; du\nLac";bad@@x.fr;01 23;hotel;Val;adherent;31/02/2027;\n'
        ";Sans clé;a@b.fr;;hotel;Val;;;\n"
        "A1;Doublon;c@d.fr;;hotel;Val;;;\n"
        "A2;Ok;Jean@ORANGE.fr;+33 6 12 34 56 78;camping;Mont;adherent;2027-03-10;\n",
        bom=True,
    )
    rejects = scaffold / "rejects.csv"
    result = _import(scaffold, store, rejects=rejects)
    assert (result.added, result.rejected) == (2, 2)
    assert dict(result.problems) == {
        "duplicate_key": 1, "invalid_date": 1, "invalid_email": 1, "invalid_phone": 1,
        "missing_key": 1,
    }  # fmt: skip
    lines = rejects.read_text().splitlines()
    assert lines[0] == "row,key,column,value,reason,message"
    assert [line.split(",")[:5] for line in lines[1:]] == [  # in file order
        ["3", "A1", "email", "bad@@x.fr", "invalid_email"],
        ["3", "A1", "telephone", "01 23", "invalid_phone"],
        ["3", "A1", "contract_end", "31/02/2027", "invalid_date"],
        ["4", "", "id", "", "missing_key"],
        ["5", "A1", "id", "A1", "duplicate_key"],
    ]
    (a1,) = find_records(store, "A1")
    assert a1["email"] is None and a1["attributes"]["nom"] == "Hôtel; du\nLac"
    (a2,) = find_records(store, "A2")
    assert (a2["email"], a2["phone"]) == ("Jean@orange.fr", "+33612345678")


def test_a_changed_file_reports_added_updated_removed(scaffold: Path, store: Store) -> None:
    _write(scaffold, "A1;Un;a@b.fr;;hotel;Val;;;\nA2;Deux;;;hotel;Val;;;\n")
    _import(scaffold, store)
    _write(scaffold, "A1;Un bis;a@b.fr;;hotel;Val;;;\nA3;Trois;;;hotel;Val;;;\n")
    result = _import(scaffold, store)
    assert (result.added, result.updated, result.unchanged, result.removed) == (1, 1, 0, 1)
    assert find_records(store, "A2")[0]["status"] == "removed"
    pruned = _import(scaffold, store, prune=True)
    assert pruned.pruned == 1
    with pytest.raises(Exception, match="no record with key 'A2'"):
        find_records(store, "A2")


def test_removing_more_than_half_the_records_needs_allow_removals(
    scaffold: Path, store: Store
) -> None:
    _write(scaffold, "".join(f"A{i};Un;a{i}@b.fr;;hotel;Val;;;\n" for i in range(5)))
    _import(scaffold, store)
    _write(
        scaffold,
        "A0;Un;a0@b.fr;;hotel;Val;;;\nA1;Un;a1@b.fr;;hotel;Val;;;\nA9;Neuf;;;hotel;Val;;;\n",
    )
    serial = store.serial()
    for dry_run in (True, False):
        with pytest.raises(InputError, match="would remove 3 of the 5 active records") as caught:
            _import(scaffold, store, dry_run=dry_run)
        assert caught.value.exit_code == 65 and "--allow-removals" in str(caught.value.hint)
    assert store.serial() == serial  # nothing written, not even the new record
    assert [r["status"] for r in find_records(store, "A4")] == ["active"]
    with pytest.raises(Exception, match="no record with key 'A9'"):
        find_records(store, "A9")
    result = _import(scaffold, store, allow_removals=True)
    assert (result.added, result.removed) == (1, 3)


def test_dry_run_keeps_the_store_unchanged(scaffold: Path, store: Store) -> None:
    result = _import(scaffold, store, dry_run=True)
    assert result.added == 7
    assert _import(scaffold, store).added == 7


def test_parallel_and_inline_typing_give_the_same_records(scaffold: Path, store: Store) -> None:
    _import(scaffold, store, workers=1)
    ws = load_workspace(scaffold).require_valid()
    assert count_segment(store, ws, "accommodation", date(2027, 3, 1)) == 4
    again = _import(scaffold, store, workers=0)
    assert again.unchanged == 7


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "audiences/contacts.csv:1:1", "this is not a CSV text file"),
        (HEADER.replace("id;", "ids;").encode(), "audiences/providers.audience.yaml:8:1",
         "column 'id' of audience 'providers' is not in the header"),
    ],
)  # fmt: skip
def test_unusable_files_are_located_errors_in_validate_and_in_the_import(
    scaffold: Path, store: Store, content: bytes, where: str, message: str
) -> None:
    (scaffold / "audiences" / "contacts.csv").write_bytes(content)
    ws = load_workspace(scaffold)
    assert [f"{e.file}:{e.line}:{e.column}" for e in ws.errors] == [where]
    assert message in ws.errors[0].message
    with pytest.raises(InputError, match=message) as caught:  # import reads the file itself
        _import(scaffold, store)
    assert caught.value.exit_code == 65


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_number, "12,5", 12.5),
        (parse_number, "1 234.5", 1234.5),
        (parse_int, "9 223 372 036 854 775 807", 2**63 - 1),
    ],
)
def test_numbers_parse_in_french_and_english(parse, text: str, expected: float) -> None:  # type: ignore[no-untyped-def]
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_number, "nan"),
        (parse_number, "-inf"),
        (parse_number, "1e999"),
        (parse_number, "12,5,3"),
        (parse_int, "9223372036854775808"),  # one past what JSON columns keep exactly
        (parse_int, "12.5"),
    ],
)
def test_numbers_json_cannot_hold_are_invalid_values(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueProblem) as problem:
        parse(text)
    assert problem.value.reason == "invalid_number"


@pytest.mark.parametrize("workers", [0, 1])
def test_a_key_longer_than_the_store_keeps_is_a_rejected_row_on_both_stores(
    scaffold: Path, store: Store, workers: int
) -> None:
    """record.key holds 200 characters: PostgreSQL refused a longer one (the import stopped
    with an internal error) where SQLite kept it; now both leave the row out, counted."""
    from campaignctl.audience.source import KEY_MAX_LENGTH
    from campaignctl.store.tables import RECORD

    assert KEY_MAX_LENGTH == RECORD.c.key.type.length == 200
    longest, too_long = "K" * 200, "L" * 201
    _write(scaffold, f"{longest};Ok;a@b.fr;;hotel;Val;;;\n{too_long};Trop;c@d.fr;;hotel;Val;;;\n")
    rejects = scaffold / "rejects.csv"
    result = _import(scaffold, store, rejects=rejects, workers=workers)
    assert (result.added, result.rejected, dict(result.problems)) == (1, 1, {"key_too_long": 1})
    assert rejects.read_text().splitlines()[1] == (
        f'3,,id,{"L" * 40}…,key_too_long,"the key has 201 characters, more than the 200 a '
        'record key may have: the row is left out"'
    )
    assert [r["key"] for r in find_records(store, longest)] == [longest]
