"""Where a workspace's files are, without loading them (standard library only).

Shared by the loader and by the caches that must tell, in a few milliseconds and before
pydantic or SQLAlchemy are imported, whether any definition or template changed since
they were written (`.campaignctl/template-check.json`, `.campaignctl/segment-sql.json`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from campaignctl.errors import UsageError

CONFIG_FILE = "campaignctl.yaml"
DOCUMENT_DIRS = ("audiences", "questionnaires", "campaigns")
TEMPLATES_DIR = "templates"
STATE_DIR = ".campaignctl"


def _given_workspace(directory: Path, given_as: str) -> Path:
    if (directory / CONFIG_FILE).is_file():
        return directory.resolve()
    if not directory.exists():
        problem = "no such directory"
    elif not directory.is_dir():
        problem = "not a directory"
    else:
        problem = f"this directory holds no {CONFIG_FILE}: it is not a workspace"
    raise UsageError(
        f"{given_as}: {problem}",
        hint=f"give the directory that holds {CONFIG_FILE} (the directories above one given "
        f"explicitly are not searched), or create a workspace there with "
        f"`campaignctl init {directory}`",
    )


def find_workspace_root(start: Path | None = None, *, given_as: str | None = None) -> Path:
    """The workspace a command works on.

    A directory given explicitly (`start`: --workspace or CAMPAIGNCTL_WORKSPACE, which
    errors name as `given_as`) must hold `campaignctl.yaml` itself: a typo in it must
    not fall back on a workspace above. Without one, the nearest directory at or above
    the current one holding `campaignctl.yaml`.
    """
    if start is not None:
        return _given_workspace(start, given_as or f"--workspace {start}")
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise UsageError(
        f"no {CONFIG_FILE} found in {here} or any parent directory",
        hint="run the command inside a workspace, pass --workspace DIR "
        "(or set CAMPAIGNCTL_WORKSPACE), or create one with `campaignctl init DIR`",
    )


def document_files(root: Path) -> list[Path]:
    """Every YAML file under the document folders, in a stable order."""
    found: list[Path] = []
    for folder in DOCUMENT_DIRS:
        base = root / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(
                Path(dirpath) / f
                for f in sorted(filenames)
                if f.endswith((".yaml", ".yml")) and not f.startswith(".")
            )
    return found


def definitions_fingerprint(root: Path, *code: Path) -> str:
    """A digest of every definition and template file (path, size, mtime in ns), of
    campaignctl's version and of the given source files: any edit gives a new value."""
    from campaignctl import __version__

    parts = [__version__, *(_stat_line(path) for path in code), _stat_line(root / CONFIG_FILE)]
    parts += [_stat_line(path) for path in document_files(root)]
    base = root / TEMPLATES_DIR
    if base.is_dir():
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            parts += [_stat_line(Path(dirpath) / f) for f in sorted(filenames)]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def write_cache(path: Path, document: object) -> None:
    """Write a cache file of `.campaignctl/` atomically (a concurrent reader sees the old
    or the new one); a read-only workspace just keeps no cache."""
    import json

    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temporary.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def _stat_line(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
