"""API shapes of rights requests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from pledge.rights.models import RequestChannel, RequestType
from pledge.rights.recipients import TransferMechanism


class RequesterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    agent_name: str = Field(default="", max_length=200)
    agent_email: str = Field(default="", max_length=320)
    agent_permission: str = Field(
        default="", max_length=5000, description="The agent's signed permission"
    )
    agent_power_of_attorney: str = Field(
        default="",
        max_length=5000,
        description="The person's power of attorney the agent holds (the document or a "
        "reference to it), where the law lets it replace the person's confirmation "
        "(California: 11 CCR 7063(b)); the request then waits for staff to accept it",
    )


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: RequestType
    requester: RequesterIn
    jurisdiction: str | None = Field(default=None, max_length=8, examples=["EU", "US-CA"])
    channel: RequestChannel = RequestChannel.API
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="What exactly is asked: `proposed` {field: value} for a rectification, "
        "`purposes` [slug] for an objection or withdrawal, a `note`",
    )


class RequestBatchIn(BaseModel):
    """Many opt-outs of sale/sharing or "limit" requests at once — e.g. from an authorized
    agent acting for many consumers. Other types need verification: send them one by one."""

    model_config = ConfigDict(extra="forbid")

    requests: list[RequestIn] = Field(min_length=1, max_length=1000)


class DeadlinesOut(BaseModel):
    starts: date
    acknowledge_by: date | None
    first_due: date
    due: date
    extended_due: date | None
    extended: bool
    paused_days: int
    paused: bool
    appeal_due: date | None
    appeal_extended: bool = False


class EventOut(BaseModel):
    at: datetime
    kind: str
    from_state: str | None
    to_state: str | None
    actor: str
    details: dict[str, Any]


class RequestOut(BaseModel):
    id: str
    reference: str
    type: str
    jurisdiction: str
    channel: str
    requester_kind: str
    state: str
    subject_id: str | None
    verification_level: str
    received_at: datetime
    verified_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    due_on: date | None
    repetitive: bool
    fee_cents: int | None = None
    assigned_to: str | None
    deadlines: DeadlinesOut | None = None
    timeline: list[EventOut] | None = None


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=12)
    data_points: dict[str, str] = Field(default_factory=dict)
    declaration: StrictBool = False


class OtherMeansIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="How the requester was verified (kept sealed with the request)",
    )
    declaration: StrictBool = Field(
        default=False,
        description="The requester signed the declaration the law asks for (California, "
        "specific pieces: 11 CCR 7062); required there",
    )


class PowerOfAttorneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: StrictBool = Field(
        description="true: verified without the person's confirmation; false: the person "
        "is sent the code to confirm, as for any agent's request"
    )
    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="How the power of attorney and the agent were checked, or why it is "
        "not accepted (kept sealed with the request)",
    )
    declaration: StrictBool = Field(
        default=False,
        description="The agent signed the declaration the law asks for (California, "
        "specific pieces: 11 CCR 7062); required there to accept",
    )


class FeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cents: StrictInt = Field(ge=0, le=100_000, description="The fee in cents; 0 clears it")
    reason: str = Field(default="", max_length=2000, description="Why a fee is charged")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    code: str = Field(default="refused", max_length=40)


class FulfilIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: StrictBool = True
    holds: dict[str, str] = Field(
        default_factory=dict, description="Retention class → why it is kept"
    )
    purposes: list[str] = Field(default_factory=list)
    compelling_grounds: dict[str, str] = Field(default_factory=dict)
    note: str = Field(default="", max_length=5000)
    transfer_url: str = Field(default="", max_length=500)


class FulfilOut(BaseModel):
    state: str
    outcome: str
    kept: list[str]
    download_url: str | None


class AppealDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: StrictBool
    reason: str = Field(default="", max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None


class SlaOut(BaseModel):
    open_by_state: dict[str, int]
    due_this_week: int
    overdue: int
    median_days_to_close: float | None
    closed_last_90_days: int


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(max_length=60)
    name: str = Field(max_length=200)
    kind: str = Field(default="recipient", pattern="^(recipient|sub_processor)$")
    country: str = Field(min_length=2, max_length=2)
    transfer_mechanism: TransferMechanism | None = Field(
        default=None,
        description="How a transfer to it (its country outside the tenant's region) is "
        "safeguarded; none recorded is allowed, and warned of",
    )
    webhook_url: str | None = Field(default=None, max_length=500)


class RecipientChangeIn(BaseModel):
    """What to change of a recipient: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    transfer_mechanism: TransferMechanism | None = Field(
        default=None, description="null: none recorded (a transfer is then warned of)"
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=500,
        description="A new URL gets a new signing secret (shown once); null: no more notices",
    )
    active: StrictBool | None = Field(
        default=None, description="false: told in no access answer, sent no new notice"
    )


class RecipientOut(BaseModel):
    id: str
    slug: str
    name: str
    kind: str
    country: str
    transfer_mechanism: str | None
    warning: str | None = Field(
        default=None, description="A transfer out of the tenant's region with no safeguard"
    )
    webhook_url: str | None
    active: bool
    secret: str | None = Field(default=None, description="Shown once, when created or rotated")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=500)
    events: list[str] = Field(min_length=1)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    active: bool
    secret: str | None = Field(default=None, description="Shown once, when created or rotated")


class ItemError(BaseModel):
    code: str
    detail: str


class BatchItemOut(BaseModel):
    """One request of a batch, at its position: the request, or why it was refused."""

    position: int
    request: RequestOut | None = None
    error: ItemError | None = None


class BatchOut(BaseModel):
    received: int
    refused: int
    results: list[BatchItemOut]
