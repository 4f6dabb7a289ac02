from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id

STANDARD_CLASS = "standard"

# Subjects in a state that can deny the gate: erased, restricted, a child, opted out of sale,
# limited sensitive data. A few percent of a tenant; the partial index `ix_subjects_gate_flags`
# holds only them, and an audience reads its exceptions from there (`gate.audience_sets`).
# SQLite uses a partial index only for a query that repeats this exact text.
GATE_FLAGGED = (
    "(status = 'erased' OR restricted_at IS NOT NULL OR is_child "
    "OR sale_opt_out_at IS NOT NULL OR limit_sensitive_at IS NOT NULL)"
)


class SubjectStatus(StrEnum):
    ACTIVE = "active"
    # Keys of some retention classes shredded; data under a legal duty remains.
    PARTIALLY_ERASED = "partially_erased"
    ERASED = "erased"


class DataSource(StrEnum):
    """Where a value came from — the seeds tell these apart (1CRM §2.1–2.5)."""

    DIRECT = "direct"  # given by the person
    THIRD_PARTY = "third_party"  # partners, other sources
    AUTOMATIC = "automatic"  # collected by cookies, logs, pixels
    INTEGRATED_SERVICE = "integrated_service"  # e.g. sign-in with Google


class InteractionKind(StrEnum):
    CHAT = "chat"
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    ORDER = "order"
    NOTE = "note"
    FORM = "form"


class Subject(Base):
    """A data subject. Holds no personal value itself; after erasure it stays as a tombstone
    (id, status, dates) so the audit trail and later decisions can refer to it."""

    __tablename__ = "subjects"
    __table_args__ = (
        Index("ix_subjects_status", "tenant_id", "status"),
        Index(
            "ix_subjects_gate_flags",
            "tenant_id",
            "id",
            sqlite_where=text(GATE_FLAGGED),
            postgresql_where=text(GATE_FLAGGED),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(20), default=SubjectStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Privacy state the gate reads (set through pledge.consent.service, each change audited).
    # GDPR Art. 18: while restricted, nothing but storage.
    restricted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Why: "api", "request:<request id>", "accuracy:<request id>" (`consent.service`). The
    # flag is set while any holds; each is lifted only from where it was set. A server
    # default, not a Python one: a bulk insert of subjects leaves the column out.
    restriction_grounds: Mapped[list[str]] = mapped_column(JSONType, server_default=text("'[]'"))
    # CCPA opt-out of sale/sharing: from GPC, a request, the preference center…
    sale_opt_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sale_opt_out_source: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # CPRA: limit the use of sensitive personal information.
    limit_sensitive_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # GDPR Art. 8 / CCPA 1798.120(c): a child's data needs a parent's consent.
    is_child: Mapped[bool] = mapped_column(Boolean, default=False)
    parental_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SubjectIdentity(Base):
    """Blind index of an identity value → subject. No value, only its keyed hash."""

    __tablename__ = "subject_identities"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
        ),
        Index("ix_subject_identities_subject", "tenant_id", "subject_id"),
        # An audience's "has an address on this channel", in subject order.
        Index("ix_subject_identities_kind", "tenant_id", "kind", "subject_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID)


class SubjectRecord(Base):
    """A subject's fields of one retention class, sealed together under that class's data key.

    The sealed document maps field name → value, category, source and time. One record per
    class keeps a subject's writes to one row and one AES-GCM operation (docs/decisions/0004).
    """

    __tablename__ = "subject_records"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    key_class: Mapped[str] = mapped_column(String(40), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Interaction(Base):
    """Something that happened with a subject: a chat, a call, an order… Kind, time and
    category are plain (they drive retention); the payload is sealed under the subject's key."""

    __tablename__ = "interactions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
        ),
        Index("ix_interactions_subject", "tenant_id", "subject_id", "occurred_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    category: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(24))
    key_class: Mapped[str] = mapped_column(String(40))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
