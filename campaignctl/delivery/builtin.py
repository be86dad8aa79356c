"""The built-in transports, registered exactly as a third-party plugin registers its own.

Each factory imports its module lazily, so that `campaignctl validate` never pays
for aiosmtplib or httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaignctl.errors import UsageError
from campaignctl.spec.models import Channel

if TYPE_CHECKING:
    from campaignctl.delivery.transport import Transport, TransportRegistry, TransportSettings


def _email_file(settings: TransportSettings) -> Transport:
    from campaignctl.delivery.file import EmailFileTransport

    return EmailFileTransport(settings.outbox_dir)


def _sms_file(settings: TransportSettings) -> Transport:
    from campaignctl.delivery.file import SmsFileTransport

    return SmsFileTransport(settings.outbox_dir)


def _email_smtp(settings: TransportSettings) -> Transport:
    from campaignctl.delivery.smtp import SmtpTransport

    sender = settings.sender
    if sender is None or sender.smtp is None:
        raise UsageError(
            f"sender {settings.sender_name!r} uses transport smtp but has no smtp: settings",
            hint=f"add senders.{settings.sender_name}.smtp: {{host: ..., port: ...}}",
        )
    return SmtpTransport(
        sender.smtp,
        rate=sender.rate,
        environ=settings.environ,
        setting_prefix=f"senders.{settings.sender_name}.smtp",
    )


def _sms_http(settings: TransportSettings) -> Transport:
    from campaignctl.delivery.http_sms import HttpSmsTransport

    sms = settings.sms
    if sms is None or sms.http is None:
        raise UsageError(
            "sms uses transport http but has no sms.http settings",
            hint="add sms.http: {url: https://..., token_env: SMS_TOKEN} to campaignctl.yaml",
        )
    return HttpSmsTransport(sms.http, rate=sms.rate, environ=settings.environ)


def register(registry: TransportRegistry) -> None:
    """Plugin entry point: the same shape a third-party `campaignctl.transports` plugin has."""
    registry.register(Channel.EMAIL, "file", _email_file)
    registry.register(Channel.EMAIL, "smtp", _email_smtp)
    registry.register(Channel.SMS, "file", _sms_file)
    registry.register(Channel.SMS, "http", _sms_http)
