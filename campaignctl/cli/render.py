"""Printing helpers shared by the audience, segment and contacts commands (stdout data only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from campaignctl.cli.app import App

if TYPE_CHECKING:
    from campaignctl.audience.importer import ImportResult


def print_record(app: App, record: dict[str, Any]) -> None:
    app.out.print(f"{record['audience']} / {record['key']} ({record['status']})")
    for name in ("email", "phone", "category"):
        app.out.print(f"  {name}: {record[name] if record[name] is not None else '-'}")
    for name, value in record["attributes"].items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
        app.out.print(f"  {name}: {shown if value is not None else '-'}")


def print_records(app: App, records: list[dict[str, Any]]) -> None:
    """A table of records: key, email, phone, category (`--json` has every attribute)."""
    if not records:
        return
    table = app.table(None, "key", "email", "phone", "category")
    table.columns[1].overflow = "fold"  # a long address wraps, it is never cut short
    for r in records:
        table.add_row(r["key"], r["email"] or "-", r["phone"] or "-", r["category"] or "-")
    app.out.print(table)


def print_import_result(app: App, result: ImportResult, *, listed: bool) -> None:
    """An import's summary on stderr (talk, not data): without a rejects file, its first
    problems (line, column, value, why) and how to get them all."""
    if not listed:
        for line in result.problem_lines():
            app.err.print(line)
    app.err.print(result.summary())
    if result.kept_accepted:
        app.err.print(
            "  hint: the source still holds the values these responses replaced; update it "
            "from `campaignctl responses export --format csv` (the audit log lists each one)"
        )
    if result.problems:
        app.err.print(result.problems_summary())
        if not listed:
            app.err.print("  hint: --rejects FILE lists every problem in a CSV")


@contextmanager
def import_progress(app: App) -> Iterator[Callable[[int], None] | None]:
    """A live row counter on a TTY; nothing otherwise (the summary line says it all)."""
    if not app.err.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
        console=app.err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("import", total=None)
        yield lambda rows: progress.update(task, completed=rows)
