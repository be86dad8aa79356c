"""The shared vocabulary of every layer: channels, wave kinds, and the states the store keeps.

Standard library only, at the bottom of the layers, so that the spec models, the
store, the renderer, the scheduler and the CLI (whose start-up must stay light)
all use the same enums. The store keeps their values as strings (never as native
database enums), so adding a member is not a schema migration.
"""

from __future__ import annotations

import enum


class CampaignType(enum.StrEnum):
    QUESTIONNAIRE = "questionnaire"
    MESSAGE = "message"
    INFORMATION = "information"


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
    AUTOMATION = "automation"  # one send step of an automation, for the records at it


class WaveStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"


class WaveState(enum.StrEnum):
    """A wave as people see it (its stored status, refined by its outbox rows)."""

    SCHEDULED = "scheduled"
    SENDING = "sending"  # rows due now or in flight
    HELD = "held"  # SMS held by quiet hours, nothing due
    WAITING = "waiting"  # rows waiting for a retry, nothing due
    INCOMPLETE = "incomplete"  # nothing left to send, but uncertain rows to decide on
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"


# What the campaign list says of a campaign (`report --status`): its last wave's state,
# or "never sent".
ListStatus = enum.StrEnum(
    "ListStatus", [*((s.name, s.value) for s in WaveState), ("NEVER_SENT", "never sent")]
)


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"
    # the transport may or may not have delivered it (connection lost after the end of
    # data, or a sender killed mid-batch): never re-sent unless `send --retry-uncertain`
    UNCERTAIN = "uncertain"

    # The state sets every layer counts by, each defined here once (plan, send, relaunch,
    # the report and the event writer all use these).

    @classmethod
    def received(cls) -> tuple[OutboxState, ...]:
        """A message that went out: `exclude_campaigns`, an event's attribution to a message,
        a report's "sent"."""
        return (cls.SENT, cls.BOUNCED)

    @classmethod
    def toward_cap(cls) -> tuple[OutboxState, ...]:
        """A message that counts towards `max_messages_per_contact`, in plan, send and
        relaunch alike: one that went out, may have (sending, uncertain) or is about to
        (queued in another wave). Only a message that surely never left (failed,
        suppressed, skipped) does not count: never past the cap, whatever comes back."""
        return (cls.QUEUED, cls.SENDING, cls.SENT, cls.BOUNCED, cls.UNCERTAIN)

    @classmethod
    def final(cls) -> tuple[OutboxState, ...]:
        """Nothing more will happen to the message."""
        return (cls.SENT, cls.FAILED, cls.BOUNCED, cls.SUPPRESSED, cls.SKIPPED)


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
    EMAIL = "email"
    SMS = "sms"


class BadgeState(enum.StrEnum):
    """Where one record's badge stands in one CRM system (`export push|withdraw`)."""

    PENDING = "pending"  # has its idempotency key; not confirmed by the system yet
    SENT = "sent"  # the system accepted it
    FAILED = "failed"  # refused by the system (4xx): the next push tries it again, same key
    WITHDRAWING = "withdrawing"  # a withdraw started; not confirmed yet
    WITHDRAWN = "withdrawn"  # the system confirmed the withdrawal


class TransferAction(enum.StrEnum):
    PUSH = "push"
    WITHDRAW = "withdraw"
