"""API shapes of preferences, unsubscribe links and the suppression list."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(max_length=16, examples=["email"])
    topic: str = Field(max_length=60, description="a topic slug, or * for every marketing topic")


class Changed(BaseModel):
    changed: bool


class TopicStateOut(BaseModel):
    topic: str
    name: str
    purpose: str
    channel: str
    marketing: bool
    consent_based: bool
    subscribed: bool


class ConsentInForceOut(BaseModel):
    purpose: str
    name: str
    since: datetime


class PreferencesOut(BaseModel):
    subject_id: str
    topics: list[TopicStateOut]
    marketing_off: dict[str, bool]
    sale_opt_out: bool
    consents: list[ConsentInForceOut]


class UnsubscribeLinkOut(BaseModel):
    url: str
    headers: dict[str, str] = Field(description="RFC 8058 List-Unsubscribe headers for it")


class PreferenceLinkOut(BaseModel):
    url: str


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    channels: list[str] | None = Field(
        default=None, max_length=4, description="default: every channel of the address"
    )


class SuppressionIn(AddressIn):
    reason: str = Field(default="manual", max_length=32)


class SuppressionCount(BaseModel):
    entries: int


class SuppressionCheck(BaseModel):
    suppressed: bool
    channels: list[str]


class SuppressionOut(BaseModel):
    kind: str
    channel: str
    reason: str
    created_at: datetime
    ref: str = Field(description="first digits of the keyed hash; the address is not kept")
