"""A finished webhook delivery keeps no payload; a request's deliveries go with it (review 12)

A delivery's sealed payload may name a person (an erasure notice, a portability transfer);
once delivered or failed for good it is dropped (the column becomes nullable). The rights
request a delivery is about is kept on it, so the 24-month purge deletes it with the request.
Deliveries finished before this revision drop theirs here.

Revision ID: 0012_webhook_payload_lifetime
Revises: 0011_webhook_targets
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_webhook_payload_lifetime"
down_revision = "0011_webhook_targets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "request_id",
                sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
                nullable=True,
            )
        )
        batch_op.alter_column(
            "payload_sealed", existing_type=sa.LargeBinary(), existing_nullable=False, nullable=True
        )
        batch_op.create_index(
            "ix_webhook_deliveries_request", ["tenant_id", "request_id"], unique=False
        )
    # Finished before this revision: what was sent is not kept from now on.
    op.execute("UPDATE webhook_deliveries SET payload_sealed = NULL WHERE status <> 'pending'")


def downgrade() -> None:
    # A finished delivery's payload is gone: an empty one stands in for it.
    op.execute("UPDATE webhook_deliveries SET payload_sealed = '' WHERE payload_sealed IS NULL")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_request")
        batch_op.alter_column(
            "payload_sealed", existing_type=sa.LargeBinary(), existing_nullable=True, nullable=False
        )
        batch_op.drop_column("request_id")
