"""The real SMTP server of the delivery tests, for scheduler tests that must hold or cut a
send in the middle (a worker killed mid-wave, two ticks at once)."""

from tests.delivery.conftest import smtp_server

__all__ = ["smtp_server"]
