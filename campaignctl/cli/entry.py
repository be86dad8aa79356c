"""The `campaignctl` console script.

`segment show NAME --count` is the command scripts and dashboards poll. When its query
is remembered (see `campaignctl.audience.segment_cache`), the answer takes a few
milliseconds of SQL, but importing the CLI framework (typer, click, rich, and pydantic,
which recent typer releases import) takes several times that. So this entry point
answers that one command from the remembered query before importing anything else, and
hands every other command line, and any count the cache cannot answer, to
`campaignctl.cli.main` unchanged: same output, same errors, same exit codes.

Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WORKSPACE_OPTIONS = ("--workspace", "-w")
WORKSPACE_VARIABLE = "CAMPAIGNCTL_WORKSPACE"  # = cli.options.EnvVars.WORKSPACE


def main() -> None:
    """Console-script entry point."""
    if not _remembered_count(sys.argv[1:]):
        from campaignctl.cli.main import main as full

        full()


def _parse(args: list[str]) -> tuple[str, bool, Path | None] | None:
    """(segment, --json, workspace) of `[-w DIR] segment show NAME [--count] [--json] [-w DIR]`,
    the options after `show` in any order; None for any other command line (options this
    does not know included: they go to the full CLI, which knows them all)."""
    workspace = os.environ.get(WORKSPACE_VARIABLE) or None
    words: list[str] = []
    json_output = False
    rest = iter(args)
    for arg in rest:
        if len(words) == 1 and arg.startswith("-"):
            return None  # `segment --option`: the full CLI's business
        if arg in WORKSPACE_OPTIONS or arg.startswith("--workspace="):
            workspace = arg.partition("=")[2] if "=" in arg else next(rest, "")
            if not workspace:
                return None  # a missing value: the full CLI says what is wrong
        elif arg == "--json" and len(words) >= 2:
            json_output = True
        elif arg == "--count" and len(words) >= 2:
            continue
        elif arg.startswith("-") or len(words) == 3:
            return None
        else:
            words.append(arg)
    if words[:2] != ["segment", "show"] or len(words) != 3:
        return None
    return words[2], json_output, Path(workspace) if workspace else None


def _remembered_count(args: list[str]) -> bool:
    """Print the count when the remembered query can answer; False when it cannot."""
    parsed = _parse(args)
    if parsed is None:
        return False
    name, json_output, workspace = parsed
    try:
        from campaignctl.audience.segment_cache import cached_count
        from campaignctl.spec.files import find_workspace_root

        view = cached_count(find_workspace_root(workspace), name)
    except Exception:  # no workspace, anything odd: the full CLI reports it properly
        return False
    if view is None:
        return False
    if json_output:
        document = json.dumps(view.as_json(), ensure_ascii=False, indent=2, default=str)
        sys.stdout.write(document + "\n")
    else:
        sys.stdout.write(view.count_line() + "\n")
        sys.stderr.write(view.timing_line() + "\n")
    return True
