"""The store's tables (SQLAlchemy Core), designed for every layer at once.

spec → store → plan → lock → outbox → transports → events → report (DESIGN.md §3):
records come from `audience import`; campaigns, locks and their recipients from
`apply` and `lock`; waves and the outbox from `send`, `relaunch` and the
scheduler; events, responses and suppressions from what happens next. The
schema itself is owned by the Alembic migrations in `store/migrations/`; these
tables are what the code queries and what `alembic revision --autogenerate`
compares against.

Core tables rather than ORM models: every query in the code is set-based SQL over
them, and building nineteen SQLModel classes (pydantic models and ORM mappers) cost
every command about 0.2 s of start-up (benchmarks/compare.py).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from campaignctl.enums import (
    BadgeState,
    CampaignState,
    OutboxState,
    RecordStatus,
    ResponseStatus,
    SuppressionReason,
    TransferAction,
    WaveKind,
    WaveStatus,
)

metadata = sa.MetaData()

# JSON everywhere; JSONB on PostgreSQL so that segments can index into attributes.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE taking aware datetimes only and giving them back in UTC
    (SQLite keeps UTC without an offset). What the SQLModel tables used to declare."""

    impl = sa.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        if isinstance(value, timedelta):
            return sa.Interval()
        return self

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("a datetime without a time zone for a UTC column: give an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    """A VARCHAR holding the enum's value (not a native enum: new members need no migration)."""
    return sa.Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _fk(name: str, target: str, ondelete: str = "CASCADE", nullable: bool = False) -> Any:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _text(name: str, length: int | None = None, nullable: bool = True, **kw: Any) -> Any:
    return sa.Column(name, sa.String(length), nullable=nullable, **kw)


def _at(name: str, nullable: bool = True) -> Any:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _int(name: str, nullable: bool = True, **kw: Any) -> Any:
    return sa.Column(name, sa.Integer, nullable=nullable, **kw)


def _json(name: str) -> Any:
    return sa.Column(name, JSONType)


# One row: the serial every write bumps (a saved plan records it to detect staleness).
STORE_STATE = sa.Table(
    "store_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, default=1),
    sa.Column("serial", sa.BigInteger, nullable=False, default=0),
    _at("updated_at"),
)

# One record of an audience (a provider, a donor…): not a person; addresses may repeat.
RECORD = sa.Table(
    "record",
    metadata,
    _id(),
    _text("audience", 100, nullable=False),
    _text("key", 200, nullable=False),
    _text("email"),  # as normalised by import (domain lower-cased)
    _text("email_normalized"),  # fully lower-cased: grouping and suppression matching
    _text("phone", 20),  # E.164
    # channels ("email", "sms", "email,sms") whose source address was invalid and dropped
    _text("invalid_addresses", 16),
    _text("category"),
    _json("attributes"),
    sa.Column("status", _enum(RecordStatus), nullable=False, default=RecordStatus.ACTIVE),
    # hash of the raw source cells: an unchanged row is recognised without re-normalising it
    sa.Column("source_hash", sa.BigInteger),
    _at("created_at", nullable=False),
    _at("updated_at", nullable=False),
    _at("removed_at"),
    sa.UniqueConstraint("audience", "key", name="uq_record_audience_key"),
    sa.Index("ix_record_audience_status", "audience", "status"),
    sa.Index("ix_record_audience_category", "audience", "category"),
    sa.Index("ix_record_email_normalized", "email_normalized"),
    sa.Index("ix_record_phone", "phone"),
    # events naming campaign + record find the record by its key (revision 0005)
    sa.Index("ix_record_key", "key"),
)

# A campaign as applied (`campaignctl apply`): its definition, options and life state.
CAMPAIGN = sa.Table(
    "campaign",
    metadata,
    _id(),
    _text("name", 100, nullable=False, unique=True),
    _text("type", 20, nullable=False),
    _text("category"),
    _json("definition"),  # the spec model as JSON
    _text("content_hash", 64, nullable=False),  # of the definition and its templates
    _json("options"),
    sa.Column("state", _enum(CampaignState), nullable=False, default=CampaignState.DRAFT),
    _text("git_commit", 64),
    _at("applied_at", nullable=False),
    _at("frozen_at"),  # options frozen (first send)
    _at("first_sent_at"),
    _at("archived_at"),
)

# A frozen snapshot of a campaign: recipients and content hashes (`campaignctl lock`).
LOCK = sa.Table(
    "campaign_lock",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _at("created_at", nullable=False),
    _at("released_at"),  # unlocked or replaced by `lock --refresh`
    _text("git_commit", 64),
    _text("definition_hash", 64, nullable=False),
    _json("content_hashes"),  # template path -> hash
    _json("counts"),  # the frozen figures
    sa.Index("ix_campaign_lock_campaign", "campaign_id", "released_at"),
)

# One record × channel of a lock: who the campaign reaches, through which segment.
RECIPIENT = sa.Table(
    "recipient",
    metadata,
    _id(),
    _fk("lock_id", "campaign_lock.id"),
    _fk("record_id", "record.id"),
    _text("channel", 8, nullable=False),
    _text("address", nullable=False),  # normalised email or E.164 phone
    _text("segment"),
    _text("group_key"),  # same value = one message listing several records
    sa.UniqueConstraint("lock_id", "record_id", "channel", name="uq_recipient"),
    sa.Index("ix_recipient_lock_group", "lock_id", "channel", "group_key"),
    sa.Index("ix_recipient_record", "record_id"),
)

# One sending of a campaign: the initial send, a relaunch or a recurrence occurrence.
WAVE = sa.Table(
    "wave",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _int("number", nullable=False),
    sa.Column("kind", _enum(WaveKind), nullable=False),
    _text("occurrence_key", 100, nullable=False),
    _at("scheduled_for"),
    sa.Column("status", _enum(WaveStatus), nullable=False, default=WaveStatus.SCHEDULED),
    _fk("lock_id", "campaign_lock.id", ondelete="SET NULL", nullable=True),
    _text("target"),  # relaunch target: non_responders, non_openers, failed, all
    _json("channels"),
    _at("created_at", nullable=False),
    _at("started_at"),
    _at("finished_at"),
    _text("note"),  # e.g. "missed: 7h late", "02:30 does not exist, ran at 03:00"
    sa.UniqueConstraint("campaign_id", "number", name="uq_wave_number"),
    # a scheduled occurrence or relaunch rule can never create its wave twice
    sa.UniqueConstraint("campaign_id", "occurrence_key", name="uq_wave_occurrence"),
    sa.Index("ix_wave_due", "status", "scheduled_for"),
)

# One message: recipient × channel × wave, and where it is in its delivery.
OUTBOX = sa.Table(
    "outbox",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _fk("wave_id", "wave.id"),
    _fk("record_id", "record.id", ondelete="SET NULL", nullable=True),
    _text("group_key"),
    _text("segment"),
    _text("channel", 8, nullable=False),
    _text("address", nullable=False),
    sa.Column("state", _enum(OutboxState), nullable=False, default=OutboxState.QUEUED),
    _text("reason"),  # why suppressed or skipped
    _int("attempts", nullable=False, default=0),
    _at("next_attempt_at"),
    _text("claimed_by"),
    _at("lease_expires_at"),
    _text("message_id", unique=True),
    _text("provider_id"),
    _text("error"),
    _int("sms_parts"),
    _at("created_at", nullable=False),
    _at("updated_at", nullable=False),
    _at("sent_at"),
    # never two messages of the same wave to the same address
    sa.UniqueConstraint("wave_id", "channel", "address", name="uq_outbox_wave_address"),
    sa.Index("ix_outbox_claim", "wave_id", "state", "next_attempt_at"),
    sa.Index("ix_outbox_lease", "state", "lease_expires_at"),
    sa.Index("ix_outbox_campaign_state", "campaign_id", "state"),
    sa.Index("ix_outbox_record", "record_id"),
    sa.Index("ix_outbox_address", "channel", "address"),
    # the first message with a provider's id, in id order (revision 0011)
    sa.Index("ix_outbox_provider", "provider_id", "id"),
    # report: distinct records per campaign by one ordered, covering scan (revision 0003)
    sa.Index("ix_outbox_campaign_record", "campaign_id", "record_id", "state", "channel"),
    sa.Index(
        "ix_outbox_grouped",
        "campaign_id",
        "wave_id",
        "channel",
        "group_key",
        sqlite_where=sa.text("group_key IS NOT NULL"),
        postgresql_where=sa.text("group_key IS NOT NULL"),
    ),
)

# A slice of claimed outbox rows a send handed to its transport, written (committed) just
# before they went: after a crash, what the dead sender may have sent (revision
# 0005_outbox_handover). `messages` is JSON `[[outbox id, message id], …]`; `done_at` is
# set once every message of the slice has its outcome. The send deletes the row when it
# records the batch.
HANDOVER = sa.Table(
    "outbox_handover",
    metadata,
    _id(),
    _fk("wave_id", "wave.id"),
    _text("holder", 200, nullable=False),
    _text("messages", nullable=False),
    _at("handed_at", nullable=False),
    _at("done_at"),
    sa.Index("ix_outbox_handover_holder", "wave_id", "holder"),
)

# Something that happened to a message or record (DESIGN.md §3); idempotent by id.
EVENT = sa.Table(
    "event",
    metadata,
    _text("id", 64, nullable=False, primary_key=True),  # given id, or a hash of the line
    _text("type", 32, nullable=False),
    _text("message_id"),
    _fk("outbox_id", "outbox.id", ondelete="SET NULL", nullable=True),
    _fk("campaign_id", "campaign.id", ondelete="SET NULL", nullable=True),
    _fk("record_id", "record.id", ondelete="SET NULL", nullable=True),
    _text("record_key"),
    _text("address"),
    _text("channel", 8),
    _at("at", nullable=False),
    _json("data"),
    _at("received_at", nullable=False),
    # per campaign and type: the report's counts of distinct messages and records, the
    # answers' times, and (with the campaign) a message's events (revision 0011)
    sa.Index("ix_event_campaign", "campaign_id", "type", "outbox_id", "record_id", "at"),
    sa.Index("ix_event_record", "record_id", "type"),
)

# Questionnaire answers for one record, reviewed by a person before updating the record.
RESPONSE = sa.Table(
    "response",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _fk("record_id", "record.id", ondelete="SET NULL", nullable=True),
    _fk("outbox_id", "outbox.id", ondelete="SET NULL", nullable=True),
    _json("data"),  # the answers as submitted
    _json("changes"),  # field -> {old, new, decision}
    sa.Column("status", _enum(ResponseStatus), nullable=False, default=ResponseStatus.TO_PROCESS),
    _at("submitted_at", nullable=False),
    _at("processed_at"),
    _text("processed_by"),
    sa.Index("ix_response_campaign_status", "campaign_id", "status"),
    sa.Index("ix_response_record", "record_id"),
)

# An address never to contact on a channel, for one category or (category NULL) all.
SUPPRESSION = sa.Table(
    "suppression",
    metadata,
    _id(),
    _text("channel", 8, nullable=False),
    _text("address"),  # NULL once forgotten: only the hash remains
    _text("address_hash", 64, nullable=False),  # sha256 of the normalised address
    _text("category"),
    sa.Column("reason", _enum(SuppressionReason), nullable=False),
    _text("source"),  # command, event id, campaign…
    _at("created_at", nullable=False),
    sa.Index(
        "uq_suppression",
        "channel",
        "address_hash",
        sa.text("coalesce(category, '')"),
        unique=True,
    ),
    # whether one applies to a record's address: a probe per record (revision 0012)
    sa.Index("ix_suppression_address", "channel", "address"),
)

# Work that must never overlap (a send, the scheduler): who holds it and until when.
LEASE = sa.Table(
    "lease",
    metadata,
    _text("name", 200, nullable=False, primary_key=True),
    _text("holder", 200, nullable=False),  # host:pid
    _text("operation", 100, nullable=False),
    _at("since", nullable=False),
    _at("heartbeat_at", nullable=False),
    _at("expires_at", nullable=False),
)

# What changed the store, by whom: imports, applies, locks, forget, suppressions.
AUDIT_LOG = sa.Table(
    "audit_log",
    metadata,
    _id(),
    _at("at", nullable=False),
    _text("actor"),
    _text("action", 50, nullable=False),
    _text("object"),
    _json("data"),
    sa.Index("ix_audit_log_object", "object", "at"),
)

# A record in a `kind: List` (DESIGN.md §5). Removing a member keeps its row with
# `removed_at` set, so that `list_removed` triggers see it; adding it back clears it.
LIST_MEMBER = sa.Table(
    "list_member",
    metadata,
    _id(),
    _text("list_name", 100, nullable=False),
    _fk("record_id", "record.id"),
    _at("added_at", nullable=False),
    _at("removed_at"),
    _text("source", 200),  # command, campaign step, api
    sa.UniqueConstraint("list_name", "record_id", name="uq_list_member"),
    sa.Index("ix_list_member_record", "record_id"),
    sa.Index("ix_list_member_added", "list_name", "added_at"),
)

# The run state of a campaign with `trigger:` or `steps:`: whether it is switched on
# (`campaign activate/deactivate`) and since when it takes events.
AUTOMATION = sa.Table(
    "automation",
    metadata,
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaign.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    _at("activated_at", nullable=False),
    _at("deactivated_at"),
    _at("last_pass_at"),
)

# One record in one automation, once per campaign (never twice: the unique key), at the
# step `step` (a path such as `2.then.0`; NULL when it went through every step).
ENROLMENT = sa.Table(
    "enrolment",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _fk("record_id", "record.id"),
    _at("enrolled_at", nullable=False),
    _text("trigger_event", 64),
    _text("step", 200),
    _at("due_at"),  # when the record may run its step (a wait's end)
    _text("error"),  # why its step failed last (it stays at that step)
    _at("finished_at"),
    sa.UniqueConstraint("campaign_id", "record_id", name="uq_enrolment"),
    sa.Index("ix_enrolment_due", "campaign_id", "step", "due_at"),
)

# A record that went through one step of an automation (once: the unique key), with what
# the step did: sent (with its wave), waited, branched, listed, no address…
STEP_RUN = sa.Table(
    "step_run",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _text("step", 200, nullable=False),
    _fk("record_id", "record.id"),
    _text("outcome", 32, nullable=False),
    _fk("wave_id", "wave.id", ondelete="SET NULL", nullable=True),
    _at("at", nullable=False),
    sa.UniqueConstraint("campaign_id", "step", "record_id", name="uq_step_run"),
    sa.Index("ix_step_run_record", "record_id"),
)


# The report's summary (revision 0004): counters `report` keeps up to date itself on
# SQLite and can rebuild from scratch at any time (report/summary.py says what each
# holds). Only the summary's own SQL reads and writes them. Declared so that the tables
# match the migrations (tests/store/test_migrations.py) and `alembic revision
# --autogenerate` does not propose to drop them.
REPORT_MARK = sa.Table(
    "report_mark",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_mark", sa.BigInteger, nullable=False),
    sa.Column("outbox_mark", sa.BigInteger, nullable=False),
)
REPORT_MESSAGE = sa.Table(
    "report_message",
    metadata,
    sa.Column("outbox_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("counted", sa.Integer, nullable=False),
)
REPORT_CELL = sa.Table(
    "report_cell",
    metadata,
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("wave_id", sa.Integer, nullable=False),
    sa.Column("segment", sa.String, nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("flags", sa.Integer, nullable=False),
    sa.Column("messages", sa.BigInteger, nullable=False),
    sa.Column("sms_parts", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("wave_id", "segment", "channel", "state", "flags"),
    sa.Index("ix_report_cell_campaign", "campaign_id"),
)
REPORT_OPEN_WAVE = sa.Table(
    "report_open_wave",
    metadata,
    sa.Column("wave_id", sa.Integer, primary_key=True, autoincrement=False),
)
REPORT_SEEN = sa.Table(
    "report_seen",
    metadata,
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("campaign_id", "scope", "record_id"),
    sqlite_with_rowid=False,
)
REPORT_COUNT = sa.Table(
    "report_count",
    metadata,
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("campaign_id", "scope"),
)
REPORT_FIRST_ANSWER = sa.Table(
    "report_first_answer",
    metadata,
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("answer_key", sa.String, nullable=False),
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.PrimaryKeyConstraint("campaign_id", "answer_key"),
)
REPORT_TABLES = [
    REPORT_MARK,
    REPORT_MESSAGE,
    REPORT_CELL,
    REPORT_OPEN_WAVE,
    REPORT_SEEN,
    REPORT_COUNT,
    REPORT_FIRST_ANSWER,
]


# One `export push` or `export withdraw` run: what it selected, when, how it ended.
EXPORT_TRANSFER = sa.Table(
    "export_transfer",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _int("lock_id"),
    sa.Column("action", _enum(TransferAction), nullable=False),
    _json("selection"),  # {segment, channel, system}: null = all
    _text("holder", 200, nullable=False),  # host:pid
    _at("started_at", nullable=False),
    _at("finished_at"),
    _text("outcome", 16),  # done, failed, stopped
    _json("counts"),  # per system: sent, failed, already…
    sa.Index("ix_export_transfer_campaign", "campaign_id", "started_at"),
)

# One record's badge in one CRM system for one campaign, with the idempotency key it keeps
# for every retry and resumed push (a new key only after a confirmed withdrawal).
EXPORT_BADGE = sa.Table(
    "export_badge",
    metadata,
    _id(),
    _fk("campaign_id", "campaign.id"),
    _text("system", 100, nullable=False),
    _fk("record_id", "record.id"),
    _text("segment"),  # the cell the badge was made for
    _text("channel", 8, nullable=False),
    sa.Column("state", _enum(BadgeState), nullable=False),
    # unique by construction (the transfer that gave it, the record): no index to keep up
    _text("idempotency_key", 255, nullable=False),
    _text("fields_hash", 16, nullable=False),  # of entity, label and fields when made
    _int("transfer_id", nullable=False),  # the push that gave the key
    _int("attempts", nullable=False, default=0),
    _text("error"),
    _at("pushed_at"),
    _int("withdraw_transfer_id"),
    _at("withdrawn_at"),
    # also the order a push reads its batches in (by record): no other index to keep up
    sa.UniqueConstraint("campaign_id", "system", "record_id", name="uq_export_badge"),
)
