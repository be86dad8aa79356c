"""Guards on the command line as a whole: documented commands, layering, start-up weight."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command

import campaignctl
from campaignctl.cli.main import app

REPO = Path(__file__).resolve().parent.parent


def _commands() -> list[tuple[str, object]]:
    """(full name, click command) for every leaf command."""
    found = []

    def walk(command, prefix: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in sorted(subcommands.items()):
                walk(sub, f"{prefix} {name}".strip())
        else:
            found.append((prefix, command))

    walk(get_command(app), "")
    return found


COMMANDS = _commands()


def test_there_are_commands() -> None:
    assert {"init", "validate", "schema"} <= {name for name, _ in COMMANDS}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_with_an_example(name: str, command) -> None:
    text = command.help or ""
    assert text.strip(), f"`campaignctl {name}` has no help text"
    assert "Example: campaignctl " in text, f"`campaignctl {name}` --help shows no example"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_is_in_the_readme(name: str, command) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"campaignctl {name}" in readme, f"README.md never mentions `campaignctl {name}`"


def test_the_root_builds_each_command_as_typer_builds_the_whole_tree() -> None:
    """`COMMANDS` names what the cli modules register, in typer's order; a command built
    alone, and the stand-in the list of commands shows, say what the whole tree says."""
    from campaignctl.cli.main import COMMANDS

    whole = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    for module in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"campaignctl.cli.{module}").register(whole)
    eager = get_command(whole)
    root = get_command(app)
    assert list(eager.commands) == list(COMMANDS) == root.list_commands(typer.Context(root))
    for name, command in eager.commands.items():
        stand_in = root.commands.summary(name)
        assert stand_in.get_short_help_str(60) == command.get_short_help_str(60), name
        assert stand_in.hidden == command.hidden, name
        built = root.commands[name]
        assert type(built) is type(command), name
        assert built.get_help(typer.Context(built, info_name=name)) == command.get_help(
            typer.Context(command, info_name=name)
        ), name


def test_a_command_line_builds_only_the_command_it_runs() -> None:
    root = get_command(app)
    root.commands["send"]
    assert list(root.commands._built) == ["send"]


def test_help_and_version_work() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0 success" in result.stdout
    version = runner.invoke(app, ["--version"])
    assert version.stdout == f"campaignctl {campaignctl.__version__}\n"


def test_library_never_imports_the_cli_stack() -> None:
    """Everything below cli/ is usable without typer or rich (STYLE.md: a thin CLI)."""
    import ast

    package = Path(campaignctl.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "cli" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("typer", "rich", "click")
            ]
    assert offenders == []
    # and at run time, importing every library module loads no typer (httpx alone may
    # load rich and click for its own optional command line)
    code = (
        "import sys, importlib, pkgutil, campaignctl\n"
        "names = [m.name for m in pkgutil.walk_packages(campaignctl.__path__, 'campaignctl.')\n"
        "         if not m.name.startswith('campaignctl.cli') and '.migrations' not in m.name]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] == 'typer'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, bad = out.stdout.split(" ", 1)
    assert int(count) > 5
    assert bad.strip() == "[]", out.stdout


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from campaignctl.cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'jinja2', 'aiosmtplib', 'starlette', 'uvicorn', "
        "'httpx', 'pydantic', 'yaml', 'phonenumbers', 'alembic', 'apscheduler')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr


def test_every_module_imports() -> None:
    for module in pkgutil.walk_packages(campaignctl.__path__, "campaignctl."):
        if ".migrations" not in module.name:  # Alembic scripts run inside Alembic only
            importlib.import_module(module.name)


def test_typer_is_the_cli_framework() -> None:
    assert isinstance(app, typer.Typer)


def test_tracebacks_only_with_debug(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    plain = CliRunner().invoke(app, ["validate"])
    assert plain.exit_code == 64 and "Traceback" not in plain.stderr
    debug = CliRunner().invoke(app, ["--debug", "validate"])
    assert debug.exit_code == 64
    assert "Traceback (most recent call last)" in debug.stderr
    assert "campaignctl.errors.UsageError: no campaignctl.yaml found" in debug.stderr
