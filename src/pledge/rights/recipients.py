"""Recipients and sub-processors: who receives the tenant's data, told of rectifications and
erasures (GDPR Art. 19) by signed webhook."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput
from pledge.core.ids import new_id
from pledge.rights.models import Recipient
from pledge.webhooks import service as webhooks
from pledge.webhooks import targets


def add_recipient(
    ctx: TenantContext, *, slug: str, name: str, kind: str, country: str, webhook_url: str | None
) -> tuple[Recipient, str | None]:
    """Register a recipient; returns it and, when it has a webhook, its signing secret
    (shown once)."""
    validation.slug(slug, "slug")
    if kind not in {"recipient", "sub_processor"}:
        raise InvalidInput("kind is recipient or sub_processor")
    if len(country) != 2 or not country.isalpha():
        raise InvalidInput("country is a two-letter code")
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
        webhook_url=webhook_url,
        secret_sealed=webhooks.seal_secret(ctx, secret, recipient_id) if secret else None,
        active=True,
        created_at=utcnow(),
    )
    ctx.session.add(recipient)
    ctx.session.flush()
    return recipient, secret


def list_recipients(ctx: TenantContext) -> list[Recipient]:
    return list(
        ctx.session.scalars(
            for_tenant(select(Recipient), Recipient, ctx.tenant_id).order_by(Recipient.slug)
        )
    )
