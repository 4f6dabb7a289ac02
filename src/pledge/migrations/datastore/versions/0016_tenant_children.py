"""A tenant's children's rules (LAW.md "Children"; seeds 000, 001 §10, 003)

The age under which a person is a child (13-18; GDPR Art. 8's 16 by default) and what the
gate does with a child's data while no parent has consented: `consent_needs_parent` (today's
rule, every tenant starts with it), `no_use_without_parent` or `erase_on_discovery`. Set with
`pledge tenant children`.

Revision ID: 0016_tenant_children
Revises: 0015_transfer_mechanism
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_tenant_children"
down_revision = "0015_transfer_mechanism"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("child_age", sa.Integer(), nullable=False, server_default="16")
        )
        batch_op.add_column(
            sa.Column(
                "children_policy",
                sa.String(length=24),
                nullable=False,
                server_default="consent_needs_parent",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("children_policy")
        batch_op.drop_column("child_age")
