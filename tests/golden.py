"""Golden files: whole outputs (plans, reports, rendered messages) kept next to their tests.

A test compares what a command printed with the file byte for byte (CSV line ends
included). When an output changes on purpose, rewrite the files and review the diff:

    CAMPAIGNCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/cli tests/render tests/report
    git diff tests/*/golden
"""

from __future__ import annotations

import os
from pathlib import Path

UPDATE_VARIABLE = "CAMPAIGNCTL_UPDATE_GOLDEN"


class Goldens:
    """The golden files of one folder: `golden("plan.txt", result.stdout)`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, name: str, actual: str) -> None:
        path = self.folder / name
        if os.environ.get(UPDATE_VARIABLE) == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual.encode("utf-8"))
        assert path.is_file(), f"{path} missing: run with {UPDATE_VARIABLE}=1 and review it"
        expected = path.read_bytes().decode("utf-8")
        assert actual == expected, f"differs from {path} ({UPDATE_VARIABLE}=1 rewrites it)"
