"""Messaging: the campaign's audience digest, the outbox by campaign

Revision ID: 0003_messaging
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_messaging"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_digest", sa.String(length=64), nullable=True))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_campaign", ["tenant_id", "campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_campaign")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("audience_digest")
