from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime
from pledge.core.ids import new_id

ALL_MARKETING = "*"  # the topic of a channel-wide marketing opt-out


class Topic(Base):
    """What a message is about (newsletter, status updates, product news…). A topic belongs to
    a purpose: whether it is marketing or a service message follows from the purpose."""

    __tablename__ = "topics"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        ForeignKeyConstraint(
            ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.id"], ondelete="RESTRICT"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelOptOut(Base):
    """A subject's "no" for a channel: one topic, or every marketing topic (`*`)."""

    __tablename__ = "channel_optouts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    topic: Mapped[str] = mapped_column(String(60), primary_key=True)
    source: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    """An address that must not be contacted on a channel, held only as a keyed hash of its
    normal form. It outlives the subject's erasure on purpose: a person who unsubscribed and
    was then erased must not be mailed again by a later import (docs/decisions/0008)."""

    __tablename__ = "suppressions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # identity kind
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UnsubscribeToken(Base):
    """An opaque per-subscription token for RFC 8058 one-click unsubscribe. The URL carries
    tenant id, token id and a 256-bit secret; only the secret's digest is stored."""

    __tablename__ = "unsubscribe_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"], ondelete="CASCADE"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    subject_id: Mapped[uuid.UUID] = mapped_column(ID)
    channel: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(60))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
