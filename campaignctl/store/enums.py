"""Enums stored in the store and shared by every layer that reads or writes those columns.

Values are stored as their strings (never as native database enums), so adding a
member is not a schema migration.
"""

from __future__ import annotations

import enum


class RecordStatus(enum.StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # gone from the source at the last import (kept unless --prune)
    FORGOTTEN = "forgotten"  # personal data erased (`contacts forget`)


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class WaveKind(enum.StrEnum):
    INITIAL = "initial"
    RELAUNCH = "relaunch"
    RECURRENCE = "recurrence"


class WaveStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"


class ResponseStatus(enum.StrEnum):
    TO_PROCESS = "to_process"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class SuppressionReason(enum.StrEnum):
    MANUAL = "manual"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    SMS_STOP = "sms_stop"
    FORGOTTEN = "forgotten"


class Channel(enum.StrEnum):
    """Same values as `campaignctl.spec.models.Channel`, without importing pydantic here."""

    EMAIL = "email"
    SMS = "sms"
