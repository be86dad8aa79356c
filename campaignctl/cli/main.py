"""The `campaignctl` root command: global options, sub-apps, and the exit-code mapping.

Start-up is a feature: nothing heavy (SQLAlchemy, Jinja, aiosmtplib, the web
stack) is imported here; commands import what they need. (Recent typer releases import
pydantic themselves: the command scripts poll, a remembered `segment show --count`, is
answered by `campaignctl.cli.entry` before this module is imported.)
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_name
from typer.models import CommandInfo, TyperInfo

try:  # typer >= 0.20 vendors click; older releases use the click package
    import typer._click as click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef]
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from campaignctl import __version__
from campaignctl.cli.app import App
from campaignctl.cli.options import ColorMode, EnvVars, WorkspaceOption
from campaignctl.cli.terminal import safe_text
from campaignctl.errors import CampaignctlError, ExitCode, NoSpaceLeft, disk_full

EPILOG = (
    "Exit codes: 0 success; 1 the operation failed; 2 changes present (only with "
    "--detailed-exitcode); 64 usage error; 65 invalid definitions or data; 69 a service is "
    "unreachable; 70 internal error (a bug); 75 temporary failure, retry later (send, tick: "
    "messages held or waiting for a retry go out by themselves; 1 wins over 75).\n\n"
    "Example: campaignctl init my-campaigns && cd my-campaigns && campaignctl validate"
)


def _debug_requested(args: list[str]) -> bool:
    return "--debug" in args or os.environ.get(EnvVars.DEBUG, "").lower() in ("1", "true", "yes")


class CampaignctlGroup(TyperGroup):
    """A root group whose `main` turns every exception into one paragraph and an exit code.

    Living in `main` (not in a wrapper script) means typer's CliRunner sees the same
    exit codes and messages as a user does.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names: TyperGroup's would build every command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """TyperGroup's list of commands and their one-line help, from stand-ins."""
        rows = [(name, self.commands.summary(name)) for name in self.list_commands(ctx)]
        rows = [(name, command) for name, command in rows if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = _debug_requested(argv)
        code = _run(
            lambda: super(CampaignctlGroup, self).main(
                argv, prog_name or "campaignctl", complete_var, standalone_mode=False, **extra
            ),
            debug,
        )
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _interrupted(exc):
                # what failed is the clean-up after a Ctrl-C (a PostgreSQL connection still
                # busy with the interrupted query cannot be reset): the interrupt it is
                raise typer.Abort() from exc
            raise
        except KeyboardInterrupt as exc:  # typer would make it a silent exit 130
            raise typer.Abort() from exc


def _run(invoke: Any, debug: bool) -> int:
    try:
        result = invoke()
    except CampaignctlError as exc:
        _say(exc.render())
        if debug:
            traceback.print_exc()
        return int(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError as exc:
        _say(exc.ctx.get_help() if exc.ctx else str(exc))
        return int(ExitCode.USAGE)
    except click_exceptions.ClickException as exc:  # usage errors, bad file arguments
        exc.show()
        return int(ExitCode.USAGE)  # click says 2; 2 means "changes present" here
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _say("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `campaignctl ... | head`
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's last flush
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if disk_full(exc):  # where the path was known, a NoSpaceLeft named it already
            error = NoSpaceLeft(getattr(exc, "filename", None) or "the device")
            _say(error.render())
            return int(error.exit_code)
        _say(
            f"internal error: {_internal(exc)}\n"
            "  hint: this is a bug in campaignctl. Run the command again with --debug "
            f"(or {EnvVars.DEBUG}=1) to see the traceback, and report it with that output."
        )
        return int(ExitCode.SOFTWARE)
    return result if isinstance(result, int) else 0


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` is, or was raised while handling, a Ctrl-C."""
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        cause = chain.pop()
        if cause is None or id(cause) in seen:
            continue
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        chain += [cause.__cause__, cause.__context__]
    return False


def _internal(exc: BaseException) -> str:
    """What went wrong, in one line. A store error says what its driver said, without the
    SQL and the values bound to it (records' addresses and data; --debug shows them)."""
    orig = getattr(exc, "orig", None)
    if orig is not None and hasattr(exc, "statement"):
        lines = str(orig).strip().splitlines()
        return f"{type(orig).__name__}: {lines[0] if lines else ''}"
    return f"{type(exc).__name__}: {exc}"


def _say(text: str) -> None:
    sys.stderr.write(safe_text(text.rstrip("\n")) + "\n")
    sys.stderr.flush()


app = typer.Typer(
    cls=CampaignctlGroup,
    name="campaignctl",
    help="Campaigns as code: validate, plan, preview, lock, send, relaunch and report "
    "email, SMS and questionnaire campaigns kept as YAML and Jinja files.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"campaignctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar=EnvVars.DEBUG, show_envvar=True, help="Show tracebacks of errors."
        ),
    ] = False,
    color: Annotated[
        ColorMode,
        typer.Option(
            "--color",
            envvar=EnvVars.COLOR,
            show_envvar=True,
            help="Colour: auto follows NO_COLOR, FORCE_COLOR, TERM=dumb and the TTY.",
        ),
    ] = ColorMode.AUTO,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = App(workspace_dir=workspace, debug=debug, color=color)


# Every command of the root, by name, with the cli module whose `register` adds it, in the
# order `--help` lists them (typer's: the commands, then the groups). The root builds a
# command (typer's analysis of its parameters) only when it is looked up: a command line
# builds the one it runs, `--help` none (it lists them from their help text).
# tests/test_cli_surface.py checks this table against what the modules register.
COMMANDS: dict[str, str] = {
    "init": "workspace", "validate": "workspace", "schema": "workspace", "preview": "preview",
    "plan": "plan", "show": "plan", "apply": "plan", "lock": "plan", "unlock": "plan",
    "send": "send", "relaunch": "relaunch", "report": "report", "calendar": "calendar",
    "serve": "serve", "audience": "audience", "segment": "segment", "list": "lists",
    "contacts": "contacts", "suppress": "contacts", "campaign": "campaign", "events": "events",
    "export": "export", "responses": "responses", "scheduler": "scheduler", "lease": "lease",
    "db": "db",
}  # fmt: skip


@functools.cache
def registered(module: str) -> typer.Typer:
    """A Typer holding what `campaignctl.cli.<module>` registers (the module imported once)."""
    holder = typer.Typer()
    importlib.import_module(f"campaignctl.cli.{module}").register(holder)
    return holder


def _registration(name: str) -> CommandInfo | TyperInfo:
    """What the module of command `name` registered for it."""
    holder = registered(COMMANDS[name])
    for command in holder.registered_commands:
        if (command.name or get_command_name(command.callback.__name__)) == name:
            return command
    for group in holder.registered_groups:
        if group.name == name:
            return group
    raise LookupError(f"campaignctl.cli.{COMMANDS[name]} registers no command {name!r}")


def _build(name: str) -> click.Command:
    """The click command typer makes of `name`, with the root's settings, as it would as part
    of the whole tree."""
    info = _registration(name)
    alone = typer.Typer(
        rich_markup_mode=app.rich_markup_mode,
        pretty_exceptions_enable=app.pretty_exceptions_enable,
        pretty_exceptions_short=app.pretty_exceptions_short,
        add_completion=False,
    )
    if isinstance(info, TyperInfo):
        alone.registered_groups.append(info)
        return typer.main.get_group(alone).commands[name]
    alone.registered_commands.append(info)
    return typer.main.get_command(alone)


def _stand_in(name: str) -> click.Command:
    """A command without parameters carrying the help texts typer would give `name`: enough
    for the list of commands, for a fraction of the cost of the command."""
    info = _registration(name)
    if isinstance(info, TyperInfo):
        info = typer.main.solve_typer_info_defaults(info)
        text = info.help
    else:
        text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
    return TyperCommand(
        name,
        help=text,
        short_help=info.short_help,
        hidden=info.hidden,
        deprecated=info.deprecated,
        rich_markup_mode=app.rich_markup_mode,
    )


class LazyCommands(MutableMapping[str, click.Command]):
    """The root's commands by name (`COMMANDS`), each built the first time it is looked up."""

    def __init__(self, added: Mapping[str, click.Command]) -> None:
        self._names = list(COMMANDS)
        self._built: dict[str, click.Command] = {}
        for name, command in added.items():
            self[name] = command

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = _build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def summary(self, name: str) -> click.Command:
        """The command if it was built, else its stand-in: what the list of commands needs."""
        return self._built.get(name) or _stand_in(name)


def main() -> None:
    """Console-script entry point."""
    app()
