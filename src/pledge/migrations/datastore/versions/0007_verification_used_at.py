"""A verification code is used once by being deleted: its never-written `used_at` goes

Revision ID: 0007_verification_used_at
Revises: 0006_idempotent_calls
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_verification_used_at"
down_revision = "0006_idempotent_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rights_verifications", schema=None) as batch_op:
        batch_op.drop_column("used_at")


def downgrade() -> None:
    with op.batch_alter_table("rights_verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
