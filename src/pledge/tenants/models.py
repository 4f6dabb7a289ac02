from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pledge.core.db import ID, Base, JSONType, UTCDateTime
from pledge.core.ids import new_id


class ChildrenPolicy(StrEnum):
    """What the gate does with a child's data while no parent has consented (LAW.md
    "Children"; `gate.service.child_denied`)."""

    # GDPR Art. 8, CCPA 1798.120(c): a child's own consent, or a sale, needs a parent.
    CONSENT_NEEDS_PARENT = "consent_needs_parent"
    # Seed 001 §10: no data of a child without a parent's consent: nothing but what the law
    # needs (a legal obligation, a vital interest) uses it.
    NO_USE_WITHOUT_PARENT = "no_use_without_parent"
    # Seeds 000 and 003: the above, and a subject learnt to be such a child is erased at once.
    ERASE_ON_DISCOVERY = "erase_on_discovery"


# Under this age a person is a child: GDPR Art. 8 says 16, member states may lower it to 13;
# a tenant's own promise may say more (1CRM, Click and Resolve: 18).
DEFAULT_CHILD_AGE: Final = 16
MIN_CHILD_AGE, MAX_CHILD_AGE = 13, 18


class Tenant(Base):
    """A client of the platform: the controller of its subjects' data."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(ID, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdictions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    region: Mapped[str] = mapped_column(String(40), default="EU")
    # Default region for parsing phone numbers written without a country code.
    phone_region: Mapped[str] = mapped_column(String(2), default="GB")
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False)
    # Retention classes: each gets its own data key per subject, so data kept under a legal
    # duty (1CRM: billing records, 7 years) can outlive the shredding of the rest. A class's
    # {"keep_for": "7 years"} ends what an erasure kept, that long after it (worker).
    retention_classes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Signals. GPC is honoured as an opt-out of sale/sharing unless a tenant turns it off
    # (it should not: 11 CCR §7025). DNT is always recorded; its effect is the tenant's
    # stated policy ("record": no effect, as seed 001 §8 says; "opt_out": like GPC).
    honour_gpc: Mapped[bool] = mapped_column(Boolean, default=True)
    dnt_policy: Mapped[str] = mapped_column(String(16), default="record")
    signals_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Host names of the tenant's public pages, for /.well-known/gpc.json by Host header.
    public_hosts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Faster-than-the-law promises for rights requests, by request type or "*":
    # {"erasure": {"respond": "1 months", "restart_on_information": true}} (seed 000's form).
    rights_promises: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Days that count as holidays besides the jurisdiction's public ones, as ISO dates: they
    # move the deadlines counted in business days (and the UK's due dates off a closed day).
    closing_days: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Who the requester is told the controller is, and how to reach its privacy team.
    privacy_contact: Mapped[str] = mapped_column(String(320), default="")
    # The children's rules: under `child_age` (13-18) a person is a child, and the policy
    # says what needs a parent's consent (`ChildrenPolicy`). Set with `pledge tenant children`.
    child_age: Mapped[int] = mapped_column(Integer, default=DEFAULT_CHILD_AGE)
    children_policy: Mapped[str] = mapped_column(
        String(24), default=ChildrenPolicy.CONSENT_NEEDS_PARENT.value
    )
    # Interactions deleted a period after they occurred (seed 004: call recordings, 12
    # months): [{"category": …, "kind": … or null, "keep": "12 months"}], set with
    # `pledge tenant interaction-retention` (`subjects.retention`).
    interaction_retention: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
