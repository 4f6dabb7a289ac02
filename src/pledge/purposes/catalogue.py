"""The tenant's declared practice as people read it: each purpose with where it is collected,
each collection point with what it collects for, the basis of each, and the consent wording
shown there (its version in force, so an integrator can render it and cite it back)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.notices import service as notices
from pledge.notices.models import Notice, NoticeVersion
from pledge.purposes import service as purposes
from pledge.purposes.models import CollectionPoint, CollectionPointPurpose, Purpose


def notices_by_id(ctx: TenantContext) -> dict[uuid.UUID, Notice]:
    return {n.id: n for n in notices.list_notices(ctx)}


def points_by_purpose(ctx: TenantContext) -> dict[uuid.UUID, list[str]]:
    """Purpose id → slugs of the (live) collection points that collect for it."""
    rows = ctx.session.execute(
        for_tenant(
            select(CollectionPointPurpose.purpose_id, CollectionPoint.slug),
            CollectionPointPurpose,
            ctx.tenant_id,
        )
        .join(
            CollectionPoint,
            (CollectionPoint.tenant_id == CollectionPointPurpose.tenant_id)
            & (CollectionPoint.id == CollectionPointPurpose.collection_point_id),
        )
        .where(CollectionPoint.archived_at.is_(None))
        .order_by(CollectionPoint.slug)
    ).all()
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    for purpose_id, slug in rows:
        out[purpose_id].append(slug)
    return out


@dataclass(frozen=True)
class PointPurpose:
    purpose: Purpose
    consent_notice: Notice | None
    current_wording: NoticeVersion | None  # in force now, in the language asked for


@dataclass(frozen=True)
class PointView:
    point: CollectionPoint
    privacy_notice: Notice | None
    purposes: list[PointPurpose]


def point_view(
    ctx: TenantContext,
    point: CollectionPoint,
    *,
    language: str = "en",
    by_id: dict[uuid.UUID, Notice] | None = None,
) -> PointView:
    known = by_id if by_id is not None else notices_by_id(ctx)
    items = []
    for purpose, wording_id in purposes.collection_point_purposes(ctx, point):
        notice = known.get(wording_id) if wording_id else None
        current = notices.current_version(ctx, notice.id, language) if notice else None
        items.append(PointPurpose(purpose, notice, current))
    privacy = known.get(point.privacy_notice_id) if point.privacy_notice_id else None
    return PointView(point, privacy, items)


def point_views(ctx: TenantContext, *, language: str = "en") -> list[PointView]:
    known = notices_by_id(ctx)
    return [
        point_view(ctx, p, language=language, by_id=known)
        for p in purposes.list_collection_points(ctx)
    ]
