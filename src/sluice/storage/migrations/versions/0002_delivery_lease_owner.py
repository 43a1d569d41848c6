"""delivery lease owner

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 13:30:00.000000

Which process holds a delivery's lease, so that a process whose lease ran out (it
stalled, another took the row over) can no longer renew it or record its outcome.
Rows leased before this revision have no owner: nobody renews them, and they are
claimed again when their lease ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("lease_owner")
