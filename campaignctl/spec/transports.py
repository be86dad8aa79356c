"""Which transports a workspace may name: the built-in ones and those installed plugins add.

A transport plugin is a module function `register(registry)` that calls
`registry.register(channel, name, factory)` for each transport it provides. The
built-in transports (`file` and `smtp` for email, `file` and `http` for SMS) are one
such plugin, `campaignctl.delivery.builtin:register`, loaded by the same call as the
functions third-party packages name in the `campaignctl.transports` entry-point
group (as datasette's own plugins use the hooks a third-party plugin uses):

    [project.entry-points."campaignctl.transports"]
    ses = "campaignctl_ses:register"

The registry lives here, below `delivery/`, because `validate` checks the
`transport:` names of `campaignctl.yaml` against it (with the list of installed
transports and a "did you mean"); the send engine creates transports from it.
Factories, and the modules behind them, are imported only when a transport is made.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from campaignctl.enums import Channel
from campaignctl.errors import UsageError
from campaignctl.spec.models import EmailTransportKind, SmsTransportKind
from campaignctl.spec.types import TRANSPORT_NAME_PATTERN

ENTRY_POINT_GROUP = "campaignctl.transports"
BUILTIN_PLUGINS = ("campaignctl.delivery.builtin:register",)
# the names the built-in plugin registers: a workspace naming only these never loads plugins
BUILTIN_NAMES = {Channel.EMAIL: tuple(EmailTransportKind), Channel.SMS: tuple(SmsTransportKind)}
_NAME = re.compile(TRANSPORT_NAME_PATTERN)

# settings -> transport (`delivery.transport.TransportSettings` -> `Transport`), typed loosely:
# spec/ sits below delivery/ and names none of its types
TransportFactory = Callable[[Any], Any]


class UnknownTransportError(UsageError):
    """No plugin registered a transport of that name for that channel."""


class PluginError(UsageError):
    """An installed transport plugin cannot be loaded or fails to register."""


class TransportRegistry:
    """Maps (channel, transport name) to a factory. Plugins fill it through `register`."""

    def __init__(self) -> None:
        self._factories: dict[tuple[Channel, str], TransportFactory] = {}

    def register(self, channel: Channel, name: str, factory: TransportFactory) -> None:
        """Make `name` usable as `transport:` of `channel`; a later registration replaces."""
        if not _NAME.match(name):
            raise ValueError(
                f"transport name {name!r}: use lower-case letters, digits, '.', '-' and '_'"
            )
        self._factories[(Channel(channel), name)] = factory

    def names(self, channel: Channel) -> list[str]:
        """The transport names available for `channel`, sorted."""
        return sorted(name for ch, name in self._factories if ch == channel)

    def create(self, channel: Channel, name: str, settings: Any) -> Any:
        """A new, unopened transport."""
        try:
            factory = self._factories[(Channel(channel), name)]
        except KeyError:
            raise UnknownTransportError(
                unknown_message(channel, name, self.names(channel)),
                hint=unknown_hint(name, self.names(channel)),
            ) from None
        return factory(settings)

    def load_plugin(self, target: str) -> None:
        """Import `module:function` and call it with this registry."""
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        register = getattr(module, attr or "register")
        register(self)

    def load_entry_point(self, entry: EntryPoint) -> None:
        """Load one installed plugin; a broken one is an error naming its package."""
        package = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "a package"
        try:
            entry.load()(self)
        except Exception as exc:
            raise PluginError(
                f"the transport plugin {entry.name!r} ({package}, entry point {entry.value} "
                f"in group {ENTRY_POINT_GROUP}) cannot be loaded: {type(exc).__name__}: {exc}",
                hint="reinstall that package, or uninstall it if you no longer use it",
            ) from exc


_default: TransportRegistry | None = None


def default_registry() -> TransportRegistry:
    """The registry with the built-in plugin and every installed entry-point plugin."""
    global _default
    if _default is None:
        registry = TransportRegistry()
        for target in BUILTIN_PLUGINS:
            registry.load_plugin(target)
        for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            registry.load_entry_point(entry)
        _default = registry
    return _default


def unknown_message(channel: Channel, name: str, installed: list[str]) -> str:
    return (
        f"no {channel} transport named {name!r} is installed "
        f"(installed: {', '.join(installed) or 'none'})"
    )


def unknown_hint(name: str, installed: list[str]) -> str:
    close = difflib.get_close_matches(name, installed, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return (
        f"install the package that provides it (it registers {name!r} in the entry point "
        f"group {ENTRY_POINT_GROUP}), or use one of the installed transports"
    )


def transport_problem(channel: Channel, name: str) -> tuple[str, str] | None:
    """(message, hint) when no installed transport of `channel` is called `name`, else None.
    A built-in name is answered without loading any plugin (start-up time)."""
    if name in BUILTIN_NAMES[Channel(channel)]:
        return None
    installed = default_registry().names(channel)
    if name in installed:
        return None
    return unknown_message(channel, name, installed), unknown_hint(name, installed)
