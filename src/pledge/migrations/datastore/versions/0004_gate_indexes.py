"""Gate indexes: subjects in an exceptional state, addresses by kind (issue 3)

An audience over a whole tenant is set algebra over index ranges in subject order
(`pledge.gate.audience.audience_sets`): these two indexes give it the subjects whose own state
can deny a use (a partial index: a few percent of the subjects) and each subject's addresses
of a kind, in subject order.

Revision ID: 0004_gate_indexes
Revises: 0003_messaging
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_gate_indexes"
down_revision = "0003_messaging"
branch_labels = None
depends_on = None

# The same text as `pledge.subjects.models.GATE_FLAGGED` (copied: a migration never imports
# application code that may change after it is written).
FLAGGED = (
    "(status = 'erased' OR restricted_at IS NOT NULL OR is_child "
    "OR sale_opt_out_at IS NOT NULL OR limit_sensitive_at IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("subject_identities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subject_identities_kind", ["tenant_id", "kind", "subject_id"], unique=False
        )

    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subjects_gate_flags",
            ["tenant_id", "id"],
            unique=False,
            sqlite_where=sa.text(FLAGGED),
            postgresql_where=sa.text(FLAGGED),
        )


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index("ix_subjects_gate_flags")

    with op.batch_alter_table("subject_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_subject_identities_kind")
