"""Optional dependencies: the PostgreSQL driver is the `postgresql` extra, sqlite-utils (and
sqlmodel, for the code before issue 22 that benchmarks/compare.py runs) the `bench` extra;
campaignctl itself does not need sqlmodel. Without psycopg, campaignctl runs on SQLite, and a PostgreSQL store says
which extra to install (exit 69)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# campaignctl as installed without the extra: importing psycopg fails, as it would
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from campaignctl.cli.entry import main; sys.argv[0] = 'campaignctl'; main()"
)


def _campaignctl(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, "--workspace", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CAMPAIGNCTL_NOW": "2027-01-05T10:00:00+01:00", **env},
    )


def test_the_postgresql_driver_and_sqlite_utils_are_extras() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = " ".join(project["dependencies"])
    assert "psycopg" not in required and "sqlite-utils" not in required
    assert "sqlmodel" not in required
    extras = project["optional-dependencies"]
    assert extras["postgresql"] == ["psycopg[binary]>=3.1"]
    assert extras["bench"] == ["sqlite-utils>=3.36", "sqlmodel>=0.0.18"]
    assert "campaignctl[postgresql]" in extras["dev"]  # the tests run on PostgreSQL too


def test_without_psycopg_the_sqlite_store_works(scaffold: Path) -> None:
    for args in (("audience", "import"), ("apply", "--auto-approve"), ("plan",), ("report",)):
        result = _campaignctl(scaffold, *args)
        assert result.returncode == 0, result.stderr


def test_without_psycopg_a_postgresql_store_names_the_extra(scaffold: Path) -> None:
    result = _campaignctl(
        scaffold, "db", "status", CAMPAIGNCTL_STORE="postgresql://bob:secret@127.0.0.1/campaigns"
    )
    assert result.returncode == 69, result.stderr
    assert result.stderr == (
        "error: the store postgresql+psycopg://bob:***@127.0.0.1/campaigns needs the PostgreSQL "
        "driver, which is not installed (import of psycopg halted; None in sys.modules)\n"
        "  hint: install it with `pip install 'campaignctl[postgresql]'`\n"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("Run the whole test suite", 1)[1].split("```sh\n", 1)[1]
    command = block.split("\n```", 1)[0].strip()
    assert command == ".venv/bin/python -m pytest -n auto"
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert lines[-1] == command
