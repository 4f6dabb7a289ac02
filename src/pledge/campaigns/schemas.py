"""API shapes of campaigns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=60, description="purpose slug")
    channel: str = Field(default="email", max_length=16)
    topic: str = Field(min_length=1, max_length=60, description="topic slug (of that purpose)")
    subject_line: str = Field(min_length=1, max_length=200, examples=["News for {first_name}"])
    body: str = Field(
        min_length=1,
        max_length=100_000,
        description="text; may use {first_name}, {unsubscribe_url} and {preferences_url}",
    )


class CampaignOut(BaseModel):
    id: str
    name: str
    purpose: str
    channel: str
    topic: str
    subject_line: str
    body: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    sent_count: int
    denied_count: int
    audience_digest: str | None


class SendOut(BaseModel):
    campaign_id: str
    sent: int
    denied: int
    candidates: int
    digest: str
