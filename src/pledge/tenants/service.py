"""Creating and finding tenants. Only the operator (CLI) creates tenants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any, Final, Literal

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from pledge.access.context import OPERATOR, Actor, TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.core.ids import new_id
from pledge.core.validation import UNCHANGED, Unchanged
from pledge.crypto.keystore import KeyStore
from pledge.rights import service as rights
from pledge.rights.clock import Duration
from pledge.rights.models import OPEN_STATES, RequestType, RightsRequest
from pledge.subjects.categories import check_category
from pledge.subjects.models import STANDARD_CLASS, InteractionKind
from pledge.subjects.retention import Period, interaction_rules
from pledge.tenants.jurisdictions import Jurisdiction
from pledge.tenants.models import MAX_CHILD_AGE, MIN_CHILD_AGE, ChildrenPolicy, Tenant

SLUG = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MIN_REASON = 10  # as a staff hold's reason (`rights.fulfilment.erasure_holds`)
MAX_REASON = 300
MAX_DESCRIPTION = 200
# A promise is faster than the law: a year at most in any unit.
PROMISE_LIMITS: Final = {"months": 12, "days": 366, "business days": 261}
MAX_CLOSING_DAYS = 400
MAX_CONTACT = 320  # the column's length
MIN_CLOSING_DAY, MAX_CLOSING_DAY = date(2000, 1, 1), date(2099, 12, 31)


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


def _keep_for(name: str, period: str) -> str:
    """How long an erasure keeps class `name` ("7 years"), as stored."""
    if name == STANDARD_CLASS:
        raise InvalidInput(
            "the standard class has no period: keep the records a law requires in a class "
            "of their own"
        )
    return str(Period.parse(period))


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
    keep_for: dict[str, str] | None = None,
    privacy_contact: str = "",
    actor: Actor = OPERATOR,
) -> Tenant:
    """A tenant with its key and audit chain. `retention_classes`: extra classes (name →
    description); `exempt_on_erasure`: those of them an erasure keeps (name → the legal
    duty, told to the requester); `keep_for`: how long it keeps them (name → "7 years")."""
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
    for cls, period in (keep_for or {}).items():
        if cls not in records and cls != STANDARD_CLASS:
            raise InvalidInput(
                f"no retention class {cls[:40]!r} to give a period: declare it first"
            )
        records[cls]["keep_for"] = _keep_for(cls, period)  # refuses the standard class
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
        privacy_contact=_contact(privacy_contact),
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
            "keep_for": {c: r["keep_for"] for c, r in sorted(records.items()) if "keep_for" in r},
        },
    )
    return tenant


def set_retention_class(
    ctx: TenantContext,
    name: str,
    description: str | None = None,
    exempt_reason: str | Unchanged | None = UNCHANGED,
    keep_for: str | Unchanged | None = UNCHANGED,
) -> Literal["added", "changed"]:
    """Add retention class `name` to the tenant or change it, audited. `description`: None
    keeps it (a new class is described by its name); `exempt_reason`: the legal duty for
    which an erasure keeps the class (told to the requester), None for none, UNCHANGED to
    leave it as it is; `keep_for`: how long ("7 years", "18 months", "90 days"), counted
    from the erasure that kept the class, after which the worker erases it (None: for ever,
    until an erasure of the exempt data; UNCHANGED as it is). A period set or shortened now
    applies to data kept before: what has been kept longer is erased at the next cycle."""
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
    period = _keep_for(name, keep_for) if isinstance(keep_for, str) else keep_for
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
    if period is None:
        record.pop("keep_for", None)
    elif isinstance(period, str):
        record["keep_for"] = period
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
        }
        # The period when there is one, or None when it was just removed.
        | ({"keep_for": record.get("keep_for")} if "keep_for" in record or period is None else {}),
    )
    return "added" if added else "changed"


def _refresh_open_due(ctx: TenantContext) -> int:
    """After a change to the tenant's clock settings: the cached due date of each open
    request follows it in this transaction, so the queue, the overdue list and the SLA report
    show the new dates at once. How many moved."""
    moved = 0
    open_requests = for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id).where(
        RightsRequest.state.in_([s.value for s in OPEN_STATES])
    )
    for request in ctx.session.scalars(open_requests):
        before = request.due_on
        rights.refresh_due(ctx, request)
        moved += request.due_on != before
    return moved


def _lock_tenant(ctx: TenantContext) -> Tenant:
    # Read again under a lock (PostgreSQL; SQLite's writers take turns): two operators
    # changing the setting at once must not write back each other's stale copy.
    ctx.session.flush()
    ctx.session.refresh(ctx.tenant, with_for_update=True)
    rights.hold_clock_settings_for_change(ctx)
    return ctx.tenant


def _promise_duration(text: str) -> str:
    """`text` as a promise's duration ("10 days", "1 months", "15 business days"), at most
    a year: a longer one is never the earlier date, and an absurd one breaks the clock."""
    try:
        duration = Duration.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if duration is None or duration.amount < 1:
        raise InvalidInput("a promise needs a duration such as '10 days' or '1 months'")
    if duration.amount > PROMISE_LIMITS[duration.unit]:
        raise InvalidInput(
            f"a promise of at most {PROMISE_LIMITS[duration.unit]} {duration.unit}: "
            "the law's deadline is shorter than that"
        )
    return str(duration)


def set_rights_promise(
    ctx: TenantContext,
    request_type: str,
    respond: str | None,
    restart_on_information: bool = False,
) -> int:
    """The tenant's own deadline for `request_type` ("*": every type without its own),
    faster than the law's: the earlier date wins until a lawful extension is notified.
    `respond` None removes it. `restart_on_information`: the time runs again in full from
    the requester's answer (seed 000: "… or of any further information we ask for,
    whichever is later"). Audited; the open requests' due dates follow. How many moved."""
    if request_type != "*" and request_type not in {t.value for t in RequestType}:
        known = ", ".join(t.value for t in RequestType)
        raise InvalidInput(f"unknown request type {request_type[:40]!r} (known: *, {known})")
    duration = _promise_duration(respond) if respond is not None else None
    tenant = _lock_tenant(ctx)
    promises = dict(tenant.rights_promises or {})
    if duration is None:
        if request_type not in promises:
            raise InvalidInput(f"no promise for {request_type!r} to remove")
        del promises[request_type]
    else:
        promises[request_type] = {
            "respond": duration,
            "restart_on_information": restart_on_information,
        }
    # A new dict: the JSON column sees a change only when it is assigned.
    tenant.rights_promises = promises
    moved = _refresh_open_due(ctx)
    audit.record(
        ctx,
        AuditEvent.TENANT_RIGHTS_PROMISE_SET,
        details={
            "type": request_type,
            "respond": duration,
            "restart_on_information": restart_on_information if duration else False,
            "due_dates_moved": moved,
        },
    )
    return moved


def set_closing_days(
    ctx: TenantContext, add: Iterable[date] = (), remove: Iterable[date] = ()
) -> tuple[list[date], int]:
    """Add and remove the tenant's closing days: holidays besides the jurisdiction's, which
    the clock leaves out wherever it counts business days (and the UK's weekend rule moves a
    due date off). Audited; the open requests' due dates follow. The days now, and how many
    due dates moved."""
    adding, removing = set(add), set(remove)
    if adding & removing:
        both = min(adding & removing).isoformat()
        raise InvalidInput(f"{both} is both added and removed")
    for day in adding:
        if not MIN_CLOSING_DAY <= day <= MAX_CLOSING_DAY:
            raise InvalidInput(f"a closing day between {MIN_CLOSING_DAY} and {MAX_CLOSING_DAY}")
    tenant = _lock_tenant(ctx)
    current = {date.fromisoformat(d) for d in tenant.closing_days or ()}
    missing = sorted(removing - current)
    if missing:
        raise InvalidInput(f"{missing[0].isoformat()} is not a closing day")
    days = sorted((current | adding) - removing)
    if len(days) > MAX_CLOSING_DAYS:
        raise InvalidInput(f"at most {MAX_CLOSING_DAYS} closing days: remove past ones first")
    added, removed = sorted(adding - current), sorted(removing)
    tenant.closing_days = [d.isoformat() for d in days]
    moved = _refresh_open_due(ctx) if added or removed else 0
    audit.record(
        ctx,
        AuditEvent.TENANT_CLOSING_DAYS_SET,
        details={
            "added": [d.isoformat() for d in added],
            "removed": [d.isoformat() for d in removed],
            "due_dates_moved": moved,
        },
    )
    return days, moved


def set_children_rules(
    ctx: TenantContext, child_age: int | None = None, policy: str | None = None
) -> list[str]:
    """The tenant's children's rules: under `child_age` (13-18) a person is a child;
    `policy` (a `ChildrenPolicy`) says what the gate refuses a child without a parent's
    consent. None leaves a setting as it is. Audited; which settings changed.

    Nobody is erased by the change itself: `erase_on_discovery` applies to a subject marked a
    child from then on (a child marked before is refused every use, and the hygiene report
    lists them once no basis is left)."""
    if child_age is not None and not MIN_CHILD_AGE <= child_age <= MAX_CHILD_AGE:
        raise InvalidInput(
            f"a child's age is between {MIN_CHILD_AGE} and {MAX_CHILD_AGE} "
            "(GDPR Art. 8: 16, or as low as 13 where a member state says so)"
        )
    if policy is not None and policy not in {p.value for p in ChildrenPolicy}:
        known = ", ".join(p.value for p in ChildrenPolicy)
        raise InvalidInput(f"unknown children's policy {policy[:40]!r} (known: {known})")
    tenant = ctx.tenant
    # Read again under a lock (PostgreSQL; SQLite's writers take turns): two operators
    # changing the rules at once must not write back each other's stale copy.
    ctx.session.flush()
    ctx.session.refresh(tenant, with_for_update=True)
    changed: list[str] = []
    if child_age is not None and child_age != tenant.child_age:
        tenant.child_age = child_age
        changed.append("child_age")
    if policy is not None and policy != tenant.children_policy:
        tenant.children_policy = policy
        changed.append("children_policy")
    if changed:
        ctx.session.flush()  # the gate's SQL reads the policy from the row
        audit.record(
            ctx,
            AuditEvent.TENANT_CHILDREN_RULES_SET,
            details={
                "changed": changed,
                "child_age": tenant.child_age,
                "children_policy": tenant.children_policy,
            },
        )
    return changed


def set_interaction_retention(
    ctx: TenantContext, category: str, kind: str | None, keep: str | None
) -> Literal["added", "changed", "removed"]:
    """The tenant's rule: interactions of `category` (of `kind` only, if given) are deleted
    `keep` ("12 months") after they occurred, by the worker; None removes the rule. A rule
    for a kind wins over its category's rule. Audited."""
    problem = check_category(category)
    if problem:
        raise InvalidInput(f"category {category[:120]!r} {problem}")
    if kind is not None and kind not in InteractionKind._value2member_map_:
        raise InvalidInput(f"kind must be one of: {', '.join(k.value for k in InteractionKind)}")
    period = str(Period.parse(keep)) if keep is not None else None
    tenant = ctx.tenant
    # Read again under a lock (PostgreSQL; SQLite's writers take turns): two operators
    # changing two rules at once must not write back each other's stale copy.
    ctx.session.flush()
    ctx.session.refresh(tenant, with_for_update=True)
    rules = [r.as_json() for r in interaction_rules(tenant.interaction_retention)]
    others = [r for r in rules if (r["category"], r["kind"]) != (category, kind)]
    if period is None:
        if len(others) == len(rules):
            what = f"{category} ({kind})" if kind else category
            raise InvalidInput(f"no interaction rule for {what} to remove")
        outcome: Literal["added", "changed", "removed"] = "removed"
    else:
        outcome = "added" if len(others) == len(rules) else "changed"
        others.append({"category": category, "kind": kind, "keep": period})
    # A new list: the JSON column sees a change only when it is assigned.
    tenant.interaction_retention = sorted(others, key=lambda r: (r["category"], r["kind"] or ""))
    audit.record(
        ctx,
        AuditEvent.TENANT_INTERACTION_RETENTION_SET,
        details={"category": category, "kind": kind, "keep": period, "outcome": outcome},
    )
    return outcome


def _contact(contact: str) -> str:
    """A privacy contact as stored: trimmed; a longer one than the column is refused (cut
    short, it would be a wrong address told to every requester)."""
    contact = contact.strip()
    if len(contact) > MAX_CONTACT:
        raise InvalidInput(f"a privacy contact is longer than {MAX_CONTACT} characters")
    return contact


def set_privacy_contact(ctx: TenantContext, contact: str) -> bool:
    """The tenant's privacy contact, told to requesters as the controller's (in receipts,
    letters, the access answer), checked as `create_tenant` checks it; "" removes it.
    Audited with the old and new values; whether it changed."""
    contact = _contact(contact)
    tenant = ctx.tenant
    # Read again under a lock (PostgreSQL; SQLite's writers take turns), as the other settings.
    ctx.session.flush()
    ctx.session.refresh(tenant, with_for_update=True)
    old = tenant.privacy_contact
    if contact == old:
        return False
    tenant.privacy_contact = contact
    audit.record(ctx, AuditEvent.TENANT_CONTACT_SET, details={"old": old, "new": contact})
    return True


def get_tenant_by_slug(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))
