"""JSON Schemas of every kind and of `campaignctl.yaml`, generated from the spec models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from campaignctl.errors import writing
from campaignctl.spec.models import KINDS, WorkspaceConfig

CONFIG_SCHEMA = "config"
SCHEMA_DIR = "schemas"


def schema_names() -> list[str]:
    """`config` and each kind in lower case: the names `campaignctl schema KIND` accepts."""
    return [CONFIG_SCHEMA, *(kind.lower() for kind in KINDS)]


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `config` or of a kind (case-insensitive)."""
    wanted = name.lower()
    if wanted == CONFIG_SCHEMA:
        model, title = WorkspaceConfig, "campaignctl.yaml"
    else:
        matches = [cls for kind, cls in KINDS.items() if kind.lower() == wanted]
        if not matches:
            raise KeyError(name)
        model, title = matches[0], matches[0].__name__
    schema = model.model_json_schema(by_alias=True, mode="validation")
    condition = schema.get("$defs", {}).get("Condition")
    if condition is not None:
        # `category: hotel` and `category: [a, b]` are shorthands for eq / in
        condition["additionalProperties"] = {
            "anyOf": [
                condition["additionalProperties"],
                {"type": ["string", "number", "boolean", "null"]},
                {"type": "array"},
            ],
            "description": "A test on the record attribute of this name.",
        }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema


def schema_file_name(name: str) -> str:
    return f"{name.lower()}.schema.json"


def write_schemas(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Write each schema as `<name>.schema.json` under `out_dir`; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or schema_names():
        path = out_dir / schema_file_name(name)
        with writing(path):
            path.write_text(
                json.dumps(schema_for(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        written.append(path)
    return written


def schema_comment(document_path: Path, workspace_root: Path, name: str) -> str:
    """The `# yaml-language-server: $schema=...` line for a file, with a relative path."""
    import os

    target = workspace_root / SCHEMA_DIR / schema_file_name(name)
    relative = Path(os.path.relpath(target, document_path.parent)).as_posix()
    return f"# yaml-language-server: $schema={relative}"
