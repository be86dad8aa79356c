"""Workspace commands: `init`, `validate`, `schema`."""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from campaignctl.cli.app import get_app
from campaignctl.cli.options import WorkspaceOption
from campaignctl.cli.terminal import safe_text
from campaignctl.errors import ExitCode, UsageError, writing


class ValidateFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to create the workspace.")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that already exist.")
    ] = False,
) -> None:
    """Create a workspace with a commented example of every kind.

    Writes campaignctl.yaml, an audience with a small CSV and two segments, a
    questionnaire, one campaign of each type, templates, JSON Schemas for
    editors, and a .gitignore for the local state in .campaignctl/.

    Example: campaignctl init my-campaigns && cd my-campaigns && campaignctl validate
    """
    from campaignctl.scaffold import create_workspace

    app = get_app(ctx)
    written = create_workspace(directory, force=force)
    for path in written:
        app.err.print(f"created {path}")
    app.err.print(f"Workspace ready in {directory}. Next: cd {directory} && campaignctl validate")


def validate(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to report on (default: the whole workspace)."),
    ] = None,
    output_format: Annotated[
        ValidateFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="text, json, or github (default: github when "
            "GITHUB_ACTIONS=true, text otherwise).",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Also write a JUnit XML report (one test case per file)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check every definition: YAML, keys, values, references, templates, schedules.

    Reports all problems in one pass as `path:line:col: error[code]: message` with a
    hint, and exits 65 when there is an error (warnings fail only with --strict).

    Example: campaignctl validate campaigns/ --format json
    """
    from campaignctl.spec.validation import github_annotation
    from campaignctl.spec.validation import junit_xml as to_junit
    from campaignctl.spec.validation import validate as run_validation

    app = get_app(ctx).use(workspace)
    if output_format is None:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
        output_format = ValidateFormat.GITHUB if github else ValidateFormat.TEXT
    result = run_validation(app.workspace_root(), paths)
    if output_format == ValidateFormat.JSON:
        app.print_json(result.as_json(strict))
    else:
        for diagnostic in result.diagnostics:
            line = (
                github_annotation(diagnostic)
                if output_format == ValidateFormat.GITHUB
                else diagnostic.format()
            )
            sys.stdout.write(safe_text(line) + "\n")
        app.err.print(result.summary())
    if junit_xml is not None:
        with writing(junit_xml):
            junit_xml.write_bytes(to_junit(result))
    if result.failed(strict):
        raise typer.Exit(ExitCode.DATA)


def schema(
    ctx: typer.Context,
    kind: Annotated[
        str | None,
        typer.Argument(
            help="config, audience, segment, questionnaire, campaign or list (default: all)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Write NAME.schema.json files into this folder instead of printing.",
        ),
    ] = None,
) -> None:
    """Print or write the JSON Schema of each kind, from the models the loader uses.

    Point your editor at them with a first line such as
    `# yaml-language-server: $schema=../schemas/campaign.schema.json`.

    Example: campaignctl schema --out schemas/
    """
    from campaignctl.spec.schema import schema_for, schema_names, write_schemas

    app = get_app(ctx)
    names = schema_names()
    if kind is not None and kind.lower() not in names:
        raise UsageError(f"unknown kind {kind!r}", hint=f"use one of {', '.join(names)}")
    selected = [kind.lower()] if kind else names
    if out is not None:
        for path in write_schemas(out, selected):
            app.err.print(f"wrote {path}")
        return
    if kind:
        app.print_json(schema_for(kind))
    else:
        app.print_json({"format_version": 1, "schemas": {n: schema_for(n) for n in names}})


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Definitions")(init)
    app.command(rich_help_panel="Definitions")(validate)
    app.command(rich_help_panel="Definitions")(schema)
