from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime
from pledge.core.ids import new_id


class ConsentAction(StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


class ConsentMethod(StrEnum):
    WEB_FORM = "web_form"
    API = "api"
    IMPORT = "import"
    EMAIL_LINK = "email_link"
    STAFF_PHONE = "staff_phone"
    PREFERENCE_CENTER = "preference_center"
    LIVE_CHAT = "live_chat"
    UNSUBSCRIBE = "unsubscribe"


def _subject_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
    )


def _purpose_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.id"], ondelete="RESTRICT"
    )


class ConsentRecord(Base):
    """One grant or withdrawal, as it happened. Append-only: never updated, never deleted by
    the application (GDPR Art. 7(1): the controller must be able to demonstrate consent).

    It proves who (subject id), when (server clock), what (the exact wording version and its
    hash, the privacy notice in force), how (method, collection point), and the signals sent
    (GPC, DNT). IP and user agent are kept only as MACs under the subject's data key: they
    can confirm a claimed value while the subject exists, and mean nothing once it is erased.
    """

    __tablename__ = "consent_records"
    __table_args__ = (
        _subject_fk(),
        _purpose_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "wording_version_id"], ["notice_versions.tenant_id", "notice_versions.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "notice_version_id"], ["notice_versions.tenant_id", "notice_versions.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
        ),
        Index("ix_consent_records_subject", "tenant_id", "subject_id", "recorded_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID)
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(24))
    collection_point_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    # The consent wording shown (its version and hash) and the privacy notice in force.
    wording_version_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    wording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notice_version_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    dnt: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    ip_mac: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    user_agent_mac: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Kantara consent receipt v1.1, signed (JWS, EdDSA) with the tenant's receipt key.
    receipt_jws: Mapped[str | None] = mapped_column(Text, nullable=True)


class ConsentState(Base):
    """The current answer per subject and purpose, kept in step with the ledger in the same
    transaction, so the gate reads one row instead of replaying history."""

    __tablename__ = "consent_states"
    __table_args__ = (
        _subject_fk(),
        _purpose_fk(),
        Index("ix_consent_states_audience", "tenant_id", "purpose_id", "granted", "subject_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    record_id: Mapped[uuid.UUID] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectPurpose(Base):
    """A basis other than consent on which a subject is held for a purpose: the contract they
    signed, the legitimate interest of the channel they came through, a legal obligation.
    `until` closes it (contract ended); consent lives in the ledger instead."""

    __tablename__ = "subject_purposes"
    __table_args__ = (
        _subject_fk(),
        _purpose_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
        ),
        Index("ix_subject_purposes_audience", "tenant_id", "purpose_id", "subject_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    collection_point_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Objection(Base):
    """GDPR Art. 21: an objection stops a legitimate-interest purpose unless staff record
    compelling grounds; an objection to direct marketing is absolute (Art. 21(3), seed 004)."""

    __tablename__ = "objections"
    __table_args__ = (_subject_fk(), _purpose_fk())

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    # Staff's compelling grounds, sealed under the subject's key: a free-text note about a
    # person is personal data.
    grounds_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    overridden_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
