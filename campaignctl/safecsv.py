"""Every CSV campaignctl writes (reports, import rejects) goes through this writer.

Those files are opened in spreadsheets, and their cells come from data anyone can put in a
contact source or an event: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
return would run as a formula (`=HYPERLINK(…)` phoning home, `@SUM(…)`). Such text cells
get a leading apostrophe, as OWASP advises; numbers stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


class FormulaSafeWriter:
    """`csv.writer` whose every cell goes through `neutralise`."""

    def __init__(self, handle: Any, **formatting: Any) -> None:
        self._writer = csv.writer(handle, **formatting)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])
