from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime
from pledge.core.ids import new_id


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by one process, in a backend's hands (`mail.service`)
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxMessage(Base):
    """A message waiting for (or done with) delivery. Recipient, subject line, body and
    headers are sealed: under the subject's data key when the message is about a subject, so
    erasing the subject also makes its queued mail unreadable; else under the tenant's key."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status", "tenant_id", "status", "created_at"),
        Index("ix_outbox_campaign", "tenant_id", "campaign_id"),
        Index("ix_outbox_request", "tenant_id", "request_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.QUEUED.value)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    # The rights request a letter is about (kind "rights_letter"): purged with the request.
    request_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
