"""A restricted person's grounds kept with them: the restriction they asked for, a correction
being checked, one set through the privacy-state API

Revision ID: 0010_restriction_grounds
Revises: 0009_artifacts_by_request
Create Date: 2026-12-06
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_restriction_grounds"
down_revision = "0009_artifacts_by_request"
branch_labels = None
depends_on = None

# Plain tables of this revision, read and written as they are: ids pass through untouched
# (16 bytes on SQLite, a UUID on PostgreSQL).
subjects = sa.table(
    "subjects",
    sa.column("tenant_id"),
    sa.column("id"),
    sa.column("status"),
    sa.column("restricted_at"),
    sa.column("restriction_grounds", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)
requests = sa.table(
    "rights_requests",
    sa.column("tenant_id"),
    sa.column("id"),
    sa.column("subject_id"),
    sa.column("type"),
    sa.column("state"),
    sa.column("outcome_code"),
)
audit_entries = sa.table(
    "audit_entries",
    sa.column("tenant_id"),
    sa.column("seq"),
    sa.column("subject_id"),
    sa.column("event"),
    sa.column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)
# The sources the requests set the flag with before this revision; any other was the API's.
REQUEST_SOURCES = frozenset({"requested", "accuracy_contested"})


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=bytes(value))


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "restriction_grounds",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """Give each restricted subject the grounds the code before this revision found: a
    restriction request whose outcome is `restricted`, a rectification in progress or
    paused, and "api" when the last restriction entry of the audit chain was set by neither
    (read here once; the code no longer reads the chain) or when no request is found.

    A person erased whole keeps no flag and no ground: nothing of theirs is left to restrict,
    and a ground would keep their request from the purge for ever (since this revision a
    full erasure ends every ground, with its audit entries; here, without a key to the
    chain, the flag is cleared as the erasure would have)."""
    found: dict[tuple[Any, Any], list[str]] = defaultdict(list)
    in_force = (requests.c.type == "restriction") & (requests.c.outcome_code == "restricted")
    checking = (requests.c.type == "rectification") & requests.c.state.in_(
        ["in_progress", "paused"]
    )
    rows = conn.execute(
        sa.select(requests.c.tenant_id, requests.c.subject_id, requests.c.id, requests.c.type)
        .where(requests.c.subject_id.is_not(None), in_force | checking)
        .order_by(requests.c.tenant_id, requests.c.subject_id, requests.c.id)
    )
    for tenant_id, subject_id, request_id, rtype in rows:
        kind = "request" if rtype == "restriction" else "accuracy"
        found[(tenant_id, subject_id)].append(f"{kind}:{_uuid(request_id)}")
    conn.execute(
        subjects.update()
        .where(subjects.c.status == "erased", subjects.c.restricted_at.is_not(None))
        .values(restricted_at=None)
    )
    restricted = conn.execute(
        sa.select(subjects.c.tenant_id, subjects.c.id).where(subjects.c.restricted_at.is_not(None))
    ).all()
    for tenant_id, subject_id in restricted:
        grounds = found.get((tenant_id, subject_id), [])
        if not grounds or _set_outside_requests(conn, tenant_id, subject_id):
            grounds = [*grounds, "api"]
        conn.execute(
            subjects.update()
            .where(subjects.c.tenant_id == tenant_id, subjects.c.id == subject_id)
            .values(restriction_grounds=grounds)
        )


def _set_outside_requests(conn: sa.Connection, tenant_id: Any, subject_id: Any) -> bool:
    """The code before this revision: the restriction in force was set outside the requests
    unless its last entry (before any lift) was set by one."""
    details = conn.execute(
        sa.select(audit_entries.c.details)
        .where(
            audit_entries.c.tenant_id == tenant_id,
            audit_entries.c.subject_id == subject_id,
            audit_entries.c.event == "privacy_state.changed",
        )
        .order_by(audit_entries.c.seq.desc())
        .limit(200)
    ).scalars()
    for entry in details:
        if entry.get("change") == "restricted":
            return entry.get("source") not in REQUEST_SOURCES
        if entry.get("change") == "restriction_lifted":
            break
    return True


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("restriction_grounds")
