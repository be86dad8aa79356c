from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from campaignctl.cli.main import app


def _run(root: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def test_import_then_reimport_says_nothing_changed(scaffold: Path, backend: str) -> None:
    first = _run(scaffold, "audience", "import", "--json")
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert document["format_version"] == 1
    assert document["imports"][0]["added"] == 7
    again = _run(scaffold, "audience", "import")
    assert again.exit_code == 0, again.output
    assert again.stdout == ""
    assert again.stderr.startswith("providers: no changes (7 records unchanged) in ")


def test_segment_show_counts_in_the_store(scaffold: Path, backend: str) -> None:
    assert _run(scaffold, "audience", "import").exit_code == 0
    result = _run(scaffold, "segment", "show", "accommodation", "--count")
    assert result.exit_code == 0, result.output
    assert result.stdout == "accommodation: 4 records (audience providers)\n"


def test_segment_show_sample_keeps_the_count_and_names_the_columns(
    scaffold: Path, backend: str
) -> None:
    assert _run(scaffold, "audience", "import").exit_code == 0
    result = _run(scaffold, "segment", "show", "accommodation", "--sample", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "accommodation: 4 records (audience providers)\n"
        "+------+----------------------------+--------------+----------+\n"
        "| key  | email                      | phone        | category |\n"
        "+------+----------------------------+--------------+----------+\n"
        "| C001 | campinglespins@example.net | +33612345678 | camping  |\n"
        "| G001 | famille.martin@example.com | -            | gite     |\n"
        "+------+----------------------------+--------------+----------+\n"
    )
    document = json.loads(
        _run(scaffold, "segment", "show", "accommodation", "--sample", "2", "--json").stdout
    )
    assert (document["count"], len(document["sample"])) == (4, 2)


def test_unknown_segment_is_a_usage_error(scaffold: Path, backend: str) -> None:
    result = _run(scaffold, "segment", "show", "acommodation")
    assert result.exit_code == 64
    assert result.stderr == (
        "error: segment 'acommodation' does not exist\n  hint: did you mean 'accommodation'?\n"
    )


def test_forget_without_a_terminal_needs_yes(scaffold: Path, backend: str) -> None:
    assert _run(scaffold, "audience", "import").exit_code == 0
    result = _run(scaffold, "contacts", "forget", "H001")
    assert result.exit_code == 64
    assert "add --yes to confirm" in result.stderr
    done = _run(scaffold, "contacts", "forget", "H001", "--yes")
    assert done.exit_code == 0, done.output
    listed = _run(scaffold, "suppress", "list", "--json")
    rows = json.loads(listed.stdout)["suppressions"]
    assert {(r["channel"], r["address"], r["reason"]) for r in rows} == {
        ("email", None, "forgotten"),
        ("sms", None, "forgotten"),
    }


def test_suppress_add_normalises_the_address(scaffold: Path, backend: str) -> None:
    result = _run(scaffold, "suppress", "add", "06 12 34 56 78")
    assert result.exit_code == 0, result.output
    assert result.stderr == "+33612345678: suppressed (sms, all)\n"


def test_an_import_that_would_remove_most_records_is_refused_without_allow_removals(
    scaffold: Path, backend: str
) -> None:
    """A CSV with only its header (a truncated export) used to mark every record removed,
    exit 0. More than half of the active records going needs --allow-removals."""
    assert _run(scaffold, "audience", "import").exit_code == 0
    csv_file = scaffold / "audiences" / "contacts.csv"
    csv_file.write_text(csv_file.read_text().splitlines()[0] + "\n")

    refused = _run(scaffold, "audience", "import")
    assert refused.exit_code == 65
    assert refused.stderr == (
        "error: audiences/contacts.csv: this import would remove 7 of the 7 active records of "
        "audience 'providers' (their keys are not in the file); nothing was changed\n"
        "  hint: check that the file is complete (a truncated or empty export?); if those "
        "records are really gone, run the import again with --allow-removals\n"
    )
    listed = _run(scaffold, "audience", "list", "--json")
    assert len(json.loads(listed.stdout)["records"]) == 7  # all still active

    allowed = _run(scaffold, "audience", "import", "--allow-removals", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["imports"][0]["removed"] == 7
    assert json.loads(_run(scaffold, "audience", "list", "--json").stdout)["records"] == []
