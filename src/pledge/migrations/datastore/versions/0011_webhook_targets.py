"""Webhook deliveries by target (issue 4)

The delivery right after a commit skips an endpoint with a failed delivery waiting for its
retry, and a post the endpoint takes makes those retries due at once: both look up a
target's pending deliveries, which without this index meant every pending delivery of every
tenant.

Revision ID: 0011_webhook_targets
Revises: 0010_restriction_grounds
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0011_webhook_targets"
down_revision = "0010_restriction_grounds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_target",
            ["tenant_id", "target_kind", "target_id", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_target")
