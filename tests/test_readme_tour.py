"""The README's five-minute tour, run line by line as a newcomer types it.

Every command must succeed, except the `validate` that step 3 breaks on purpose: it exits
65 and prints exactly the diagnostic (and its hint) the README shows under it. Step 3 must
undo its edit, or step 4 fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)


def _tour() -> list[str]:
    """The lines of the tour's shell block, comments included (they hold expected output)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0].splitlines()


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
        "CAMPAIGNCTL_NOW": "2027-01-05T10:00:00+01:00",  # a Tuesday morning: no quiet hours
        "BROWSER": "true",  # `preview --open` opens nothing
    }
    lines = _tour()
    cwd = tmp_path
    broken = False  # between step 3's edit and its undo
    failures: list[str] = []
    for index, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(". .venv/bin/activate"):
            continue  # PATH above holds this venv's campaignctl
        if line.startswith("cd "):
            cwd = cwd / line.split()[1]
            continue
        command = line.replace("/tmp/update.eml", str(tmp_path / "update.eml"))
        result = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
        )
        if command.startswith("sed -i"):
            broken = not broken
        if broken and command == "campaignctl validate":
            shown = []  # the output the README prints under the command, as comments
            for comment in lines[index + 1 :]:
                if not comment.startswith("#   "):
                    break
                shown.append(comment[1:].strip())
            assert result.returncode == 65, result.stderr
            assert [out.strip() for out in result.stdout.splitlines()] == shown
            continue
        if result.returncode != 0:
            failures.append(f"{line}\n  exit {result.returncode}: {result.stderr[-400:]}")
    assert not broken, "step 3 breaks a file and never undoes it"
    assert failures == []
