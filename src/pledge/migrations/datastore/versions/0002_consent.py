"""Lawfulness and consent: purposes, notices, consent ledger, preferences, outbox, campaigns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns added to existing tables carry a server default so existing rows get a value.
    op.create_table(
        "browser_signals",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("browser_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("gpc", sa.Boolean(), nullable=False),
        sa.Column("dnt", sa.Boolean(), nullable=True),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_browser_signals_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "browser_index", name=op.f("pk_browser_signals")),
    )
    op.create_table(
        "notices",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notices_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notices")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_notices_tenant_id_slug")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column(
            "campaign_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_outbox_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_status", ["tenant_id", "status", "created_at"], unique=False
        )

    op.create_table(
        "suppressions",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_suppressions_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kind", "blind_index", "channel", name=op.f("pk_suppressions")
        ),
    )
    op.create_table(
        "channel_optouts",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_channel_optouts_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "subject_id", "channel", "topic", name=op.f("pk_channel_optouts")
        ),
    )
    op.create_table(
        "collection_points",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "privacy_notice_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "privacy_notice_id"],
            ["notices.tenant_id", "notices.id"],
            name=op.f("fk_collection_points_tenant_id_privacy_notice_id_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_collection_points_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_collection_points")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_collection_points_tenant_id_slug")),
    )
    op.create_table(
        "notice_versions",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "notice_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "notice_id"],
            ["notices.tenant_id", "notices.id"],
            name=op.f("fk_notice_versions_tenant_id_notice_id_notices"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notice_versions")),
        sa.UniqueConstraint(
            "tenant_id",
            "notice_id",
            "language",
            "version",
            name=op.f("uq_notice_versions_tenant_id_notice_id_language_version"),
        ),
    )
    op.create_table(
        "purposes",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(length=40), nullable=False),
        sa.Column("dpv_purpose", sa.String(length=80), nullable=True),
        sa.Column(
            "data_categories",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "channels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("is_marketing", sa.Boolean(), nullable=False),
        sa.Column("is_sale_or_sharing", sa.Boolean(), nullable=False),
        sa.Column("legitimate_interest_note", sa.Text(), nullable=True),
        sa.Column(
            "consent_notice_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "consent_notice_id"],
            ["notices.tenant_id", "notices.id"],
            name=op.f("fk_purposes_tenant_id_consent_notice_id_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_purposes_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_purposes")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_purposes_tenant_id_slug")),
    )
    op.create_table(
        "unsubscribe_tokens",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column(
            "campaign_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_unsubscribe_tokens_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_unsubscribe_tokens")),
    )
    op.create_table(
        "collection_point_purposes",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "collection_point_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "consent_notice_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
            name=op.f(
                "fk_collection_point_purposes_tenant_id_collection_point_id_collection_points"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "consent_notice_id"],
            ["notices.tenant_id", "notices.id"],
            name=op.f("fk_collection_point_purposes_tenant_id_consent_notice_id_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_collection_point_purposes_tenant_id_purpose_id_purposes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "collection_point_id",
            "purpose_id",
            name=op.f("pk_collection_point_purposes"),
        ),
    )
    op.create_table(
        "consent_records",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column(
            "collection_point_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "wording_version_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("wording_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "notice_version_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("gpc", sa.Boolean(), nullable=False),
        sa.Column("dnt", sa.Boolean(), nullable=True),
        sa.Column("ip_mac", sa.LargeBinary(length=32), nullable=True),
        sa.Column("user_agent_mac", sa.LargeBinary(length=32), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("receipt_jws", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
            name=op.f("fk_consent_records_tenant_id_collection_point_id_collection_points"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "notice_version_id"],
            ["notice_versions.tenant_id", "notice_versions.id"],
            name=op.f("fk_consent_records_tenant_id_notice_version_id_notice_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_consent_records_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_consent_records_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "wording_version_id"],
            ["notice_versions.tenant_id", "notice_versions.id"],
            name=op.f("fk_consent_records_tenant_id_wording_version_id_notice_versions"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_consent_records")),
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_records_subject", ["tenant_id", "subject_id", "recorded_at"], unique=False
        )

    op.create_table(
        "consent_states",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column(
            "record_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_consent_states_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_consent_states_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "subject_id", "purpose_id", name=op.f("pk_consent_states")
        ),
    )
    with op.batch_alter_table("consent_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_states_audience",
            ["tenant_id", "purpose_id", "granted", "subject_id"],
            unique=False,
        )

    op.create_table(
        "notice_announcements",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "version_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "version_id"],
            ["notice_versions.tenant_id", "notice_versions.id"],
            name=op.f("fk_notice_announcements_tenant_id_version_id_notice_versions"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notice_announcements")),
    )
    op.create_table(
        "objections",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grounds_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_objections_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_objections_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "subject_id", "purpose_id", name=op.f("pk_objections")
        ),
    )
    op.create_table(
        "subject_purposes",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "collection_point_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=True,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
            name=op.f("fk_subject_purposes_tenant_id_collection_point_id_collection_points"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_subject_purposes_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "subject_id"],
            ["subjects.tenant_id", "subjects.id"],
            name=op.f("fk_subject_purposes_tenant_id_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "subject_id", "purpose_id", name=op.f("pk_subject_purposes")
        ),
    )
    with op.batch_alter_table("subject_purposes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subject_purposes_audience", ["tenant_id", "purpose_id", "subject_id"], unique=False
        )

    op.create_table(
        "topics",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_topics_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_topics_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_topics")),
        sa.UniqueConstraint("tenant_id", "slug", name=op.f("uq_topics_tenant_id_slug")),
    )
    op.create_table(
        "campaigns",
        sa.Column(
            "tenant_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "purpose_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "topic_id",
            sa.LargeBinary(length=16).with_variant(postgresql.UUID(as_uuid=True), "postgresql"),
            nullable=False,
        ),
        sa.Column("subject_line", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("denied_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "purpose_id"],
            ["purposes.tenant_id", "purposes.id"],
            name=op.f("fk_campaigns_tenant_id_purpose_id_purposes"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "topic_id"],
            ["topics.tenant_id", "topics.id"],
            name=op.f("fk_campaigns_tenant_id_topic_id_topics"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaigns_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sale_opt_out_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sale_opt_out_source", sa.String(length=24), nullable=True))
        batch_op.add_column(
            sa.Column("limit_sensitive_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("is_child", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("parental_consent_at", sa.DateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("honour_gpc", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("dnt_policy", sa.String(length=16), nullable=False, server_default="record")
        )
        batch_op.add_column(
            sa.Column("signals_updated_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "public_hosts",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("public_hosts")
        batch_op.drop_column("signals_updated_at")
        batch_op.drop_column("dnt_policy")
        batch_op.drop_column("honour_gpc")

    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("parental_consent_at")
        batch_op.drop_column("is_child")
        batch_op.drop_column("limit_sensitive_at")
        batch_op.drop_column("sale_opt_out_source")
        batch_op.drop_column("sale_opt_out_at")
        batch_op.drop_column("restricted_at")

    op.drop_table("campaigns")
    op.drop_table("topics")
    with op.batch_alter_table("subject_purposes", schema=None) as batch_op:
        batch_op.drop_index("ix_subject_purposes_audience")

    op.drop_table("subject_purposes")
    op.drop_table("objections")
    op.drop_table("notice_announcements")
    with op.batch_alter_table("consent_states", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_states_audience")

    op.drop_table("consent_states")
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_records_subject")

    op.drop_table("consent_records")
    op.drop_table("collection_point_purposes")
    op.drop_table("unsubscribe_tokens")
    op.drop_table("purposes")
    op.drop_table("notice_versions")
    op.drop_table("collection_points")
    op.drop_table("channel_optouts")
    op.drop_table("suppressions")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status")

    op.drop_table("outbox")
    op.drop_table("notices")
    op.drop_table("browser_signals")
