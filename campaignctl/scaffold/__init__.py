"""`campaignctl init`: write a new workspace from the example files shipped in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from campaignctl.errors import UsageError
from campaignctl.spec.schema import SCHEMA_DIR, write_schemas

GITIGNORE = "# local state of campaignctl: store, outbox captures, logs\n.campaignctl/\n"


def _scaffold_files() -> dict[str, bytes]:
    root = resources.files("campaignctl.scaffold") / "files"
    files: dict[str, bytes] = {}

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            elif not child.name.endswith((".pyc",)):
                files[name] = child.read_bytes()

    walk(root, "")
    files[".gitignore"] = GITIGNORE.encode()
    return files


def create_workspace(target: Path, *, force: bool = False) -> list[Path]:
    """Write the example workspace into `target`; refuse to overwrite unless `force`."""
    files = _scaffold_files()
    existing = sorted(name for name in files if (target / name).exists())
    if existing and not force:
        listed = ", ".join(existing[:5]) + (" …" if len(existing) > 5 else "")
        raise UsageError(
            f"{target} already has {len(existing)} of the files init would write ({listed})",
            hint="choose an empty directory, or pass --force to overwrite them",
        )
    written = []
    for name, content in sorted(files.items()):
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    written.extend(write_schemas(target / SCHEMA_DIR))
    return written
