"""API shapes of purposes, collection points and topics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pledge.purposes.models import Channel, CollectionPointKind, LawfulBasis

SLUG = r"^[a-z][a-z0-9_-]{0,59}$"


# ---------------------------------------------------------------------------------------------
# Purposes


class PurposeFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["The Clik newsletter"])
    lawful_basis: LawfulBasis = Field(
        description="GDPR Art. 6(1) basis, as a W3C DPV term (https://w3id.org/dpv#)"
    )
    description: str = Field(default="", max_length=5000)
    data_categories: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Fides data categories the purpose uses",
        examples=[["user.contact.email"]],
    )
    channels: list[Channel] = Field(
        default_factory=list, description="Channels it may use; empty means any"
    )
    is_marketing: StrictBool = False
    is_sale_or_sharing: StrictBool = Field(
        default=False, description="CCPA sale or sharing: GPC and opt-outs stop it"
    )
    legitimate_interest_note: str | None = Field(
        default=None,
        max_length=5000,
        description="The legitimate interest pursued (required for LegitimateInterest)",
    )
    dpv_purpose: str | None = Field(default=None, max_length=80, examples=["DirectMarketing"])
    consent_notice: str | None = Field(
        default=None,
        max_length=60,
        description="Slug of the consent-wording notice shown by default (consent purposes)",
    )


class PurposeIn(PurposeFields):
    slug: str = Field(pattern=SLUG, examples=["newsletter"])


class PurposeOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    lawful_basis: str
    dpv_purpose: str | None
    data_categories: list[str]
    sensitive: bool = Field(description="Uses a sensitive data category")
    channels: list[str]
    is_marketing: bool
    is_sale_or_sharing: bool
    legitimate_interest_note: str | None
    consent_notice: str | None
    collection_points: list[str] = Field(description="Where data is collected for it")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


# ---------------------------------------------------------------------------------------------
# Collection points


class CollectsForIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=60)
    consent_notice: str | None = Field(
        default=None,
        max_length=60,
        description="Consent wording shown here (else the purpose's default)",
    )


class CollectionPointFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: CollectionPointKind
    purposes: list[CollectsForIn] = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=5000)
    privacy_notice: str | None = Field(
        default=None, max_length=60, description="Slug of the privacy notice shown here"
    )


class CollectionPointIn(CollectionPointFields):
    slug: str = Field(pattern=SLUG, examples=["newsletter"])


class CollectsForOut(BaseModel):
    purpose: str
    name: str
    lawful_basis: str
    is_marketing: bool
    legitimate_interest_note: str | None
    consent_notice: str | None = Field(description="Consent wording shown here, if any")
    wording_version_id: str | None = Field(
        description="The wording version in force now: cite it when recording the consent"
    )
    wording_sha256: str | None
    wording_text: str | None


class CollectionPointOut(BaseModel):
    id: str
    slug: str
    name: str
    kind: str
    description: str
    privacy_notice: str | None
    created_at: datetime
    purposes: list[CollectsForOut]


# ---------------------------------------------------------------------------------------------
# Topics


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    purpose: str = Field(max_length=60, description="Slug of the purpose the topic serves")
    description: str = Field(default="", max_length=2000)


class TopicOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    purpose: str
    is_marketing: bool
    created_at: datetime
