"""A tenant's closing days for the rights clock (issue 4 §2)

Days that count as holidays besides the jurisdiction's public ones (ISO dates), set with
`pledge tenant closing-days`: the clock counts them out of business days. Every tenant
starts with none.

Revision ID: 0013_tenant_closing_days
Revises: 0012_webhook_payload_lifetime
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013_tenant_closing_days"
down_revision = "0012_webhook_payload_lifetime"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "closing_days",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("closing_days")
