"""Recipients and sub-processors: who receives the tenant's data, told of rectifications and
erasures (GDPR Art. 19) by signed webhook."""

from __future__ import annotations

import secrets
from enum import StrEnum

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput
from pledge.core.ids import new_id
from pledge.rights.models import Recipient
from pledge.tenants.jurisdictions import is_transfer
from pledge.webhooks import service as webhooks
from pledge.webhooks import targets


class TransferMechanism(StrEnum):
    """How a transfer out of the tenant's region is safeguarded (GDPR Art. 45–49; UK GDPR
    Art. 46 with the UK's IDTA or addendum)."""

    ADEQUACY_DECISION = "adequacy_decision"
    STANDARD_CONTRACTUAL_CLAUSES = "standard_contractual_clauses"
    UK_IDTA = "uk_idta"
    BINDING_CORPORATE_RULES = "binding_corporate_rules"
    DEROGATION_ART49 = "derogation_art49"
    NONE = "none"


# The safeguard as the access answer tells it to the person.
SAFEGUARDS: dict[str | None, str] = {
    TransferMechanism.ADEQUACY_DECISION: "an adequacy decision",
    TransferMechanism.STANDARD_CONTRACTUAL_CLAUSES: "standard contractual clauses",
    TransferMechanism.UK_IDTA: "the UK International Data Transfer Agreement or Addendum",
    TransferMechanism.BINDING_CORPORATE_RULES: "binding corporate rules",
    TransferMechanism.DEROGATION_ART49: "a derogation for a specific situation (Art. 49)",
    TransferMechanism.NONE: "none",
    None: "no safeguard recorded",
}


def check_mechanism(value: str | None) -> str | None:
    """`value` checked as a `TransferMechanism` (None or "": none recorded)."""
    if not value:
        return None
    try:
        return TransferMechanism(value.strip().lower()).value
    except ValueError:
        known = ", ".join(m.value for m in TransferMechanism)
        raise InvalidInput(f"transfer mechanism is one of: {known}") from None


def is_transferred(ctx: TenantContext, recipient: Recipient) -> bool:
    """Whether data sent to `recipient` leaves the tenant's region (GDPR Art. 44)."""
    return is_transfer(ctx.tenant.region, recipient.country)


def transfer_warning(ctx: TenantContext, recipient: Recipient) -> str | None:
    """What staff are warned of: a transfer with no safeguard recorded (or "none")."""
    if not is_transferred(ctx, recipient):
        return None
    if recipient.transfer_mechanism is None:
        safeguard = "no safeguard recorded"
    elif recipient.transfer_mechanism == TransferMechanism.NONE:
        safeguard = "no safeguard"
    else:
        return None
    return f"a transfer to {recipient.country} (outside {ctx.tenant.region}) with {safeguard}"


def add_recipient(
    ctx: TenantContext,
    *,
    slug: str,
    name: str,
    kind: str,
    country: str,
    webhook_url: str | None,
    transfer_mechanism: str | None = None,
) -> tuple[Recipient, str | None]:
    """Register a recipient; returns it and, when it has a webhook, its signing secret
    (shown once). Its `transfer_mechanism` (a `TransferMechanism`) is optional: a transfer
    with none recorded is added, and told and warned of as such."""
    validation.slug(slug, "slug")
    if kind not in {"recipient", "sub_processor"}:
        raise InvalidInput("kind is recipient or sub_processor")
    if len(country) != 2 or not country.isalpha():
        raise InvalidInput("country is a two-letter code")
    mechanism = check_mechanism(transfer_mechanism)
    if ctx.session.scalar(
        for_tenant(select(Recipient.id), Recipient, ctx.tenant_id).where(Recipient.slug == slug)
    ):
        raise Conflict(f"recipient {slug!r} already exists")
    if webhook_url:
        webhook_url = targets.check_url(webhook_url, "a webhook URL")
    recipient_id = new_id()
    secret = "whsec_" + secrets.token_urlsafe(32) if webhook_url else None
    recipient = Recipient(
        tenant_id=ctx.tenant_id,
        id=recipient_id,
        slug=slug,
        name=validation.text(name, "name", max_chars=200),
        kind=kind,
        country=country.upper(),
        transfer_mechanism=mechanism,
        webhook_url=webhook_url,
        secret_sealed=webhooks.seal_secret(ctx, secret, recipient_id) if secret else None,
        active=True,
        created_at=utcnow(),
    )
    ctx.session.add(recipient)
    ctx.session.flush()
    # Who is told of people's corrections and erasures, and where their data goes: a change
    # to that is a change to what the access answer and the letters say.
    audit.record(
        ctx,
        AuditEvent.RECIPIENT_ADDED,
        details={
            "recipient_id": str(recipient.id),
            "slug": slug,
            "kind": kind,
            "country": recipient.country,
            "transfer_mechanism": mechanism,
            "webhook": webhook_url is not None,
        },
    )
    return recipient, secret


def list_recipients(ctx: TenantContext) -> list[Recipient]:
    return list(
        ctx.session.scalars(
            for_tenant(select(Recipient), Recipient, ctx.tenant_id).order_by(Recipient.slug)
        )
    )
