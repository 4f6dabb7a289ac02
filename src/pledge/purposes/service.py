"""Purposes and collection points: the tenant's declared reasons for using data, each with
its lawful basis, and the places data is collected for them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, exists, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import ConsentRecord, ConsentState, Objection, SubjectPurpose
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput, NotFound
from pledge.core.ids import new_id, parse_id
from pledge.notices.models import Notice, NoticeKind
from pledge.purposes.models import (
    Channel,
    CollectionPoint,
    CollectionPointKind,
    CollectionPointPurpose,
    LawfulBasis,
    Purpose,
)
from pledge.subjects.categories import check_category, describe


@dataclass(frozen=True)
class PurposeInput:
    slug: str
    name: str
    lawful_basis: str
    description: str = ""
    data_categories: Sequence[str] = ()
    channels: Sequence[str] = ()
    is_marketing: bool = False
    is_sale_or_sharing: bool = False
    legitimate_interest_note: str | None = None
    dpv_purpose: str | None = None
    consent_notice: str | None = None  # slug of a consent-wording notice


def _basis(value: str) -> LawfulBasis:
    try:
        return LawfulBasis(value)
    except ValueError:
        known = ", ".join(b.value for b in LawfulBasis)
        raise InvalidInput(f"lawful_basis must be one of: {known}") from None


def _channels(values: Sequence[str]) -> list[str]:
    known = {c.value for c in Channel}
    bad = [v for v in values if v not in known]
    if bad:
        raise InvalidInput(f"unknown channel {bad[0][:20]!r} (known: {', '.join(sorted(known))})")
    return sorted(set(values))


def _categories(values: Sequence[str]) -> list[str]:
    for value in values:
        problem = check_category(value)
        if problem:
            raise InvalidInput(f"category {value[:120]!r} {problem}")
    return sorted(set(values))


def _notice_id(ctx: TenantContext, slug: str | None, kind: NoticeKind) -> uuid.UUID | None:
    if slug is None:
        return None
    notice = ctx.session.scalar(
        for_tenant(select(Notice), Notice, ctx.tenant_id).where(Notice.slug == slug)
    )
    if notice is None or notice.kind != kind.value:
        raise InvalidInput(f"no {kind.value.replace('_', ' ')} notice {slug[:60]!r}")
    return notice.id


# Bases no direct marketing can rest on: marketing is never required by law, to save a life or
# for a public task; it needs consent, a contract or a legitimate interest (GDPR recital 47).
_NOT_FOR_MARKETING = frozenset(
    {
        LawfulBasis.LEGAL_OBLIGATION,
        LawfulBasis.VITAL_INTEREST,
        LawfulBasis.PUBLIC_INTEREST,
        LawfulBasis.OFFICIAL_AUTHORITY,
    }
)


def _validated(ctx: TenantContext, data: PurposeInput) -> dict[str, object]:
    basis = _basis(data.lawful_basis)
    note = (data.legitimate_interest_note or "").strip() or None
    if basis is LawfulBasis.LEGITIMATE_INTEREST and not note:
        # GDPR Art. 13(1)(d): the legitimate interests pursued must be stated.
        raise InvalidInput("a legitimate-interest purpose needs a legitimate_interest_note")
    if data.is_marketing and basis in _NOT_FOR_MARKETING:
        raise InvalidInput(f"a marketing purpose cannot rest on {basis.value}")
    return {
        "name": validation.text(data.name, "name", max_chars=200),
        "description": validation.text(
            data.description, "description", max_chars=5000, required=False
        ),
        "lawful_basis": basis.value,
        "data_categories": _categories(data.data_categories),
        "channels": _channels(data.channels),
        "is_marketing": bool(data.is_marketing),
        "is_sale_or_sharing": bool(data.is_sale_or_sharing),
        "legitimate_interest_note": note,
        "dpv_purpose": (data.dpv_purpose or "").strip() or None,
        "consent_notice_id": _notice_id(ctx, data.consent_notice, NoticeKind.CONSENT_WORDING),
    }


def create_purpose(ctx: TenantContext, data: PurposeInput) -> Purpose:
    validation.slug(data.slug, "slug")
    if find_purpose(ctx, data.slug) is not None:
        raise Conflict(f"purpose {data.slug!r} already exists")
    now = utcnow()
    purpose = Purpose(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        slug=data.slug,
        created_at=now,
        updated_at=now,
        **_validated(ctx, data),
    )
    ctx.session.add(purpose)
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.PURPOSE_CHANGED,
        details={
            "purpose": purpose.slug,
            "change": "created",
            "lawful_basis": purpose.lawful_basis,
        },
    )
    return purpose


def update_purpose(ctx: TenantContext, slug: str, data: PurposeInput) -> Purpose:
    """Change a purpose. The basis and the marketing and sale flags of a purpose are part of
    the promise made to people: once relied on, the basis is fixed and the flags may only
    tighten; the audit entry records the old and new values."""
    purpose = get_purpose(ctx, slug)
    before = purpose.lawful_basis
    was_marketing, was_sale = purpose.is_marketing, purpose.is_sale_or_sharing
    changes = _validated(ctx, data)
    loosened = [
        label
        for label, old, new in (
            ("marketing", was_marketing, changes["is_marketing"]),
            ("sale or sharing", was_sale, changes["is_sale_or_sharing"]),
        )
        if old and not new
    ]
    if (changes["lawful_basis"] != before or loosened) and _relied_on(ctx, purpose):
        if changes["lawful_basis"] != before:
            # GDPR Art. 7(3); EDPB 05/2020 §121-123: once people were asked or held under a
            # basis, swapping it would undo their withdrawals and objections behind their backs.
            raise Conflict(
                f"purpose {purpose.slug!r} has been relied on under {before}: its lawful basis "
                "cannot change; create a new purpose instead"
            )
        # The gate honours "no marketing" opt-outs (Art. 21(3)) and GPC or "do not sell"
        # (CCPA) only for purposes flagged so: unflagging would silently undo them.
        raise Conflict(
            f"purpose {purpose.slug!r} has been relied on as {' and '.join(loosened)}: it "
            "cannot stop being so, or the people who opted out would be reached again; "
            "create a new purpose instead"
        )
    for key, value in changes.items():
        setattr(purpose, key, value)
    purpose.updated_at = utcnow()
    audit.record(
        ctx,
        AuditEvent.PURPOSE_CHANGED,
        details={
            "purpose": purpose.slug,
            "change": "updated",
            "lawful_basis": purpose.lawful_basis,
            "previous_basis": before,
            "is_marketing": purpose.is_marketing,
            "previous_is_marketing": was_marketing,
            "is_sale_or_sharing": purpose.is_sale_or_sharing,
            "previous_is_sale_or_sharing": was_sale,
        },
    )
    return purpose


def _relied_on(ctx: TenantContext, purpose: Purpose) -> bool:
    """Anyone's consent record or state, relationship or objection names the purpose."""
    return any(
        ctx.session.scalar(
            select(exists().where(model.tenant_id == ctx.tenant_id, model.purpose_id == purpose.id))
        )
        for model in (ConsentRecord, ConsentState, SubjectPurpose, Objection)
    )


def archive_purpose(ctx: TenantContext, slug: str) -> Purpose:
    purpose = get_purpose(ctx, slug)
    if purpose.archived_at is None:
        purpose.archived_at = utcnow()
        audit.record(
            ctx, AuditEvent.PURPOSE_CHANGED, details={"purpose": slug, "change": "archived"}
        )
    return purpose


def find_purpose(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Purpose | None:
    stmt = for_tenant(select(Purpose), Purpose, ctx.tenant_id)
    as_id = slug_or_id if isinstance(slug_or_id, uuid.UUID) else parse_id(slug_or_id)
    stmt = stmt.where(Purpose.id == as_id) if as_id else stmt.where(Purpose.slug == slug_or_id)
    return ctx.session.scalar(stmt)


def get_purpose(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Purpose:
    purpose = find_purpose(ctx, slug_or_id)
    if purpose is None:
        raise NotFound("no such purpose")
    return purpose


def list_purposes(ctx: TenantContext, *, include_archived: bool = False) -> list[Purpose]:
    stmt = for_tenant(select(Purpose), Purpose, ctx.tenant_id)
    if not include_archived:
        stmt = stmt.where(Purpose.archived_at.is_(None))
    return list(ctx.session.scalars(stmt.order_by(Purpose.slug)))


def uses_sensitive_data(purpose: Purpose) -> bool:
    return any(describe(c).sensitive for c in purpose.data_categories)


# ---------------------------------------------------------------------------------------------
# Collection points


@dataclass(frozen=True)
class CollectsFor:
    purpose: str  # slug
    consent_notice: str | None = None  # consent wording shown here, for consent purposes


@dataclass(frozen=True)
class CollectionPointInput:
    slug: str
    name: str
    kind: str
    purposes: Sequence[CollectsFor]
    description: str = ""
    privacy_notice: str | None = None


def _kind(value: str) -> str:
    try:
        return CollectionPointKind(value).value
    except ValueError:
        known = ", ".join(k.value for k in CollectionPointKind)
        raise InvalidInput(f"kind must be one of: {known}") from None


def save_collection_point(ctx: TenantContext, data: CollectionPointInput) -> CollectionPoint:
    """Create or replace a collection point and the purposes it collects for."""
    validation.slug(data.slug, "slug")
    if not data.purposes:
        raise InvalidInput("a collection point collects for at least one purpose")
    links: list[tuple[Purpose, uuid.UUID | None]] = []
    for item in data.purposes:
        purpose = get_purpose(ctx, item.purpose)
        wording = _notice_id(ctx, item.consent_notice, NoticeKind.CONSENT_WORDING)
        if (
            purpose.lawful_basis == LawfulBasis.CONSENT.value
            and (wording or purpose.consent_notice_id) is None
        ):
            # Seed 000: be clear what consent is asked for — the exact words must exist.
            raise InvalidInput(
                f"purpose {purpose.slug!r} is consent-based: give the consent wording shown"
            )
        links.append((purpose, wording))
    point = find_collection_point(ctx, data.slug)
    created = point is None
    if point is None:
        point = CollectionPoint(
            tenant_id=ctx.tenant_id, id=new_id(), slug=data.slug, created_at=utcnow()
        )
        ctx.session.add(point)
    point.name = validation.text(data.name, "name", max_chars=200)
    point.kind = _kind(data.kind)
    point.description = validation.text(
        data.description, "description", max_chars=5000, required=False
    )
    point.privacy_notice_id = _notice_id(ctx, data.privacy_notice, NoticeKind.PRIVACY_NOTICE)
    ctx.session.flush()
    ctx.session.execute(
        delete(CollectionPointPurpose).where(
            CollectionPointPurpose.tenant_id == ctx.tenant_id,
            CollectionPointPurpose.collection_point_id == point.id,
        )
    )
    for purpose, wording in links:
        ctx.session.add(
            CollectionPointPurpose(
                tenant_id=ctx.tenant_id,
                collection_point_id=point.id,
                purpose_id=purpose.id,
                consent_notice_id=wording,
            )
        )
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.COLLECTION_POINT_CHANGED,
        details={
            "collection_point": point.slug,
            "change": "created" if created else "updated",
            "purposes": sorted(p.slug for p, _ in links),
        },
    )
    return point


def find_collection_point(
    ctx: TenantContext, slug_or_id: str | uuid.UUID
) -> CollectionPoint | None:
    stmt = for_tenant(select(CollectionPoint), CollectionPoint, ctx.tenant_id)
    as_id = slug_or_id if isinstance(slug_or_id, uuid.UUID) else parse_id(slug_or_id)
    stmt = (
        stmt.where(CollectionPoint.id == as_id)
        if as_id
        else stmt.where(CollectionPoint.slug == slug_or_id)
    )
    return ctx.session.scalar(stmt)


def get_collection_point(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> CollectionPoint:
    point = find_collection_point(ctx, slug_or_id)
    if point is None:
        raise NotFound("no such collection point")
    return point


def collection_point_purposes(
    ctx: TenantContext, point: CollectionPoint
) -> list[tuple[Purpose, uuid.UUID | None]]:
    """The purposes a point collects for, with the consent wording notice shown for each."""
    rows = ctx.session.execute(
        select(Purpose, CollectionPointPurpose.consent_notice_id)
        .join(
            CollectionPointPurpose,
            (CollectionPointPurpose.tenant_id == Purpose.tenant_id)
            & (CollectionPointPurpose.purpose_id == Purpose.id),
        )
        .where(
            CollectionPointPurpose.tenant_id == ctx.tenant_id,
            CollectionPointPurpose.collection_point_id == point.id,
        )
        .order_by(Purpose.slug)
    ).all()
    return [(p, wording or p.consent_notice_id) for p, wording in rows]


def list_collection_points(ctx: TenantContext) -> list[CollectionPoint]:
    return list(
        ctx.session.scalars(
            for_tenant(select(CollectionPoint), CollectionPoint, ctx.tenant_id)
            .where(CollectionPoint.archived_at.is_(None))
            .order_by(CollectionPoint.slug)
        )
    )


def get_purpose_by_id(ctx: TenantContext, purpose_id: uuid.UUID) -> Purpose:
    return get_in_tenant(ctx.session, Purpose, ctx.tenant_id, purpose_id, what="purpose")
