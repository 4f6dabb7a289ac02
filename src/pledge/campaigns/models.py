from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime
from pledge.core.ids import new_id


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"


class Campaign(Base):
    """A message to everyone the gate allows for a purpose, on a channel, about a topic.
    Sent once; the next issue is a new campaign."""

    __tablename__ = "campaigns"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.id"], ondelete="RESTRICT"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "topic_id"], ["topics.tenant_id", "topics.id"], ondelete="RESTRICT"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(String(16))
    topic_id: Mapped[uuid.UUID] = mapped_column(ID)
    # A template: `{first_name}` and `{unsubscribe_url}` are filled per recipient at send time.
    subject_line: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    denied_count: Mapped[int] = mapped_column(Integer, default=0)
    # SHA-256 over the ids the gate allowed: the same digest as the audience's audit entry.
    audience_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
