"""Idempotent API calls: the answers to calls sent with an Idempotency-Key, for a day

Revision ID: 0006_idempotent_calls
Revises: 0005_rights
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_idempotent_calls"
down_revision = "0005_rights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotent_calls",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("key_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("body_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("answer_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotent_calls_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key_digest", name=op.f("pk_idempotent_calls")),
    )
    with op.batch_alter_table("idempotent_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_idempotent_calls_expiry", ["tenant_id", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotent_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotent_calls_expiry")

    op.drop_table("idempotent_calls")
