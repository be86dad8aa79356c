"""Where a workspace's files are, without loading them (standard library only).

Shared by the loader and by the caches that must tell, in a few milliseconds and before
pydantic or SQLAlchemy are imported, whether any definition or template changed since
they were written (`.campaignctl/template-check.json`, `.campaignctl/segment-sql.json`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from campaignctl import __version__
from campaignctl.errors import Diagnostic, InputError, Severity, UsageError

CONFIG_FILE = "campaignctl.yaml"
DOCUMENT_DIRS = ("audiences", "questionnaires", "campaigns")
AUDIENCES_DIR = "audiences"
TEMPLATES_DIR = "templates"
TEMPLATE_SUFFIXES = {"html": ".html.j2", "text": ".txt.j2", "sms": ".sms.j2"}
DOCUMENTS_DIR = "documents"
LOGO_MAX_BYTES = 256 * 1024  # a logo the partner space embeds (its CSP: img-src 'self' data:)
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


class UnsafePath(InputError):
    """A path named by a definition that leads out of the folder it must stay in (exit 65).

    `diagnostic` places it at the YAML value (or template line) that names it.
    """

    code = "unsafe-path"

    def __init__(self, what: str, value: str, reason: str, hint: str) -> None:
        super().__init__(f"{what} {value!r} {reason}", hint=hint)
        self.value = value
        self.reason = reason

    def diagnostic(self, file: str, line: int, column: int) -> Diagnostic:
        return Diagnostic(file, line, column, Severity.ERROR, self.code, self.message, self.hint)


def confined_path(root: Path, value: str, folder: str, *, base: str = "", what: str) -> Path:
    """The real file that `value` names, refused unless it stays inside `root/folder`.

    `value` is a path written in a definition, relative to `root/base` (`base` "" for the
    workspace root); `folder` "" confines it to the workspace. An absolute path, a `..`
    that climbs out of `folder`, and a symbolic link (to the file or to any folder on the
    way, `folder` itself included) whose target lies outside `root/folder` raise
    `UnsafePath`; `what` names the value in the message ("attachment", "template"…).
    This is the one check behind `validate`, the Jinja loader and every read at send time.
    """
    area = f"{folder}/" if folder else "the workspace"
    if base == folder:
        where = f"write a path relative to {area} that stays inside it"
    else:
        where = f"write a path relative to the workspace root, inside {area}"
    hint = f"{where}; copy the file into {area} rather than linking to it from outside"
    if "\x00" in value:
        raise UnsafePath(what, value, "contains a NUL character", hint)
    if os.path.isabs(value):
        raise UnsafePath(what, value, f"is an absolute path: it must stay inside {area}", hint)
    relative = os.path.normpath(os.path.join(base, value))
    if relative == os.curdir:
        relative = ""
    if folder and relative != folder and not relative.startswith(f"{folder}/"):
        how = "climbs out of" if ".." in Path(value).parts else "is not inside"
        raise UnsafePath(what, value, f"{how} {area}", hint)
    if relative == os.pardir or relative.startswith(f"{os.pardir}/"):
        raise UnsafePath(what, value, "climbs out of the workspace", hint)
    real_root = root.resolve()
    try:
        real = (real_root / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise UnsafePath(what, value, f"cannot be resolved ({exc})", hint) from None
    if not real.is_relative_to(real_root / folder):
        raise UnsafePath(
            what, value, f"leads out of {area} through a symbolic link (to {real})", hint
        )
    return real


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
