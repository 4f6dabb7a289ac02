"""A request's files found by its id (re-sealed at verification, reached by an erasure)

Revision ID: 0009_artifacts_by_request
Revises: 0008_outbox_request
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009_artifacts_by_request"
down_revision = "0008_outbox_request"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rights_artifacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rights_artifacts_request", ["tenant_id", "request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rights_artifacts", schema=None) as batch_op:
        batch_op.drop_index("ix_rights_artifacts_request")
