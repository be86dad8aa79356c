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
from campaignctl.errors import InputError
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


def _rows(path: Path) -> dict[str, tuple[object, ...]]:
    """Every record by key, as the store keeps it (attributes parsed, ids left out)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM record").fetchall()
    return {row[0]: row for row in rows}


def test_workers_reimport_a_changed_file_as_the_inline_import_does(
    scaffold: Path, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks (about 40 rows each): keys repeat across blocks handled by different
    workers, and the re-import looks keys up through each worker's own connection to
    the store, on SQLite and on PostgreSQL (whose test engine carries a search_path its
    URL does not show)."""
    from campaignctl.audience import source
    from campaignctl.audience.privacy import forget_contact
    from campaignctl.audience.records import find_records

    monkeypatch.setattr(source, "BLOCK_CHARS", 4096)
    rng = random.Random(11)
    lines = [";".join([*row(rng, i), ""]) for i in range(3_000)]
    lines[2_500] = lines[10]  # a duplicate key far from its first row: another block
    csv_file = scaffold / "audiences" / "contacts.csv"
    csv_file.write_text(HEADER + "\n".join(lines) + "\n")
    reference = Store(f"sqlite:///{tmp_path / 'inline.db'}")

    first = _import(scaffold, store, workers=2)
    assert first.as_json() | {"elapsed_seconds": 0} == _import(
        scaffold, reference, workers=0
    ).as_json() | {"elapsed_seconds": 0}
    assert first.problems["duplicate_key"] >= 1 and first.added > 2_900

    kept = [line for line in lines if line.split(";")[0]]
    changed = [kept[5], kept[1_500], kept[2_990]]
    gone = kept[100].split(";")[0]
    forgotten = kept[200].split(";")[0]
    new = ";".join([*row(rng, 9_999), ""])
    edited = [
        line + "x" if line in changed else line for line in lines if not line.startswith(gone)
    ]
    csv_file.write_text(HEADER + "\n".join([*edited, new]) + "\n")
    for target in (store, reference):
        forget_contact(target, forgotten)

    again = _import(scaffold, store, workers=2)
    assert again.as_json() | {"elapsed_seconds": 0} == _import(
        scaffold, reference, workers=0
    ).as_json() | {"elapsed_seconds": 0}
    assert (again.added, again.updated, again.removed) == (1, 3, 1)
    assert find_records(store, gone)[0]["status"] == "removed"
    assert find_records(store, forgotten)[0]["status"] == "forgotten"
    assert find_records(store, new.split(";")[0])[0]["status"] == "active"
    if store.dialect == "sqlite":
        assert _rows(Path(store.engine.url.database)) == _rows(tmp_path / "inline.db")
    reference.close()


def test_the_staged_rows_go_once_the_import_ends_ok_or_not(big: Path, tmp_path: Path) -> None:
    """The staging files sit beside the store during the import, attached to its
    connection: afterwards, neither the files nor the attachments remain, and a file
    that turns out broken near its end leaves the store as it was."""
    folder = tmp_path / "store"
    path = folder / "store.db"
    store = Store(f"sqlite:///{path}")
    assert _import(big, store, workers=2).added > ROWS * 0.99
    assert {p.name for p in folder.iterdir()} <= {"store.db", "store.db-wal", "store.db-shm"}
    with store.engine.connect() as conn:
        attached = [row[1] for row in conn.exec_driver_sql("PRAGMA database_list")]
        assert set(attached) <= {"main", "temp"}, attached

    csv_file = big / "audiences" / "contacts.csv"
    with csv_file.open("a") as handle:
        handle.write('Z1;"never closed;a@b.fr;;hotel;Val;;;\n')
    before = _records(path)
    with pytest.raises(InputError, match="never closed"):
        _import(big, store, workers=2)
    assert _records(path) == before
    assert {p.name for p in folder.iterdir()} <= {"store.db", "store.db-wal", "store.db-shm"}
    store.close()
