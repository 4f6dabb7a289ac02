"""Creating and finding tenants. Only the operator (CLI) creates tenants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from typing import Any, Final, Literal

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
from pledge.subjects.models import STANDARD_CLASS
from pledge.tenants.jurisdictions import Jurisdiction
from pledge.tenants.models import Tenant

SLUG = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MIN_REASON = 10  # as a staff hold's reason (`rights.fulfilment.erasure_holds`)
MAX_REASON = 300
MAX_DESCRIPTION = 200


class Unchanged(Enum):
    """`set_retention_class`'s "leave the exemption as it is"."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED


def _class_name(name: str) -> str:
    if not CLASS_NAME.match(name):
        raise InvalidInput(f"retention class {name[:40]!r}: lower-case letters, digits, _")
    return name


def _exempt_reason(name: str, reason: str) -> str:
    """The legal duty that keeps class `name` on erasure: told to the requester in the letter,
    so a sentence, not a word."""
    if name == STANDARD_CLASS:
        # Kept on every erasure, nothing would ever be erased: a duty covers some records,
        # which go in a class of their own.
        raise InvalidInput(
            "the standard class cannot be exempt from erasure: keep the records a law "
            "requires in a class of their own"
        )
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput(f"say why the {name} data is kept (it is told to the requester)")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason the {name} data is kept: at most {MAX_REASON} characters")
    return reason


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
    exempt_on_erasure: dict[str, str] | None = None,
    privacy_contact: str = "",
    actor: Actor = OPERATOR,
) -> Tenant:
    """A tenant with its key and audit chain. `retention_classes`: extra classes (name →
    description); `exempt_on_erasure`: those of them an erasure keeps (name → the legal
    duty, told to the requester)."""
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
        _class_name(cls)
    records: dict[str, dict[str, Any]] = {k: {"description": v} for k, v in classes.items()}
    for cls, reason in (exempt_on_erasure or {}).items():
        if cls not in records and cls != STANDARD_CLASS:
            raise InvalidInput(
                f"no retention class {cls[:40]!r} to exempt from erasure: declare it first"
            )
        kept = _exempt_reason(cls, reason)  # refuses the standard class
        records[cls]["exempt_on_erasure"] = kept
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
        retention_classes=records,
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
        details={
            "slug": slug,
            "jurisdictions": codes,
            "retention_classes": sorted(classes),
            "exempt_on_erasure": sorted(c for c, r in records.items() if "exempt_on_erasure" in r),
        },
    )
    return tenant


def set_retention_class(
    ctx: TenantContext,
    name: str,
    description: str | None = None,
    exempt_reason: str | Unchanged | None = UNCHANGED,
) -> Literal["added", "changed"]:
    """Add retention class `name` to the tenant or change it, audited. `description`: None
    keeps it (a new class is described by its name); `exempt_reason`: the legal duty for
    which an erasure keeps the class (told to the requester), None for none, UNCHANGED to
    leave it as it is."""
    _class_name(name)
    if description is not None:
        description = description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"a retention class's description: at most {MAX_DESCRIPTION} characters"
            )
    reason = exempt_reason
    if isinstance(reason, str):
        reason = _exempt_reason(name, reason)
    tenant = ctx.tenant
    # Read again under a lock (PostgreSQL; SQLite's writers take turns): two operators
    # changing two classes at once must not write back each other's stale copy.
    ctx.session.flush()
    ctx.session.refresh(tenant, with_for_update=True)
    current = dict(tenant.retention_classes or {})
    added = name not in current
    record: dict[str, Any] = dict(current.get(name) or {"description": name})
    if description:
        record["description"] = description
    if reason is None:
        record.pop("exempt_on_erasure", None)
    elif isinstance(reason, str):
        record["exempt_on_erasure"] = reason
    current[name] = record
    # A new dict: the JSON column sees a change only when it is assigned.
    tenant.retention_classes = current
    audit.record(
        ctx,
        AuditEvent.TENANT_RETENTION_CLASS_SET,
        details={
            "class": name,
            "added": added,
            "exempt_on_erasure": "exempt_on_erasure" in record,
        },
    )
    return "added" if added else "changed"


def get_tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))
