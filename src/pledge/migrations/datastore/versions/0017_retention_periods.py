"""Retention periods that end (DESIGN.md §3 item 10; docs/decisions/0014)

A tenant's interaction rules: interactions of a category (and kind) are deleted a period
after they occurred (seed 004: call recordings, 12 months), set with `pledge tenant
interaction-retention`; every tenant starts with none. The worker finds the interactions past
their time by reading the tenant's interactions in a snapshot: no index (one by category and
time would make every erasure of a person with many interactions rewrite pages all over it).

A retention class's period needs no column: it lives in the class's record in the tenant's
`retention_classes` ({"keep_for": "7 years"}).

Revision ID: 0017_retention_periods
Revises: 0016_tenant_children
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017_retention_periods"
down_revision = "0016_tenant_children"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "interaction_retention",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("interaction_retention")
