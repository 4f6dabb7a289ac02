"""API shapes of the consent ledger, receipts, intake, relationships, objections and the
privacy state the gate reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pledge.consent.models import ConsentAction, ConsentMethod
from pledge.subjects.schemas import FieldIn

# What the browser's privacy signals sent with the call did (`pledge.signals.service`).
SIGNAL_EFFECTS = (
    "What Global Privacy Control or Do Not Track sent with this call did: `sale_opt_out` "
    "(GPC opted the person out of sale/sharing), `sale_opt_out_already` (they were opted out "
    "already), `sale_opt_in_kept` (their explicit opt-in stands: a signal never overrides it), "
    "`dnt_opt_out` (DNT opted them out, where the tenant treats DNT so). Empty: no signal, or "
    "none honoured."
)


class SignalsIn(BaseModel):
    """What the person's browser sent, forwarded by the integrator. A `Sec-GPC: 1` (or `DNT`)
    header on the API request itself counts too."""

    model_config = ConfigDict(extra="forbid")

    gpc: StrictBool = Field(default=False, description="Global Privacy Control (Sec-GPC: 1)")
    dnt: StrictBool | None = Field(
        default=None, description="Do Not Track: the header `DNT: 1` → true, `DNT: 0` → false"
    )
    ip: str | None = Field(
        default=None, max_length=64, description="Kept only as a MAC under the subject's key"
    )
    user_agent: str | None = Field(
        default=None, max_length=1000, description="Kept only as a MAC under the subject's key"
    )


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=60, examples=["newsletter"])
    action: ConsentAction = ConsentAction.GRANT
    method: ConsentMethod = ConsentMethod.API
    wording_version_id: str | None = Field(
        default=None,
        max_length=40,
        description="The consent wording version shown (required to grant)",
    )
    collection_point: str | None = Field(default=None, max_length=60)
    prechecked: StrictBool = Field(
        default=False, description="The box was ticked before the person acted: refused"
    )
    signals: SignalsIn | None = None


class ConsentRecordOut(BaseModel):
    id: str
    subject_id: str
    purpose: str
    action: str
    recorded_at: datetime
    method: str
    collection_point: str | None
    wording_version_id: str | None
    wording_sha256: str | None
    notice_version_id: str | None = Field(description="Privacy notice in force where given")
    gpc: bool
    dnt: bool | None
    receipt: str | None = Field(
        description="Signed consent receipt (compact JWS, EdDSA/Ed25519; Kantara CR v1.1 claims)"
    )
    signal_effects: list[str] = Field(default_factory=list, description=SIGNAL_EFFECTS)


class WordingShown(BaseModel):
    version_id: str
    notice: str
    version: int
    language: str
    sha256: str
    text: str = Field(description="The exact text the person saw")


class NoticeInForce(BaseModel):
    version_id: str
    notice: str
    version: int
    language: str
    sha256: str


class TimelineEntryOut(ConsentRecordOut):
    purpose_name: str
    collection_point_name: str | None
    wording: WordingShown | None
    privacy_notice: NoticeInForce | None


class TimelineOut(BaseModel):
    subject_id: str
    sale_opt_out: bool
    sale_opt_out_source: str | None = Field(description="gpc, dnt, request, … or null")
    entries: list[TimelineEntryOut] = Field(description="Oldest first")


class WithdrawAllIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: ConsentMethod = ConsentMethod.API


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: str = Field(min_length=1, max_length=20_000, description="Compact JWS")


class ReceiptCheck(BaseModel):
    valid: bool
    reason: str | None
    kid: str | None
    claims: dict[str, Any] | None


class Jwk(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(BaseModel):
    keys: list[Jwk]


# ---------------------------------------------------------------------------------------------
# Intake


class ConsentChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=60)
    checked: StrictBool
    prechecked: StrictBool = False


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection_point: str = Field(max_length=60, examples=["newsletter"])
    fields: list[FieldIn] = Field(min_length=1, max_length=200)
    consents: list[ConsentChoiceIn] = Field(default_factory=list, max_length=100)
    signals: SignalsIn | None = None
    method: ConsentMethod = ConsentMethod.WEB_FORM
    language: str = Field(default="en", max_length=16)


class CollectedOut(BaseModel):
    subject_id: str
    created: bool
    relationships: list[str]
    consents: list[str]
    signal_effects: list[str] = Field(description=SIGNAL_EFFECTS)


# ---------------------------------------------------------------------------------------------
# Relationships, objections, privacy state


class RelationshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection_point: str | None = Field(default=None, max_length=60)


class RelationshipOut(BaseModel):
    purpose: str
    lawful_basis: str
    since: datetime
    until: datetime | None
    in_force: bool


class ObjectionOut(BaseModel):
    purpose: str
    since: datetime
    overridden: bool
    overridden_at: datetime | None


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grounds: str = Field(
        min_length=10, max_length=5000, description="The compelling legitimate grounds"
    )


class PrivacyStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    restricted: StrictBool | None = Field(
        default=None,
        description="GDPR Art. 18 restriction set through this API: `true` restricts the "
        "subject on this API's ground, `false` lifts that ground only. A restriction the "
        "person asked for, or one while a correction is checked, stays (see "
        "`restriction_grounds` in the answer).",
    )
    sale_opt_out: StrictBool | None = Field(
        default=None, description="CCPA opt-out of sale/sharing"
    )
    limit_sensitive: StrictBool | None = Field(default=None, description="CPRA limit sensitive PI")
    is_child: StrictBool | None = None
    parental_consent: StrictBool | None = None


class PurposeConsent(BaseModel):
    purpose: str
    granted: bool


class RestrictionGroundOut(BaseModel):
    ground: Literal["api", "request", "accuracy"] = Field(
        description="`api`: set through this API, lifted here. `request`: the person asked "
        "for it (GDPR Art. 18(1)(b)-(d)); staff lift it from that rights request, the person "
        "told first (Art. 18(3)). `accuracy`: a correction the person asked for is being "
        "checked (Art. 18(1)(a)); it ends when that request is decided or withdrawn."
    )
    request_id: str | None = Field(
        description="The rights request the ground was set from (`request`, `accuracy`)"
    )


class PrivacyStateOut(BaseModel):
    subject_id: str
    status: str
    restricted: bool
    restricted_at: datetime | None
    restriction_grounds: list[RestrictionGroundOut] = Field(
        description="Why the subject is restricted: `restricted` holds while any ground does. "
        "Lifting the restriction here ends the `api` ground only; when others remain, "
        "`restricted` stays true and they are listed."
    )
    sale_opt_out: bool
    sale_opt_out_at: datetime | None
    sale_opt_out_source: str | None
    limit_sensitive: bool
    limit_sensitive_at: datetime | None
    is_child: bool
    parental_consent: bool
    parental_consent_at: datetime | None
    consents: list[PurposeConsent]
    relationships: list[RelationshipOut]
    objections: list[ObjectionOut]
