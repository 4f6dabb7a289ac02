"""Staff invitations: an owner or admin invites a person by e-mail with a role

The invitee opens the link (good once, for 72 hours) and chooses a password; the account is
made then. The secret of the link is stored as a digest, the e-mail sealed and
blind-indexed as a user's.

Revision ID: 0014_staff_invitations
Revises: 0013_tenant_closing_days
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014_staff_invitations"
down_revision = "0013_tenant_closing_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_invitations",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "user_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_staff_invitations_tenant_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_staff_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_invitations")),
    )
    with op.batch_alter_table("staff_invitations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staff_invitations_email", ["tenant_id", "email_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_invitations_email")

    op.drop_table("staff_invitations")
