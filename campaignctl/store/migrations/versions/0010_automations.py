"""automations: list members, automation switches, enrolments and step runs (DESIGN.md §5)

`list_member` holds the records of each `kind: List` (a removed member keeps its
row with `removed_at`, for `list_removed` triggers). `automation` says whether a
campaign with `trigger:`/`steps:` is switched on and since when. `enrolment` is
one record in one automation, unique per campaign (a record is never enrolled
twice), with the step it is at and when that step is due. `step_run` records
each step a record went through, once (the unique key makes a step never run
twice for a record, even after a crash mid-pass).

Revision ID: 0010_automations
Revises: 0009_exports
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_automations"
down_revision = "0009_exports"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "list_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        _time("added_at"),
        _time("removed_at", True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_name", "record_id", name="uq_list_member"),
    )
    op.create_index("ix_list_member_record", "list_member", ["record_id"])
    op.create_index("ix_list_member_added", "list_member", ["list_name", "added_at"])
    op.create_table(
        "automation",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _time("activated_at"),
        _time("deactivated_at", True),
        _time("last_pass_at", True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        _time("enrolled_at"),
        sa.Column("trigger_event", sa.String(length=64), nullable=True),
        sa.Column("step", sa.String(length=200), nullable=True),
        _time("due_at", True),
        sa.Column("error", sa.String(), nullable=True),
        _time("finished_at", True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "record_id", name="uq_enrolment"),
    )
    op.create_index("ix_enrolment_due", "enrolment", ["campaign_id", "step", "due_at"])
    op.create_table(
        "step_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=True),
        _time("at"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["wave_id"], ["wave.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "step", "record_id", name="uq_step_run"),
    )
    op.create_index("ix_step_run_record", "step_run", ["record_id"])


def downgrade() -> None:
    op.drop_index("ix_step_run_record", table_name="step_run")
    op.drop_table("step_run")
    op.drop_index("ix_enrolment_due", table_name="enrolment")
    op.drop_table("enrolment")
    op.drop_table("automation")
    op.drop_index("ix_list_member_added", table_name="list_member")
    op.drop_index("ix_list_member_record", table_name="list_member")
    op.drop_table("list_member")
