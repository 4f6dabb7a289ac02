"""Creating and finding tenants. Only the operator (CLI) creates tenants."""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from pledge.access.context import OPERATOR, Actor, TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.core.ids import new_id
from pledge.crypto.keystore import KeyStore
from pledge.tenants.jurisdictions import Jurisdiction
from pledge.tenants.models import Tenant

SLUG = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def create_tenant(
    session: Session,
    keystore: KeyStore,
    *,
    slug: str,
    name: str,
    jurisdictions: Iterable[str] = (),
    region: str = "EU",
    phone_region: str = "GB",
    require_totp: bool = False,
    retention_classes: dict[str, str] | None = None,
    privacy_contact: str = "",
    actor: Actor = OPERATOR,
) -> Tenant:
    if not SLUG.match(slug):
        raise InvalidInput(
            "a tenant slug is 2-40 lower-case letters, digits or hyphens, starting with a letter"
        )
    if not name.strip():
        raise InvalidInput("a tenant needs a name")
    try:
        codes = sorted({Jurisdiction(j.strip()).value for j in jurisdictions if j.strip()})
    except ValueError:
        known = ", ".join(j.value for j in Jurisdiction)
        raise InvalidInput(f"unknown jurisdiction (known: {known})") from None
    classes = retention_classes or {}
    for cls in classes:
        if not CLASS_NAME.match(cls):
            raise InvalidInput(f"retention class {cls[:40]!r}: lower-case letters, digits, _")
    # The region national numbers (no +code) are read in: one the phone library knows, or
    # every such number would later be refused as "not a phone number".
    if phone_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput("phone region is a two-letter country code such as GB or US")
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"tenant {slug!r} already exists")
    tenant = Tenant(
        id=new_id(),
        slug=slug,
        name=name.strip(),
        jurisdictions=codes,
        region=region,
        phone_region=phone_region.upper(),
        require_totp=require_totp,
        retention_classes={k: {"description": v} for k, v in classes.items()},
        privacy_contact=privacy_contact.strip()[:320],
        created_at=utcnow(),
    )
    keystore.create_tenant_key(tenant.id)
    session.add(tenant)
    session.flush()
    audit.init_chain(session, tenant.id)
    session.flush()
    ctx = TenantContext(session, keystore, tenant, actor)
    audit.record(
        ctx,
        AuditEvent.TENANT_CREATED,
        details={"slug": slug, "jurisdictions": codes, "retention_classes": sorted(classes)},
    )
    return tenant


def get_tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))
