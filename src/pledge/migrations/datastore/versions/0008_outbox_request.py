"""The outbox keeps the rights request a letter is about, so the letter is purged with it

Revision ID: 0008_outbox_request
Revises: 0007_verification_used_at
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_outbox_request"
down_revision = "0007_verification_used_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "request_id",
                sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
                nullable=True,
            )
        )
        batch_op.create_index("ix_outbox_request", ["tenant_id", "request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_request")
        batch_op.drop_column("request_id")
