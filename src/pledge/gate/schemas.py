"""API shapes of the gate, audiences and the lawful-basis hygiene report."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from pledge.core.validation import AwareInstantIn
from pledge.gate.service import Reason
from pledge.purposes.models import Channel

# What each reason means, for people reading a decision (the codes are for machines).
REASON_TEXT: dict[Reason, str] = {
    Reason.SUBJECT_ERASED: "The subject has been erased.",
    Reason.PURPOSE_ARCHIVED: "The purpose is archived.",
    Reason.CHANNEL_NOT_ALLOWED: "The purpose does not use this channel.",
    Reason.RESTRICTED: "Processing is restricted (GDPR Art. 18): storage only.",
    Reason.NO_CONSENT: "The purpose needs consent and none was given.",
    Reason.CONSENT_WITHDRAWN: "The consent was withdrawn.",
    Reason.NO_BASIS: "No contract or legitimate-interest relationship covers this subject.",
    Reason.BASIS_ENDED: "The relationship this purpose relied on has ended.",
    Reason.OBJECTED: "The subject objected to this purpose (GDPR Art. 21).",
    Reason.MARKETING_OPT_OUT: "The subject opted out of marketing on this channel.",
    Reason.TOPIC_OPT_OUT: "The subject opted out of this topic on this channel.",
    Reason.SUPPRESSED: "The address is on the suppression list.",
    Reason.SALE_OPT_OUT: "The subject opted out of sale and sharing (e.g. by GPC).",
    Reason.SENSITIVE_LIMITED: "The subject limited the use of sensitive data.",
    Reason.CHILD_WITHOUT_PARENTAL_CONSENT: "A child, without a parent's consent.",
    Reason.NO_ADDRESS: "The subject has no address for this channel.",
}


class GateCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=320, description="Instead of subject_id")
    purpose: str = Field(max_length=60, examples=["newsletter"])
    channel: Channel | None = None
    topic: str | None = Field(default=None, max_length=60)
    at: AwareInstantIn | None = Field(
        default=None, description="Ask about another moment (default: now)"
    )

    @model_validator(mode="after")
    def _one_subject(self) -> GateCheckIn:
        if (self.subject_id is None) == (self.email is None):
            raise ValueError("give exactly one of subject_id, email")
        return self


class DecisionOut(BaseModel):
    allowed: bool
    subject_id: str
    purpose: str
    lawful_basis: str
    channel: str | None
    topic: str | None
    at: datetime
    reasons: list[Reason] = Field(description="Every reason that forbids the use; empty if none")
    explanations: list[str]


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=60)
    channel: Channel | None = None
    topic: str | None = Field(default=None, max_length=60)
    subject_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=100_000, description="Candidates (default: every subject)"
    )


class AudienceOut(BaseModel):
    purpose: str
    channel: str | None
    topic: str | None
    candidates: int
    allowed_count: int
    denied: int
    digest: str = Field(description="SHA-256 of the allowed ids (16 bytes each, sorted)")
    allowed_ids: list[str]


class HygieneOut(BaseModel):
    generated_at: datetime
    count: int
    purposes_considered: int
    digest: str = Field(description="SHA-256 of the ids (16 bytes each, sorted)")
    subject_ids: list[str] = Field(description="Active subjects with no lawful basis left")


class HygieneEraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_ids: list[str] = Field(min_length=1, max_length=10_000)
    confirm: StrictBool = Field(default=False, description="Must be true: erasure cannot be undone")
    keep_classes: list[str] = Field(
        default_factory=list, description="Retention classes held under a legal duty"
    )


class HygieneErasedOut(BaseModel):
    erased_count: int
    erased: list[str]
    skipped: list[str] = Field(
        description="Ids not erased: they have a basis again, or are not subjects here"
    )
