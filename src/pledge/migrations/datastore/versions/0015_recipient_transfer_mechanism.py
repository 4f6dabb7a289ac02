"""A recipient's transfer mechanism (GDPR Art. 15(2), Art. 44–49)

How data sent to a recipient outside the tenant's region is safeguarded: an adequacy
decision, standard contractual clauses, the UK IDTA or addendum, binding corporate rules, a
derogation (Art. 49) or none. Recipients there before have none recorded: the access answer
says so, and the recipients list warns of it.

Revision ID: 0015_transfer_mechanism
Revises: 0014_staff_invitations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Shorter than the file's name: alembic_version holds 32 characters.
revision = "0015_transfer_mechanism"
down_revision = "0014_staff_invitations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transfer_mechanism", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("transfer_mechanism")
