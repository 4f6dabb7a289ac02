from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id


class RequestType(StrEnum):
    ACCESS = "access"  # a copy of the data (GDPR Art. 15; CCPA specific pieces)
    ACCESS_CATEGORIES = "access_categories"  # CCPA: the categories only
    PORTABILITY = "portability"  # Art. 20: what the person provided, on consent or contract
    RECTIFICATION = "rectification"  # Art. 16; CCPA right to correct
    ERASURE = "erasure"  # Art. 17; CCPA right to delete
    RESTRICTION = "restriction"  # Art. 18
    OBJECTION = "objection"  # Art. 21
    OPT_OUT_SALE = "opt_out_sale"  # CCPA 1798.120; state opt-outs
    LIMIT_SENSITIVE = "limit_sensitive"  # CPRA 1798.121
    WITHDRAW_CONSENT = "withdraw_consent"  # Art. 7(3)
    AUTOMATED_DECISION = "automated_decision"  # Art. 22


class RequestChannel(StrEnum):
    PRIVACY_CENTER = "privacy_center"
    API = "api"
    STAFF = "staff"
    AUTHORIZED_AGENT = "authorized_agent"
    FORWARDED = "forwarded"  # from the operator acting as processor, or from a controller


class RequestState(StrEnum):
    RECEIVED = "received"
    AWAITING_VERIFICATION = "awaiting_verification"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"  # waiting on the requester (clarification, fee)
    COMPLETED = "completed"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    CLOSED_UNVERIFIED = "closed_unverified"
    APPEALED = "appealed"
    APPEAL_DENIED = "appeal_denied"


OPEN_STATES = frozenset(
    {
        RequestState.RECEIVED,
        RequestState.AWAITING_VERIFICATION,
        RequestState.VERIFIED,
        RequestState.IN_PROGRESS,
        RequestState.PAUSED,
        RequestState.APPEALED,
    }
)


class RightsRequest(Base):
    """A request by or for a person to exercise a right. What identifies the requester (the
    contact address, an agent's details) and what they asked for is sealed; the row keeps
    only what the clock and the queue need. Records are purged 24 months after closing
    (CCPA 11 CCR 7101), by `pledge worker` (or `pledge rights jobs`)."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        Index("ix_rights_requests_queue", "tenant_id", "state", "due_on"),
        Index("ix_rights_requests_contact", "tenant_id", "contact_index", "received_at"),
        Index("ix_rights_requests_subject", "tenant_id", "subject_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(16))  # what the requester quotes
    type: Mapped[str] = mapped_column(String(24))
    jurisdiction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(20))
    requester_kind: Mapped[str] = mapped_column(String(10), default="subject")
    state: Mapped[str] = mapped_column(String(24), default=RequestState.RECEIVED.value)
    # Matched once verified; no foreign key, the request record outlives an erasure.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    # Keyed hash of the requester's normalised e-mail: frequency limits and rate limits.
    contact_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Contact, agent details and the specifics of the request, sealed (tenant key).
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    verification_level: Mapped[str] = mapped_column(String(32), default="none")
    verification_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    appeal_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    appeal_extended: Mapped[bool] = mapped_column(Boolean, default=False)
    appeal_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A cache of the clock's answer for sorting the queue; recomputed on every change and
    # never the only truth (LAW.md: derive the due date from the stored moments).
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    # Frequency and fees: flagged for a human decision, never refused automatically.
    repetitive: Mapped[bool] = mapped_column(Boolean, default=False)
    fee_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fee_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    fee_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _request_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "request_id"],
        ["rights_requests.tenant_id", "rights_requests.id"],
        ondelete="CASCADE",
    )


class RequestEvent(Base):
    """The request's timeline: every transition and action, when and by whom. No personal
    values (those live sealed on the request and its artifacts)."""

    __tablename__ = "rights_request_events"
    __table_args__ = (
        _request_fk(),
        Index("ix_rights_request_events", "tenant_id", "request_id", "at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ID)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class RequestPause(Base):
    """A time the request waits on the requester (clarification, ID, a fee)."""

    __tablename__ = "rights_request_pauses"
    __table_args__ = (_request_fk(),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ID)
    reason: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VerificationChallenge(Base):
    """A one-time code or link sent to the requester. Only a digest of the secret is kept;
    expiring, with a limited number of attempts; deleted (all of the request's) when one is
    used, so it is used once."""

    __tablename__ = "rights_verifications"
    __table_args__ = (_request_fk(),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ID)
    method: Mapped[str] = mapped_column(String(16))
    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    link_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class RequestArtifact(Base):
    """A file of the request — the access bundle, a letter, a proof the requester sent —
    sealed (under the subject's data key when one is matched, so an erasure reaches it)."""

    __tablename__ = "rights_artifacts"
    # By request: a verification re-seals, an erasure reaches, a page lists a request's files.
    __table_args__ = (
        _request_fk(),
        Index("ix_rights_artifacts_request", "tenant_id", "request_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(24))  # bundle | letter | proof | transfer
    media_type: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    key_scope: Mapped[str] = mapped_column(String(10))  # "subject" or "tenant"
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DownloadLink(Base):
    """A single-use, expiring link to an artifact, for the requester (privacy center)."""

    __tablename__ = "rights_downloads"
    __table_args__ = (_request_fk(),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(ID)
    artifact_id: Mapped[uuid.UUID] = mapped_column(ID)
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Recipient(Base):
    """Someone the tenant discloses data to — a recipient or a sub-processor — notified of
    rectifications and erasures (GDPR Art. 19) by signed webhook."""

    __tablename__ = "recipients"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # recipient | sub_processor
    country: Mapped[str] = mapped_column(String(2))
    # How a transfer to it (its country outside the tenant's region) is safeguarded: a
    # `recipients.TransferMechanism`; None when none is recorded.
    transfer_mechanism: Mapped[str | None] = mapped_column(String(40), nullable=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
