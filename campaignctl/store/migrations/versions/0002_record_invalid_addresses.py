"""record.invalid_addresses: channels whose source address did not survive normalisation

`plan` tells "no address" from "invalid address" (docs/targeting.md §2); the
import drops a bad value, so the fact that there was one is kept here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("invalid_addresses", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record") as batch:
        batch.drop_column("invalid_addresses")
