"""The object every command receives in `ctx.obj`: settings, the two consoles, the workspace."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from campaignctl.cli.options import ColorMode, EnvVars

if TYPE_CHECKING:
    from rich.console import Console

    from campaignctl.spec.workspace import Workspace
    from campaignctl.store import Store


def color_enabled(mode: ColorMode, stream: TextIO) -> bool:
    """DESIGN.md §2: --color, then NO_COLOR, FORCE_COLOR, TERM=dumb, then whether it is a TTY."""
    if mode == ColorMode.ALWAYS:
        return True
    if mode == ColorMode.NEVER:
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def interactive() -> bool:
    """Whether someone can answer a prompt: stdin is a TTY and CI is not set."""
    return sys.stdin.isatty() and not os.environ.get("CI")


@dataclass
class App:
    workspace_dir: Path | None = None
    debug: bool = False
    color: ColorMode = ColorMode.AUTO
    _workspace: Workspace | None = field(default=None, repr=False)
    _warned_invalid: bool = field(default=False, repr=False)

    def _console(self, stream: TextIO) -> Console:
        from campaignctl.cli.terminal import console

        on = color_enabled(self.color, stream)
        tty = stream.isatty()
        return console(
            width=None if tty or os.environ.get("COLUMNS") else 160,  # logs: do not wrap at 80
            file=stream,
            markup=False,  # user strings such as "[promo]" print as written
            highlight=False,
            force_terminal=on if on else None,
            no_color=not on,
            soft_wrap=True,
        )

    @cached_property
    def out(self) -> Console:
        """stdout: data (tables, plans, JSON)."""
        return self._console(sys.stdout)

    @cached_property
    def err(self) -> Console:
        """stderr: talk (progress, warnings, hints, errors)."""
        return self._console(sys.stderr)

    def use(self, workspace: Path | None) -> App:
        """Let a command's own --workspace override the root one."""
        if workspace is not None:
            self.workspace_dir = workspace
            self._workspace = None
        return self

    def workspace_root(self) -> Path:
        """--workspace DIR (or CAMPAIGNCTL_WORKSPACE), which must hold campaignctl.yaml;
        without either, the nearest workspace from the current directory upward."""
        from campaignctl.spec.files import find_workspace_root

        from_env = os.environ.get(EnvVars.WORKSPACE)
        given_as = (
            f"{EnvVars.WORKSPACE}={from_env}"
            if from_env and Path(from_env) == self.workspace_dir
            else f"--workspace {self.workspace_dir}"
        )
        return find_workspace_root(self.workspace_dir, given_as=given_as)

    def workspace(self) -> Workspace:
        """The loaded workspace, with whatever problems it has (see `valid_workspace`)."""
        if self._workspace is None:
            from campaignctl.spec.workspace import load_workspace

            self._workspace = load_workspace(self.workspace_root(), template_cache=True)
        return self._workspace

    def valid_workspace(self) -> Workspace:
        """The loaded workspace; raises SpecError (exit 65) listing every error otherwise."""
        return self.workspace().require_valid()

    def readable_workspace(self) -> Workspace:
        """The workspace for a command that only reads the store (`report`): a definition with
        errors (a teammate's broken branch) is a warning on stderr, not a refusal. Only a
        broken campaignctl.yaml, which names the store, still raises SpecError (65)."""
        from campaignctl.errors import SpecError

        workspace = self.workspace()
        if workspace.config is None:
            raise SpecError(workspace.errors)
        if workspace.errors and not self._warned_invalid:
            self._warned_invalid = True
            self.err.print(
                f"warning: {len(workspace.errors)} error(s) in the workspace definitions "
                "(`campaignctl validate` lists them); this command reads only the store"
            )
        return workspace

    def table(self, title: str | None, *columns: str, stream: str = "out") -> Any:
        """A rich Table styled for where it goes: box lines on a terminal, ASCII otherwise."""
        from rich import box
        from rich.table import Table

        console = self.out if stream == "out" else self.err
        table = Table(
            title=title,
            title_justify="left",
            box=box.ROUNDED if console.is_terminal else box.ASCII2,
            header_style="bold" if console.is_terminal else "",
        )
        for column in columns:
            table.add_column(column)
        return table

    def store(self, *, readonly: bool = False) -> Store:
        """The workspace's store: CAMPAIGNCTL_STORE, else `store:` from campaignctl.yaml.

        `readonly=True` is for commands that only read stored figures: the definitions may
        have errors (see `readable_workspace`)."""
        from campaignctl.errors import UsageError
        from campaignctl.spec.types import check_store_url
        from campaignctl.store import Store

        workspace = self.readable_workspace() if readonly else self.valid_workspace()
        assert workspace.config is not None
        url = os.environ.get(EnvVars.STORE)
        if url:
            try:
                check_store_url(url)
            except ValueError as exc:
                raise UsageError(
                    f"{EnvVars.STORE}: {exc}", hint=f"fix or unset {EnvVars.STORE}"
                ) from None
        return Store(url or workspace.config.store, root=workspace.root)

    def require_applied(self, store: Store, name: str) -> None:
        """A CAMPAIGN argument that names a campaign of the store, or the one error that says
        why not (`store.campaigns`: 64 with "did you mean", 65 when not applied)."""
        from campaignctl.store import campaigns

        campaigns.require(store, name, defined=self.workspace().campaigns)

    def print_json(self, document: dict[str, Any]) -> None:
        import json

        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")


def get_app(ctx: typer.Context) -> App:
    obj = ctx.find_root().obj
    if not isinstance(obj, App):  # commands invoked without the root callback (library use)
        obj = App()
        ctx.find_root().obj = obj
    return obj


def confirm(given: bool, action: str, *, flag: str = "--yes") -> None:
    """Ask before `action` unless `flag` was given; without a terminal (or under CI) the
    flag is required (exit 64 naming it): never prompt when nobody can answer."""
    from campaignctl.errors import UsageError

    if given:
        return
    if not interactive():
        raise UsageError(
            f"{action} needs confirmation and nobody can answer here",
            hint=f"add {flag} to confirm",
        )
    if not typer.confirm(f"{action}?", err=True):
        raise typer.Exit(1)
