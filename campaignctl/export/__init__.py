"""CRM exports (DESIGN.md §6): badges per segment × channel cell, pushed to and withdrawn
from CSV drops and webhooks, resumable without a second idempotency key for any badge."""

from campaignctl.export.cells import BadgeSpec, Selection
from campaignctl.export.status import ExportStatus, export_status
from campaignctl.export.transfer import (
    SystemResult,
    TransferOptions,
    TransferResult,
    push_badges,
    withdraw_badges,
)

__all__ = [
    "BadgeSpec",
    "ExportStatus",
    "Selection",
    "SystemResult",
    "TransferOptions",
    "TransferResult",
    "export_status",
    "push_badges",
    "withdraw_badges",
]
