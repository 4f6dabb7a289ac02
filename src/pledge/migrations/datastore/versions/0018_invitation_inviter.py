"""Who invited: a staff invitation keeps the user or API key that made it

Accepting the link checks again that they could still grant the role — not disabled,
demoted or revoked since — as a waiting invitation was otherwise worth more than its
inviter's account. Invitations made before (and by the operator, from the CLI) have
neither.

Revision ID: 0018_invitation_inviter
Revises: 0017_retention_periods
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_invitation_inviter"
down_revision = "0017_retention_periods"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("staff_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invited_by_user_id", _id(), nullable=True))
        batch_op.add_column(sa.Column("invited_by_key_id", _id(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_staff_invitations_tenant_id_invited_by_user_id_users"),
            "users",
            ["tenant_id", "invited_by_user_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_staff_invitations_tenant_id_invited_by_key_id_api_keys"),
            "api_keys",
            ["tenant_id", "invited_by_key_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_invitations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_staff_invitations_tenant_id_invited_by_key_id_api_keys"),
            type_="foreignkey",
        )
        batch_op.drop_constraint(
            batch_op.f("fk_staff_invitations_tenant_id_invited_by_user_id_users"),
            type_="foreignkey",
        )
        batch_op.drop_column("invited_by_key_id")
        batch_op.drop_column("invited_by_user_id")
