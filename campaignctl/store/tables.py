"""The store's tables (SQLModel over SQLAlchemy 2), designed for every layer at once.

spec → store → plan → lock → outbox → transports → events → report (DESIGN.md §3):
records come from `audience import`; campaigns, locks and their recipients from
`apply` and `lock`; waves and the outbox from `send`, `relaunch` and the
scheduler; events, responses and suppressions from what happens next. The
schema itself is owned by the Alembic migrations in `store/migrations/`; these
classes are what the code queries and what `alembic revision --autogenerate`
compares against.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

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

metadata = SQLModel.metadata

# JSON everywhere; JSONB on PostgreSQL so that segments can index into attributes.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    """A VARCHAR holding the enum's value (not a native enum: new members need no migration)."""
    return sa.Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_type=JSONType, **kw)  # type: ignore[call-overload]


def _fk(target: str, ondelete: str = "CASCADE", **kw: Any) -> Any:
    return Field(sa_column_args=[sa.ForeignKey(target, ondelete=ondelete)], **kw)


class StoreState(SQLModel, table=True):
    """One row: the serial every write bumps (a saved plan records it to detect staleness)."""

    __tablename__ = "store_state"
    id: int = Field(default=1, primary_key=True)
    serial: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime | None = None


class Record(SQLModel, table=True):
    """One record of an audience (a provider, a donor…): not a person; addresses may repeat."""

    __tablename__ = "record"
    __table_args__ = (
        sa.UniqueConstraint("audience", "key", name="uq_record_audience_key"),
        sa.Index("ix_record_audience_status", "audience", "status"),
        sa.Index("ix_record_audience_category", "audience", "category"),
        sa.Index("ix_record_email_normalized", "email_normalized"),
        sa.Index("ix_record_phone", "phone"),
        # events naming campaign + record find the record by its key (revision 0005)
        sa.Index("ix_record_key", "key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    audience: str = Field(max_length=100)
    key: str = Field(max_length=200)
    email: str | None = None  # as normalised by import (domain lower-cased)
    email_normalized: str | None = None  # fully lower-cased: grouping and suppression matching
    phone: str | None = Field(default=None, max_length=20)  # E.164
    # channels ("email", "sms", "email,sms") whose source address was invalid and dropped
    invalid_addresses: str | None = Field(default=None, max_length=16)
    category: str | None = None
    attributes: dict[str, Any] | None = _json()
    status: RecordStatus = Field(default=RecordStatus.ACTIVE, sa_type=_enum(RecordStatus))
    # hash of the raw source cells: an unchanged row is recognised without re-normalising it
    source_hash: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime
    updated_at: datetime
    removed_at: datetime | None = None


class Campaign(SQLModel, table=True):
    """A campaign as applied (`campaignctl apply`): its definition, options and life state."""

    __tablename__ = "campaign"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    type: str = Field(max_length=20)
    category: str | None = None
    definition: dict[str, Any] | None = _json()  # the spec model as JSON
    content_hash: str = Field(max_length=64)  # of the definition and its templates
    options: dict[str, Any] | None = _json()
    state: CampaignState = Field(default=CampaignState.DRAFT, sa_type=_enum(CampaignState))
    git_commit: str | None = Field(default=None, max_length=64)
    applied_at: datetime
    frozen_at: datetime | None = None  # options frozen (first send)
    first_sent_at: datetime | None = None
    archived_at: datetime | None = None


class CampaignLock(SQLModel, table=True):
    """A frozen snapshot of a campaign: recipients and content hashes (`campaignctl lock`)."""

    __tablename__ = "campaign_lock"
    __table_args__ = (sa.Index("ix_campaign_lock_campaign", "campaign_id", "released_at"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    created_at: datetime
    released_at: datetime | None = None  # unlocked or replaced by `lock --refresh`
    git_commit: str | None = Field(default=None, max_length=64)
    definition_hash: str = Field(max_length=64)
    content_hashes: dict[str, Any] | None = _json()  # template path -> hash
    counts: dict[str, Any] | None = _json()  # the frozen figures


class Recipient(SQLModel, table=True):
    """One record × channel of a lock: who the campaign reaches, through which segment."""

    __tablename__ = "recipient"
    __table_args__ = (
        sa.UniqueConstraint("lock_id", "record_id", "channel", name="uq_recipient"),
        sa.Index("ix_recipient_lock_group", "lock_id", "channel", "group_key"),
        sa.Index("ix_recipient_record", "record_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    lock_id: int = _fk("campaign_lock.id")
    record_id: int = _fk("record.id")
    channel: str = Field(max_length=8)
    address: str  # normalised email or E.164 phone
    segment: str | None = None
    group_key: str | None = None  # same value = one message listing several records


class Wave(SQLModel, table=True):
    """One sending of a campaign: the initial send, a relaunch or a recurrence occurrence."""

    __tablename__ = "wave"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "number", name="uq_wave_number"),
        # a scheduled occurrence or relaunch rule can never create its wave twice
        sa.UniqueConstraint("campaign_id", "occurrence_key", name="uq_wave_occurrence"),
        sa.Index("ix_wave_due", "status", "scheduled_for"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    number: int
    kind: WaveKind = Field(sa_type=_enum(WaveKind))
    occurrence_key: str = Field(max_length=100)
    scheduled_for: datetime | None = None
    status: WaveStatus = Field(default=WaveStatus.SCHEDULED, sa_type=_enum(WaveStatus))
    lock_id: int | None = _fk("campaign_lock.id", ondelete="SET NULL", default=None)
    target: str | None = None  # relaunch target: non_responders, non_openers, failed, all
    channels: list[str] | None = _json()
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    note: str | None = None  # e.g. "missed: 7h late", "02:30 does not exist, ran at 03:00"


class Outbox(SQLModel, table=True):
    """One message: recipient × channel × wave, and where it is in its delivery."""

    __tablename__ = "outbox"
    __table_args__ = (
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
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    wave_id: int = _fk("wave.id")
    record_id: int | None = _fk("record.id", ondelete="SET NULL", default=None)
    group_key: str | None = None
    segment: str | None = None
    channel: str = Field(max_length=8)
    address: str
    state: OutboxState = Field(default=OutboxState.QUEUED, sa_type=_enum(OutboxState))
    reason: str | None = None  # why suppressed or skipped
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_by: str | None = None
    lease_expires_at: datetime | None = None
    message_id: str | None = Field(default=None, unique=True)
    provider_id: str | None = None
    error: str | None = None
    sms_parts: int | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None


class OutboxHandover(SQLModel, table=True):
    """A slice of claimed outbox rows a send handed to its transport, written (committed)
    just before they went: after a crash, what the dead sender may have sent (revision
    0005_outbox_handover). `messages` is JSON `[[outbox id, message id], …]`; `done_at`
    is set once every message of the slice has its outcome. The send deletes the row
    when it records the batch."""

    __tablename__ = "outbox_handover"
    __table_args__ = (sa.Index("ix_outbox_handover_holder", "wave_id", "holder"),)
    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = _fk("wave.id")
    holder: str = Field(max_length=200)
    messages: str
    handed_at: datetime
    done_at: datetime | None = None


class Event(SQLModel, table=True):
    """Something that happened to a message or record (DESIGN.md §3); idempotent by id."""

    __tablename__ = "event"
    __table_args__ = (
        # per campaign and type: the report's counts of distinct messages and records, the
        # answers' times, and (with the campaign) a message's events (revision 0011)
        sa.Index("ix_event_campaign", "campaign_id", "type", "outbox_id", "record_id", "at"),
        sa.Index("ix_event_record", "record_id", "type"),
    )
    id: str = Field(primary_key=True, max_length=64)  # given id, or a hash of the line
    type: str = Field(max_length=32)
    message_id: str | None = None
    outbox_id: int | None = _fk("outbox.id", ondelete="SET NULL", default=None)
    campaign_id: int | None = _fk("campaign.id", ondelete="SET NULL", default=None)
    record_id: int | None = _fk("record.id", ondelete="SET NULL", default=None)
    record_key: str | None = None
    address: str | None = None
    channel: str | None = Field(default=None, max_length=8)
    at: datetime
    data: dict[str, Any] | None = _json()
    received_at: datetime


class Response(SQLModel, table=True):
    """Questionnaire answers for one record, reviewed by a person before updating the record."""

    __tablename__ = "response"
    __table_args__ = (
        sa.Index("ix_response_campaign_status", "campaign_id", "status"),
        sa.Index("ix_response_record", "record_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    record_id: int | None = _fk("record.id", ondelete="SET NULL", default=None)
    outbox_id: int | None = _fk("outbox.id", ondelete="SET NULL", default=None)
    data: dict[str, Any] | None = _json()  # the answers as submitted
    changes: dict[str, Any] | None = _json()  # field -> {old, new, decision}
    status: ResponseStatus = Field(default=ResponseStatus.TO_PROCESS, sa_type=_enum(ResponseStatus))
    submitted_at: datetime
    processed_at: datetime | None = None
    processed_by: str | None = None


class Suppression(SQLModel, table=True):
    """An address never to contact on a channel, for one category or (category NULL) all."""

    __tablename__ = "suppression"
    __table_args__ = (
        sa.Index(
            "uq_suppression",
            "channel",
            "address_hash",
            sa.text("coalesce(category, '')"),
            unique=True,
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=8)
    address: str | None = None  # NULL once forgotten: only the hash remains
    address_hash: str = Field(max_length=64)  # sha256 of the normalised address
    category: str | None = None
    reason: SuppressionReason = Field(sa_type=_enum(SuppressionReason))
    source: str | None = None  # command, event id, campaign…
    created_at: datetime


class Lease(SQLModel, table=True):
    """Work that must never overlap (a send, the scheduler): who holds it and until when."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)  # host:pid
    operation: str = Field(max_length=100)
    since: datetime
    heartbeat_at: datetime
    expires_at: datetime


class AuditLog(SQLModel, table=True):
    """What changed the store, by whom: imports, applies, locks, forget, suppressions."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_object", "object", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor: str | None = None
    action: str = Field(max_length=50)
    object: str | None = None
    data: dict[str, Any] | None = _json()


class ListMember(SQLModel, table=True):
    """A record in a `kind: List` (DESIGN.md §5). Removing a member keeps its row with
    `removed_at` set, so that `list_removed` triggers see it; adding it back clears it."""

    __tablename__ = "list_member"
    __table_args__ = (
        sa.UniqueConstraint("list_name", "record_id", name="uq_list_member"),
        sa.Index("ix_list_member_record", "record_id"),
        sa.Index("ix_list_member_added", "list_name", "added_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    list_name: str = Field(max_length=100)
    record_id: int = _fk("record.id")
    added_at: datetime
    removed_at: datetime | None = None
    source: str | None = Field(default=None, max_length=200)  # command, campaign step, api


class Automation(SQLModel, table=True):
    """The run state of a campaign with `trigger:` or `steps:`: whether it is switched on
    (`campaign activate/deactivate`) and since when it takes events."""

    __tablename__ = "automation"
    campaign_id: int = Field(
        sa_column_args=[sa.ForeignKey("campaign.id", ondelete="CASCADE")], primary_key=True
    )
    active: bool = True
    activated_at: datetime
    deactivated_at: datetime | None = None
    last_pass_at: datetime | None = None


class Enrolment(SQLModel, table=True):
    """One record in one automation, once per campaign (never twice: the unique key), at the
    step `step` (a path such as `2.then.0`; NULL when it went through every step)."""

    __tablename__ = "enrolment"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "record_id", name="uq_enrolment"),
        sa.Index("ix_enrolment_due", "campaign_id", "step", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    record_id: int = _fk("record.id")
    enrolled_at: datetime
    trigger_event: str | None = Field(default=None, max_length=64)
    step: str | None = Field(default=None, max_length=200)
    due_at: datetime | None = None  # when the record may run its step (a wait's end)
    error: str | None = None  # why its step failed last (it stays at that step)
    finished_at: datetime | None = None


class StepRun(SQLModel, table=True):
    """A record that went through one step of an automation (once: the unique key), with
    what the step did: sent (with its wave), waited, branched, listed, no address…"""

    __tablename__ = "step_run"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "step", "record_id", name="uq_step_run"),
        sa.Index("ix_step_run_record", "record_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    step: str = Field(max_length=200)
    record_id: int = _fk("record.id")
    outcome: str = Field(max_length=32)
    wave_id: int | None = _fk("wave.id", ondelete="SET NULL", default=None)
    at: datetime


# The report's summary (revision 0004): counters `report` keeps up to date itself on
# SQLite and can rebuild from scratch at any time (report/summary.py says what each
# holds). Core tables rather than models: only the summary's own SQL reads and writes
# them. Declared so that the models match the migrations (tests/store/test_migrations.py)
# and `alembic revision --autogenerate` does not propose to drop them.
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


class ExportTransfer(SQLModel, table=True):
    """One `export push` or `export withdraw` run: what it selected, when, how it ended."""

    __tablename__ = "export_transfer"
    __table_args__ = (sa.Index("ix_export_transfer_campaign", "campaign_id", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    lock_id: int | None = None
    action: TransferAction = Field(sa_type=_enum(TransferAction))
    selection: dict[str, Any] | None = _json()  # {segment, channel, system}: null = all
    holder: str = Field(max_length=200)  # host:pid
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=16)  # done, failed, stopped
    counts: dict[str, Any] | None = _json()  # per system: sent, failed, already…


class ExportBadge(SQLModel, table=True):
    """One record's badge in one CRM system for one campaign, with the idempotency key it
    keeps for every retry and resumed push (a new key only after a confirmed withdrawal)."""

    __tablename__ = "export_badge"
    __table_args__ = (
        # also the order a push reads its batches in (by record): no other index to keep up
        sa.UniqueConstraint("campaign_id", "system", "record_id", name="uq_export_badge"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = _fk("campaign.id")
    system: str = Field(max_length=100)
    record_id: int = _fk("record.id")
    segment: str | None = None  # the cell the badge was made for
    channel: str = Field(max_length=8)
    state: BadgeState = Field(sa_type=_enum(BadgeState))
    # unique by construction (the transfer that gave it, the record): no index to keep up
    idempotency_key: str = Field(max_length=255)
    fields_hash: str = Field(max_length=16)  # of entity, label and fields when made
    transfer_id: int  # the push that gave the key
    attempts: int = 0
    error: str | None = None
    pushed_at: datetime | None = None
    withdraw_transfer_id: int | None = None
    withdrawn_at: datetime | None = None


TABLES = [
    StoreState,
    Record,
    Campaign,
    CampaignLock,
    Recipient,
    Wave,
    Outbox,
    OutboxHandover,
    Event,
    Response,
    Suppression,
    Lease,
    AuditLog,
    ListMember,
    Automation,
    Enrolment,
    StepRun,
    ExportTransfer,
    ExportBadge,
]


# The Core tables, for set-based queries (one name each, used by every layer).
STORE_STATE = StoreState.__table__  # type: ignore[attr-defined]
RECORD = Record.__table__  # type: ignore[attr-defined]
CAMPAIGN = Campaign.__table__  # type: ignore[attr-defined]
LOCK = CampaignLock.__table__  # type: ignore[attr-defined]
RECIPIENT = Recipient.__table__  # type: ignore[attr-defined]
WAVE = Wave.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
HANDOVER = OutboxHandover.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]
RESPONSE = Response.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]
LEASE = Lease.__table__  # type: ignore[attr-defined]
AUDIT_LOG = AuditLog.__table__  # type: ignore[attr-defined]
LIST_MEMBER = ListMember.__table__  # type: ignore[attr-defined]
AUTOMATION = Automation.__table__  # type: ignore[attr-defined]
ENROLMENT = Enrolment.__table__  # type: ignore[attr-defined]
STEP_RUN = StepRun.__table__  # type: ignore[attr-defined]
EXPORT_TRANSFER = ExportTransfer.__table__  # type: ignore[attr-defined]
EXPORT_BADGE = ExportBadge.__table__  # type: ignore[attr-defined]
