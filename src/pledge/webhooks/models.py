from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry


class WebhookEndpoint(Base):
    """An integrator's URL subscribed to events. The signing secret is sealed."""

    __tablename__ = "webhook_endpoints"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event to one URL. The payload may name a person (an erasure notice must tell the
    recipient whom to erase), so it is sealed at rest, and dropped once the delivery is done
    with (delivered, or failed for good)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # A target's pending deliveries: is it failing, and its retries due once it is up.
        Index("ix_webhook_deliveries_target", "tenant_id", "target_kind", "target_id", "status"),
        # A rights request's deliveries, purged with it.
        Index("ix_webhook_deliveries_request", "tenant_id", "request_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    event: Mapped[str] = mapped_column(String(60))
    target_kind: Mapped[str] = mapped_column(String(16))  # endpoint | recipient
    target_id: Mapped[uuid.UUID] = mapped_column(ID)
    # The rights request it is about (a transfer, a notice to recipients, a state change).
    request_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    # None once delivered or failed for good: what is done with is not kept.
    payload_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
