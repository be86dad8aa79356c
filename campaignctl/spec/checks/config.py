"""Checks of campaignctl.yaml that need the files it names: logo, signature, senders."""

from __future__ import annotations

import typing

from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.files import (
    CONFIG_FILE,
    DOCUMENTS_DIR,
    TEMPLATES_DIR,
)
from campaignctl.spec.loader import SourceMap
from campaignctl.spec.models import (
    Channel,
    EmailTransportKind,
    SmsTransportKind,
    WorkspaceConfig,
)
from campaignctl.spec.transports import transport_problem


class ConfigChecks(CheckerBase):
    """Checks of campaignctl.yaml that need the files it names: logo, signature, senders."""

    def _check_config(self) -> None:
        smap = typing.cast(SourceMap, self.ws.config_map)
        config = typing.cast(WorkspaceConfig, self.config)
        org = config.organization
        for key, folder in (("logo", DOCUMENTS_DIR), ("signature", TEMPLATES_DIR)):
            value = getattr(org, key)
            if not value or (key == "logo" and value.startswith(("http://", "https://"))):
                continue  # a logo given by URL is linked, not embedded
            mark = smap.locate(("organization", key))
            path = self._confined(CONFIG_FILE, mark, value, folder, f"organization.{key}")
            if path is not None and not path.is_file():
                self._report(
                    CONFIG_FILE,
                    mark,
                    "missing-file",
                    f"organization.{key}: file {value!r} not found",
                    f"the path is relative to the workspace root, inside {folder}/",
                )
        for name, system in config.systems.items():
            if system.path:
                mark = smap.locate(("systems", name, "path"))
                self._confined(CONFIG_FILE, mark, system.path, "", f"systems.{name}.path")
        for name, sender in config.senders.items():
            self._check_transport(
                smap, ("senders", name, "transport"), Channel.EMAIL, sender.transport
            )
            if sender.transport == EmailTransportKind.SMTP and sender.smtp is None:
                self._report(
                    CONFIG_FILE,
                    smap.locate(("senders", name, "transport")),
                    "channel",
                    f"sender {name!r} uses transport smtp but has no `smtp:` settings",
                    "add `smtp: {host: ..., port: 587}` or use `transport: file`",
                )
            smtp = sender.smtp
            if sender.transport == EmailTransportKind.SMTP and smtp and smtp.plaintext_auth:
                key = "username_env" if smtp.username_env else "password_env"
                self._report(
                    CONFIG_FILE,
                    smap.locate(("senders", name, "smtp", key)),
                    "plaintext-auth",
                    f"senders.{name}.smtp: AUTH would send the password in clear to "
                    f"{smtp.host} (starttls and tls are off)",
                    "set `starttls: true` (port 587) or `tls: true` (port 465); if the network "
                    "to the server is trusted, set `allow_plaintext_auth: true`",
                )
        sms = config.sms
        if sms is not None:
            self._check_transport(smap, ("sms", "transport"), Channel.SMS, sms.transport)
        if sms is not None and sms.transport == SmsTransportKind.HTTP and sms.http is None:
            self._report(
                CONFIG_FILE,
                smap.locate(("sms", "transport")),
                "channel",
                "sms uses transport http but has no `http:` settings",
                "add `http: {url: ..., token_env: SMS_TOKEN}` or use `transport: file`",
            )

    def _check_transport(
        self, smap: SourceMap, path: tuple[str, ...], channel: Channel, name: str
    ) -> None:
        """A `transport:` names a transport installed for its channel (built in or plugin)."""
        problem = transport_problem(channel, name)
        if problem is not None:
            message, hint = problem
            where = smap.locate(path)
            self._report(CONFIG_FILE, where, "unknown-transport", message, hint)
