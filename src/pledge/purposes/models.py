from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id


class LawfulBasis(StrEnum):
    """GDPR Art. 6(1), named as in the W3C Data Privacy Vocabulary (https://w3id.org/dpv#)."""

    CONSENT = "Consent"  # (a)
    CONTRACT = "Contract"  # (b)
    LEGAL_OBLIGATION = "LegalObligation"  # (c)
    VITAL_INTEREST = "VitalInterest"  # (d)
    PUBLIC_INTEREST = "PublicInterest"  # (e) public task
    OFFICIAL_AUTHORITY = "OfficialAuthorityOfController"  # (e) official authority
    LEGITIMATE_INTEREST = "LegitimateInterest"  # (f)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POST = "post"
    WEB = "web"  # on-site personalisation, analytics, advertising


class CollectionPointKind(StrEnum):
    """How data arrives. Seed 004 (Clik) lists one purpose and basis per such channel."""

    WEB_FORM = "web_form"
    LIVE_CHAT = "live_chat"
    TRIAL_DOWNLOAD = "trial_download"
    DEMO_REGISTRATION = "demo_registration"
    PRODUCT_INTEREST = "product_interest"
    PURCHASE = "purchase"
    NEWSLETTER_SIGNUP = "newsletter_signup"
    STATUS_SUBSCRIPTION = "status_subscription"
    PHONE_CALL = "phone_call"
    EMAIL = "email"
    LETTER = "letter"
    TRADE_SHOW = "trade_show"
    WEBSITE_VISIT = "website_visit"
    INTEGRATED_SERVICE = "integrated_service"
    IMPORT = "import"
    API = "api"


class Purpose(Base):
    """Why data is used. The gate answers per purpose; the basis decides what it checks."""

    __tablename__ = "purposes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        ForeignKeyConstraint(
            ["tenant_id", "consent_notice_id"], ["notices.tenant_id", "notices.id"]
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lawful_basis: Mapped[str] = mapped_column(String(40))
    dpv_purpose: Mapped[str | None] = mapped_column(String(80), nullable=True)
    data_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    # CCPA "sale" or "sharing" (cross-context behavioural advertising): GPC opts out of it.
    is_sale_or_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    legitimate_interest_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The consent wording shown by default when this purpose asks for consent.
    consent_notice_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CollectionPoint(Base):
    """Where data is collected: a form, a chat, a call… with the privacy notice shown there."""

    __tablename__ = "collection_points"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        ForeignKeyConstraint(
            ["tenant_id", "privacy_notice_id"], ["notices.tenant_id", "notices.id"]
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    privacy_notice_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CollectionPointPurpose(Base):
    """A purpose a collection point collects for, and the consent wording shown there."""

    __tablename__ = "collection_point_purposes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "collection_point_id"],
            ["collection_points.tenant_id", "collection_points.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "consent_notice_id"], ["notices.tenant_id", "notices.id"]
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    collection_point_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    purpose_id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True)
    consent_notice_id: Mapped[uuid.UUID | None] = mapped_column(ID, nullable=True)
