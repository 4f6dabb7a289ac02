from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, UTCDateTime
from pledge.core.ids import new_id


class NoticeKind(StrEnum):
    PRIVACY_NOTICE = "privacy_notice"
    CONSENT_WORDING = "consent_wording"


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NoticeVersion(Base):
    """One version of a notice in one language. Never edited: a change is a new version, so a
    consent proof keeps pointing at the exact words that were shown (seed 000)."""

    __tablename__ = "notice_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "notice_id", "language", "version"),
        ForeignKeyConstraint(
            ["tenant_id", "notice_id"], ["notices.tenant_id", "notices.id"], ondelete="RESTRICT"
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    notice_id: Mapped[uuid.UUID] = mapped_column(ID)
    version: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(Text, default="")
    # A material change is announced to the people it affects before it takes effect
    # (seed 002 "Material Change"; seeds 003 and 004 notify by e-mail).
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NoticeAnnouncement(Base):
    """An advance notice of a material change, sent through the mail outbox."""

    __tablename__ = "notice_announcements"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "version_id"], ["notice_versions.tenant_id", "notice_versions.id"]
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    version_id: Mapped[uuid.UUID] = mapped_column(ID)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
