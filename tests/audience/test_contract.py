"""The audience contract (DESIGN §1): `columns:` only adds types, labels and header renames;
the key is a text column without being listed, every other column of the CSV is a text
attribute that templates, segments and questionnaires can use, and `validate` reads the
CSV's header and encoding. And what an import says about the problems it met."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from campaignctl.cli.main import app

# DESIGN §1's example: no `id` under `columns:`, and `nom`, `category`, `commune`,
# `opening_periods` of the scaffold's CSV not listed at all
MINIMAL = """kind: Audience
name: providers
source: audiences/contacts.csv
key: id
columns:
  email: {type: email}
  telephone: {type: phone, region: FR}
  tags: {type: list, separator: ","}
  contract_end: {type: date}
"""
CSV = "audiences/contacts.csv"


def _run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def _minimal(scaffold: Path) -> Path:
    (scaffold / "audiences" / "providers.audience.yaml").write_text(MINIMAL)
    return scaffold


def _append(root: Path, rows: str) -> None:
    with (root / CSV).open("a", encoding="utf-8") as handle:
        handle.write(rows)


def test_the_key_and_the_unlisted_columns_are_text_attributes(scaffold: Path) -> None:
    """The scaffold's templates use `record.nom` and `record.commune`, its segments test
    `category`, its questionnaire asks `nom`: none of them is listed any more."""
    root = _minimal(scaffold)
    checked = _run(root, "validate")
    assert checked.exit_code == 0, checked.output
    assert _run(root, "audience", "import").exit_code == 0
    shown = _run(root, "audience", "show", "H001", "--json")
    (record,) = json.loads(shown.stdout)["records"]
    assert record["category"] == "hotel"
    assert {k: record["attributes"][k] for k in ("id", "nom", "commune", "opening_periods")} == {
        "id": "H001",
        "nom": "Hôtel du Lac",
        "commune": "Val",
        "opening_periods": "2026-04-01..2026-10-31",  # text: not declared as periods
    }
    counted = _run(root, "segment", "show", "accommodation", "--count")
    assert counted.stdout == "accommodation: 4 records (audience providers)\n"


def test_a_misspelt_unlisted_attribute_still_gets_a_did_you_mean(scaffold: Path) -> None:
    root = _minimal(scaffold)
    template = root / "templates" / "update-request.txt.j2"
    template.write_text(template.read_text().replace("record.commune", "record.comune"))
    checked = _run(root, "validate")
    assert checked.exit_code == 65
    assert "update-request.txt.j2:14:" in checked.output
    assert "record has no attribute 'comune'" in checked.output
    assert "hint: did you mean 'commune'?" in checked.output


def test_a_header_cell_that_gives_no_attribute_is_a_warning(scaffold: Path) -> None:
    root = _minimal(scaffold)
    csv_file = root / CSV
    lines = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join([lines[0] + ";Nom", *(line + ";x" for line in lines[1:])]))
    checked = _run(root, "validate", "--format", "json")
    assert checked.exit_code == 0, checked.output
    (warning,) = json.loads(checked.stdout)["diagnostics"]
    assert (warning["file"], warning["line"], warning["code"], warning["message"]) == (
        CSV, 1, "csv-source",
        "column 'Nom' gives no attribute: its attribute name 'nom' is already taken",
    )  # fmt: skip


def test_validate_reads_the_csv_encoding_and_header(scaffold: Path) -> None:
    """A Windows-1252 file, or a header without a declared column, passed `validate` and
    failed `import`, `preview` and `send` later."""
    (scaffold / CSV).write_bytes(
        (scaffold / CSV).read_text().encode() + "G9;Gîte des Prés;;;gite;Val;;;\n".encode("cp1252")
    )
    checked = _run(scaffold, "validate")
    assert checked.exit_code == 65
    assert checked.stdout.startswith(
        "audiences/contacts.csv:9:1: error[csv-source]: the file is not valid utf-8 text\n"
        "  hint: save it as UTF-8, or set `encoding: cp1252` (Excel on Windows)\n"
    )
    csv_file = scaffold / CSV
    csv_file.write_text(csv_file.read_text("cp1252").replace(";telephone;", ";telefone;", 1))
    checked = _run(scaffold, "validate")
    assert checked.exit_code == 65
    assert checked.stdout.startswith(
        "audiences/providers.audience.yaml:12:3: error[csv-source]: column 'telephone' of "
        "audience 'providers' is not in the header of audiences/contacts.csv\n"
        "  hint: the header has 'telefone': set `header: 'telefone'` on column 'telephone'\n"
    )


def test_an_import_shows_its_first_ten_problems_and_says_how_to_list_them_all(
    scaffold: Path,
) -> None:
    _append(scaffold, "".join(f"B{i};Bad {i};jean{i}@;;hotel;Val;;;\n" for i in range(11)))
    _append(scaffold, ";Sans clé;a@b.fr;;hotel;Val;;;\n")
    result = _run(scaffold, "audience", "import")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "audiences/contacts.csv:9: email 'jean0@': not a valid email address: There must be "
        "something after the @-sign.",
        "audiences/contacts.csv:10: email 'jean1@': not a valid email address: There must be "
        "something after the @-sign.",
    ]
    assert [line.split(":")[1] for line in lines[:10]] == [str(n) for n in range(9, 19)]
    assert lines[10].startswith("providers: imported 19 rows: 18 added, 0 updated, ")
    assert lines[11:] == [
        "11 values dropped (11 invalid_email), 1 row rejected (1 missing_key)",
        "  hint: --rejects FILE lists every problem in a CSV",
    ]


def test_a_reimport_of_an_unchanged_file_lists_its_bad_values_again(
    scaffold: Path, tmp_path: Path
) -> None:
    """It wrote a rejects file with only its header: unchanged rows were not typed again."""
    _append(scaffold, "B1;Bad;jean@;01 23;hotel;Val;;;\nB2;Good;b@c.fr;;hotel;Val;;;\n")
    first, again = tmp_path / "first.csv", tmp_path / "again.csv"
    assert _run(scaffold, "audience", "import", "--rejects", str(first)).exit_code == 0
    result = _run(scaffold, "audience", "import", "--rejects", str(again))
    assert result.exit_code == 0, result.output
    assert again.read_text() == first.read_text()
    assert again.read_text().splitlines() == [
        "row,key,column,value,reason,message",
        "9,B1,email,jean@,invalid_email,not a valid email address: There must be something "
        "after the @-sign.",
        "9,B1,telephone,01 23,invalid_phone,not a valid phone number for region FR",
    ]
    assert result.stderr.splitlines()[1:] == [
        "2 values dropped (1 invalid_email, 1 invalid_phone), 0 rows rejected",
        f"every problem is listed in {again}",
    ]
    assert result.stderr.startswith("providers: no changes (9 records unchanged) in ")


def test_the_remembered_template_checks_follow_the_csv_header(scaffold: Path) -> None:
    """Commands reuse the last template checks while no definition changed; a header that
    loses a column the templates use must be seen all the same."""
    from campaignctl.spec.workspace import load_workspace

    root = _minimal(scaffold)
    (root / ".campaignctl").mkdir(exist_ok=True)
    load_workspace(root, template_cache=True).require_valid()  # remembered
    csv_file = root / CSV
    csv_file.write_text(csv_file.read_text().replace(";commune;", ";ville;", 1))
    errors = load_workspace(root, template_cache=True).errors
    assert {e.message for e in errors} == {
        "record has no attribute 'commune' (campaign 'update-2027')"
    }


def test_the_import_json_counts_values_dropped_apart_from_rows_rejected(scaffold: Path) -> None:
    _append(scaffold, "B1;Bad;jean@;01 23;hotel;Val;;;\n;Sans clé;a@b.fr;;hotel;Val;;;\n")
    result = _run(scaffold, "audience", "import", "--json")
    assert result.exit_code == 0, result.output
    (document,) = json.loads(result.stdout)["imports"]
    assert document | {"elapsed_seconds": 0} == {
        "audience": "providers", "source": "audiences/contacts.csv", "dry_run": False,
        "changed": True, "rows": 9, "added": 8, "updated": 0, "unchanged": 0, "removed": 0,
        "pruned": 0, "rejected": 1, "dropped": 2, "kept_accepted": 0,
        "problems": {"invalid_email": 1, "invalid_phone": 1, "missing_key": 1},
        "elapsed_seconds": 0,
    }  # fmt: skip
