"""Recipients and sub-processors: who receives the tenant's data, told of rectifications and
erasures (GDPR Art. 19) by signed webhook."""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.core.ids import new_id
from pledge.core.validation import UNCHANGED, Unchanged
from pledge.rights.models import Recipient
from pledge.tenants.jurisdictions import is_transfer
from pledge.webhooks import service as webhooks
from pledge.webhooks import targets

MAX_URL = 500  # the column's length


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
    return is_transfer(ctx.settings.region, recipient.country)


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
    return f"a transfer to {recipient.country} (outside {ctx.settings.region}) with {safeguard}"


def _check_name(name: str) -> str:
    return validation.text(name, "name", max_chars=200)


def _check_webhook_url(url: str | None) -> str | None:
    """`url` checked as where Art. 19 notices are sent (None or "": none)."""
    if not url:
        return None
    if len(url.strip()) > MAX_URL:
        raise InvalidInput(f"a webhook URL is longer than {MAX_URL} characters")
    return targets.check_url(url, "a webhook URL")


def _set_webhook(ctx: TenantContext, recipient: Recipient, url: str | None) -> str | None:
    """Send `recipient`'s notices to `url` (checked), under a new signing secret, returned to
    be shown once; None drops the URL and its secret."""
    secret = "whsec_" + secrets.token_urlsafe(32) if url else None
    recipient.webhook_url = url
    recipient.secret_sealed = webhooks.seal_secret(ctx, secret, recipient.id) if secret else None
    return secret


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


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
    webhook_url = _check_webhook_url(webhook_url)
    recipient = Recipient(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        slug=slug,
        name=_check_name(name),
        kind=kind,
        country=country.upper(),
        transfer_mechanism=mechanism,
        active=True,
        created_at=utcnow(),
    )
    secret = _set_webhook(ctx, recipient, webhook_url)
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


def get_recipient(ctx: TenantContext, slug: str) -> Recipient:
    """The tenant's recipient `slug`; NotFound as for a missing one when another tenant's."""
    recipient = ctx.session.scalar(
        for_tenant(select(Recipient), Recipient, ctx.tenant_id).where(Recipient.slug == slug)
    )
    if recipient is None:
        raise NotFound(f"no recipient {slug[:60]!r}")
    return recipient


def update_recipient(
    ctx: TenantContext,
    slug: str,
    *,
    name: str | Unchanged = UNCHANGED,
    transfer_mechanism: str | Unchanged | None = UNCHANGED,
    webhook_url: str | Unchanged | None = UNCHANGED,
    active: bool | Unchanged = UNCHANGED,
) -> tuple[Recipient, str | None]:
    """Change what is given of recipient `slug` (UNCHANGED: left as it is), checked as
    `add_recipient` checks it; audited with the old and new values. A new webhook URL gets a
    new signing secret, returned to be shown once; None (or "") for the URL drops it and its
    secret, for the mechanism records none. An inactive recipient is told in no access answer
    and sent no notice queued from then on. Returns it and the new secret, if any."""
    # Everything checked before anything changes: a refusal leaves the recipient as it was.
    new_name = _check_name(name) if isinstance(name, str) else name
    mechanism = (
        transfer_mechanism
        if isinstance(transfer_mechanism, Unchanged)
        else check_mechanism(transfer_mechanism)
    )
    url = webhook_url if isinstance(webhook_url, Unchanged) else _check_webhook_url(webhook_url)
    recipient = get_recipient(ctx, slug)
    # Read again under a lock (PostgreSQL; SQLite's writers take turns): two operators
    # changing it at once must not write back each other's stale copy.
    ctx.session.refresh(recipient, with_for_update=True)
    changed: dict[str, list[Any]] = {}
    if isinstance(new_name, str) and new_name != recipient.name:
        changed["name"] = [recipient.name, new_name]
        recipient.name = new_name
    if not isinstance(mechanism, Unchanged) and mechanism != recipient.transfer_mechanism:
        changed["transfer_mechanism"] = [recipient.transfer_mechanism, mechanism]
        recipient.transfer_mechanism = mechanism
    secret = None
    if not isinstance(url, Unchanged) and url != recipient.webhook_url:
        # The host, not the URL: a receiver's URL may carry its own access token.
        changed["webhook"] = [_host(recipient.webhook_url), _host(url)]
        secret = _set_webhook(ctx, recipient, url)
    if isinstance(active, bool) and active != recipient.active:
        changed["active"] = [recipient.active, active]
        recipient.active = active
    if changed:
        ctx.session.flush()
        # What the access answer and the letters say, and who is told of corrections and
        # erasures, changed: who changed it, from what to what.
        audit.record(
            ctx,
            AuditEvent.RECIPIENT_CHANGED,
            details={
                "recipient_id": str(recipient.id),
                "slug": recipient.slug,
                "changed": changed,
                "new_secret": secret is not None,
            },
        )
    return recipient, secret
