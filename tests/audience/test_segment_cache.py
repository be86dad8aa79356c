"""`segment show --count` remembers its SQL and reuses it only while nothing it depends on
changed: the definitions, the day relative dates resolve against, the store, its schema."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.audience.segment_cache import CACHE_FILE, cached_count
from campaignctl.cli.main import app
from tests.audience.test_segments import OPERATOR_CASES

NOW = "2027-03-01T10:00:00+01:00"  # TODAY of the operator cases, in Europe/Paris
CLI = Path(sys.executable).parent / "campaignctl"
SHOW = ("segment", "show", "accommodation", "--count", "--json")


@pytest.fixture
def imported(scaffold: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAMPAIGNCTL_NOW", NOW)
    assert _run(scaffold, "audience", "import").exit_code == 0
    return scaffold


def _run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def _count(root: Path, name: str) -> str:
    result = _run(root, "segment", "show", name, "--count")
    assert result.exit_code == 0, result.output
    return result.stdout


def _segment(root: Path, where: str) -> None:
    (root / "audiences" / "segments" / "t.yaml").write_text(
        f"kind: Segment\nname: t\naudience: providers\nwhere:\n  {where}\n"
    )


@pytest.mark.parametrize(("where", "expected"), OPERATOR_CASES)
def test_the_remembered_query_counts_what_the_full_path_counts(
    imported: Path, where: str, expected: int
) -> None:
    _segment(imported, where)
    assert _count(imported, "t") == f"t: {expected} records (audience providers)\n"
    view = cached_count(imported, "t")
    assert view is not None, "the full path did not remember its query"
    assert (view.count, view.audience, view.today.isoformat()) == (expected, "providers", NOW[:10])
    assert _count(imported, "t") == f"t: {expected} records (audience providers)\n"


def test_a_remembered_count_runs_without_sqlalchemy_or_pydantic_models(imported: Path) -> None:
    def imports() -> str:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", CLI, "--workspace", imported, *SHOW],
            capture_output=True,
            text=True,
            check=True,
            env={"CAMPAIGNCTL_NOW": NOW, "PATH": "/usr/bin:/bin"},
        )
        assert json.loads(done.stdout)["count"] == 4
        return done.stderr

    def loaded(log: str, module: str) -> bool:
        return re.search(rf"\|\s+{re.escape(module)}$", log, re.MULTILINE) is not None

    first, second = imports(), imports()
    assert loaded(first, "sqlalchemy") and loaded(first, "campaignctl.spec.models")
    # the console script answers before loading the CLI framework (typer imports pydantic)
    for heavy in ("sqlalchemy", "campaignctl.spec.models", "typer", "rich", "pydantic"):
        assert not loaded(second, heavy), heavy


def _script(root: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-X", "importtime", CLI, *args],
        capture_output=True,
        text=True,
        cwd=root,
        env={"CAMPAIGNCTL_NOW": NOW, "PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "remembered"),
    [
        (("segment", "show", "accommodation", "--count"), True),
        (("segment", "show", "accommodation"), True),
        (("segment", "show", "--json", "accommodation", "--count"), True),
        (("-w", "{root}", "segment", "show", "accommodation", "--count"), True),
        (("segment", "show", "accommodation", "--workspace={root}", "--json"), True),
        (("segment", "show", "accommodation", "--count", "--sample", "2"), False),
        (("segment", "show", "accommodation", "--sql"), False),
    ],
)
def test_the_console_script_prints_what_the_full_cli_prints(
    imported: Path, args: tuple[str, ...], remembered: bool
) -> None:
    # with a -w option, run from outside the workspace: the option must be what finds it
    cwd = imported.parent if "{root}" in " ".join(args) else imported
    args = tuple(a.replace("{root}", str(imported)) for a in args)
    _run(imported, *SHOW)  # the full path remembers the query
    script = _script(cwd, *args)
    full = CliRunner().invoke(app, ["--workspace", str(imported), *args])

    def timeless(out: str) -> str:
        return re.sub(r'"elapsed_seconds": [0-9.e-]+', '"elapsed_seconds": T', out)

    assert script.returncode == full.exit_code == 0, script.stderr
    assert timeless(script.stdout) == timeless(full.stdout)
    said = [line for line in script.stderr.splitlines() if not line.startswith("import time:")]
    if "--json" not in args:
        assert said[0].startswith("evaluated for 2027-03-01 in "), said
    assert (" typer\n" not in script.stderr) is remembered  # answered before loading the CLI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("segment", "show", "nope", "--count"), "segment 'nope' does not exist"),
        (("segment", "show", "accommodation", "--count", "-w"), "requires an argument"),
        (("segment", "show", "accommodation", "extra"), "unexpected extra argument"),
        (("segment", "--json", "show", "accommodation"), "No such option"),
    ],
)
def test_the_console_script_leaves_errors_to_the_full_cli(
    imported: Path, args: tuple[str, ...], message: str
) -> None:
    _run(imported, *SHOW)
    script = _script(imported, *args)
    assert script.returncode == 64 and message in script.stderr, script.stderr


def test_the_workspace_variable_points_the_console_script_at_the_workspace(
    imported: Path, tmp_path: Path
) -> None:
    _run(imported, *SHOW)
    script = _script(tmp_path, *SHOW, env={"CAMPAIGNCTL_WORKSPACE": str(imported)})
    assert script.returncode == 0 and json.loads(script.stdout)["count"] == 4, script.stderr


def test_records_are_counted_as_they_are_now(imported: Path) -> None:
    assert _count(imported, "accommodation").startswith("accommodation: 4 records")
    csv = imported / "audiences" / "contacts.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    header, first = lines[0], lines[1]
    # a copy of a hotel under a new key: the definitions are unchanged, the records are not
    assert "hotel" in first, first
    delimiter = ";" if ";" in header else ","
    key, rest = first.split(delimiter, 1)
    csv.write_text("\n".join([*lines, f"new-{key}{delimiter}{rest}"]) + "\n", encoding="utf-8")
    # the audience CSV is not a definition: the remembered query still applies
    assert cached_count(imported, "accommodation") is not None
    assert _run(imported, "audience", "import").exit_code == 0
    view = cached_count(imported, "accommodation")
    assert view is not None and view.count == 5


def test_an_edited_definition_takes_the_full_path(imported: Path) -> None:
    _segment(imported, "category: hotel")
    assert _count(imported, "t").startswith("t: 2 records")
    _segment(imported, "category: {in: [hotel, gite]}")
    assert cached_count(imported, "t") is None
    assert _count(imported, "t").startswith("t: 4 records")
    assert cached_count(imported, "t") is not None


def test_a_new_day_resolves_relative_dates_again(
    imported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _count(imported, "renewing-soon").startswith("renewing-soon: 2 records")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2030-01-01T10:00:00+01:00")
    assert cached_count(imported, "renewing-soon") is None
    assert _count(imported, "renewing-soon").startswith("renewing-soon: 0 records")


def test_another_store_or_a_migrated_one_takes_the_full_path(
    imported: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _count(imported, "accommodation")
    monkeypatch.setenv("CAMPAIGNCTL_STORE", f"sqlite:///{tmp_path / 'other.db'}")
    assert cached_count(imported, "accommodation") is None
    assert _count(imported, "accommodation").startswith("accommodation: 0 records")
    monkeypatch.delenv("CAMPAIGNCTL_STORE")
    _count(imported, "accommodation")
    database = json.loads((imported / ".campaignctl" / CACHE_FILE).read_text())["database"]
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    conn.close()
    assert cached_count(imported, "accommodation") is None
    result = _run(imported, "segment", "show", "accommodation", "--count")
    assert result.exit_code == 65, result.output
    assert result.stderr.startswith("error: the store at ") and "'9999_future'" in result.stderr
    assert "Traceback" not in result.output


def test_a_damaged_cache_is_ignored(imported: Path) -> None:
    _count(imported, "accommodation")
    cache = imported / ".campaignctl" / CACHE_FILE
    for damage in ("{not json", "[]", '{"segments": {"accommodation": 3}}'):
        cache.write_text(damage)
        assert cached_count(imported, "accommodation") is None
        assert _count(imported, "accommodation").startswith("accommodation: 4 records")
