"""A big first import on SQLite: typed by two worker processes, the record table's
indexes rebuilt once at the end. It must store exactly what the inline import stores,
and leave the schema as it found it, dry run included."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from benchmarks.gen_contacts import row
from campaignctl.audience.importer import BULK_MIN_ROWS, ImportOptions, import_audiences
from campaignctl.spec.workspace import load_workspace
from campaignctl.store import Store

HEADER = "id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n"
ROWS = BULK_MIN_ROWS + 5_000
COLUMNS = (
    "key, email, email_normalized, phone, invalid_addresses, category, attributes, status, "
    "source_hash"
)


@pytest.fixture
def big(scaffold: Path) -> Path:
    """The scaffold's audience, fed a messy generated file (bad emails, phones, dates,
    missing and duplicate keys, quoted fields with newlines)."""
    rng = random.Random(7)
    lines = (";".join([*row(rng, i), ""]) + "\n" for i in range(ROWS))
    (scaffold / "audiences" / "contacts.csv").write_text(HEADER + "".join(lines))
    return scaffold


def _import(root: Path, store: Store, **options: object):  # type: ignore[no-untyped-def]
    ws = load_workspace(root).require_valid()
    return import_audiences(store, ws, None, ImportOptions(**options))[0]  # type: ignore[arg-type]


def _indexes(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return set(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'record'"
                " AND sql IS NOT NULL"
            )
        )


def _positions(path: Path) -> dict[str, int]:
    """Where each index sits in the schema table: a rebuilt index gets a new row."""
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, rowid FROM sqlite_master WHERE type = 'index'"))


def _records(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM record ORDER BY key").fetchall()


def test_a_big_import_in_workers_stores_what_the_inline_import_stores(
    big: Path, tmp_path: Path
) -> None:
    stores = {}
    results = {}
    for workers in (2, 0):
        stores[workers] = Store(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        results[workers] = _import(big, stores[workers], workers=workers)
    parallel, inline = results[2], results[0]
    assert parallel.added > ROWS * 0.99 and parallel.rejected > 0
    assert parallel.as_json() | {"elapsed_seconds": 0} == inline.as_json() | {"elapsed_seconds": 0}
    assert set(parallel.problems) >= {"invalid_email", "invalid_phone", "invalid_date"}
    assert _records(tmp_path / "w2.db") == _records(tmp_path / "w0.db")
    again = _import(big, stores[2], workers=2)
    assert (again.added, again.updated, again.unchanged) == (0, 0, parallel.added)
    for store in stores.values():
        store.close()


def test_the_indexes_dropped_for_a_bulk_load_are_all_rebuilt(big: Path, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}")
    store.ensure_schema()
    before, positions = _indexes(path), _positions(path)
    assert {"ix_record_email_normalized", "ix_record_phone"} <= {name for name, _ in before}

    dry = _import(big, store, dry_run=True)
    assert dry.added > ROWS * 0.99
    assert _indexes(path) == before and _positions(path) == positions and _records(path) == []

    _import(big, store)
    after = _indexes(path)
    assert before <= after  # plus the expression indexes of the attributes segments test
    rebuilt = {name for name, _ in before if _positions(path)[name] != positions[name]}
    assert rebuilt == {name for name, _ in before}, "the bulk path was not taken"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM record WHERE email_normalized = ?", ("x",)
        ).fetchall()
        assert "ix_record_email_normalized" in str(plan)
    store.close()
