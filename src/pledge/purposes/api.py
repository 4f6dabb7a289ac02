"""REST routes of purposes, collection points and topics (under /api/v1)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.core.errors import Conflict
from pledge.notices.models import Notice
from pledge.preferences import topics
from pledge.purposes import catalogue, service
from pledge.purposes.models import Purpose
from pledge.purposes.schemas import (
    CollectionPointFields,
    CollectionPointIn,
    CollectionPointOut,
    CollectsForOut,
    PurposeFields,
    PurposeIn,
    PurposeOut,
    TopicIn,
    TopicOut,
)
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1", tags=["purposes"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.PURPOSES_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.PURPOSES_WRITE))]
Language = Annotated[
    str, Query(max_length=16, description="Language of the consent wordings shown")
]


def purpose_out(
    purpose: Purpose, notices: dict[uuid.UUID, Notice], points: dict[uuid.UUID, list[str]]
) -> PurposeOut:
    notice = notices.get(purpose.consent_notice_id) if purpose.consent_notice_id else None
    return PurposeOut(
        id=str(purpose.id),
        slug=purpose.slug,
        name=purpose.name,
        description=purpose.description,
        lawful_basis=purpose.lawful_basis,
        dpv_purpose=purpose.dpv_purpose,
        data_categories=list(purpose.data_categories),
        sensitive=service.uses_sensitive_data(purpose),
        channels=list(purpose.channels),
        is_marketing=purpose.is_marketing,
        is_sale_or_sharing=purpose.is_sale_or_sharing,
        legitimate_interest_note=purpose.legitimate_interest_note,
        consent_notice=notice.slug if notice else None,
        collection_points=points.get(purpose.id, []),
        created_at=purpose.created_at,
        updated_at=purpose.updated_at,
        archived_at=purpose.archived_at,
    )


def _one(ctx: TenantContext, purpose: Purpose) -> PurposeOut:
    return purpose_out(purpose, catalogue.notices_by_id(ctx), catalogue.points_by_purpose(ctx))


def _purpose_input(slug: str, body: PurposeFields) -> PurposeInput:
    return PurposeInput(
        slug=slug,
        name=body.name,
        lawful_basis=body.lawful_basis.value,
        description=body.description,
        data_categories=body.data_categories,
        channels=[c.value for c in body.channels],
        is_marketing=body.is_marketing,
        is_sale_or_sharing=body.is_sale_or_sharing,
        legitimate_interest_note=body.legitimate_interest_note,
        dpv_purpose=body.dpv_purpose,
        consent_notice=body.consent_notice,
    )


@router.get("/purposes", response_model=list[PurposeOut])
def list_purposes(ctx: Read, include_archived: bool = False) -> list[PurposeOut]:
    """Every purpose with its lawful basis and the collection points that collect for it."""
    notices, points = catalogue.notices_by_id(ctx), catalogue.points_by_purpose(ctx)
    return [
        purpose_out(p, notices, points)
        for p in service.list_purposes(ctx, include_archived=include_archived)
    ]


@router.post("/purposes", status_code=status.HTTP_201_CREATED, response_model=PurposeOut)
def create_purpose(body: PurposeIn, ctx: Write) -> PurposeOut:
    return _one(ctx, service.create_purpose(ctx, _purpose_input(body.slug, body)))


@router.get("/purposes/{slug}", response_model=PurposeOut)
def get_purpose(slug: str, ctx: Read) -> PurposeOut:
    return _one(ctx, service.get_purpose(ctx, slug))


@router.put("/purposes/{slug}", response_model=PurposeOut)
def update_purpose(slug: str, body: PurposeFields, ctx: Write) -> PurposeOut:
    """Replace a purpose's definition (its slug stays). A change of basis is audited with the
    basis it replaces."""
    return _one(ctx, service.update_purpose(ctx, slug, _purpose_input(slug, body)))


@router.post("/purposes/{slug}/archive", response_model=PurposeOut)
def archive_purpose(slug: str, ctx: Write) -> PurposeOut:
    """Stop using a purpose: the gate denies it from now on; its history stays."""
    return _one(ctx, service.archive_purpose(ctx, slug))


# ---------------------------------------------------------------------------------------------
# Collection points


def point_out(view: catalogue.PointView) -> CollectionPointOut:
    p = view.point
    return CollectionPointOut(
        id=str(p.id),
        slug=p.slug,
        name=p.name,
        kind=p.kind,
        description=p.description,
        privacy_notice=view.privacy_notice.slug if view.privacy_notice else None,
        created_at=p.created_at,
        purposes=[
            CollectsForOut(
                purpose=item.purpose.slug,
                name=item.purpose.name,
                lawful_basis=item.purpose.lawful_basis,
                is_marketing=item.purpose.is_marketing,
                legitimate_interest_note=item.purpose.legitimate_interest_note,
                consent_notice=item.consent_notice.slug if item.consent_notice else None,
                wording_version_id=str(item.current_wording.id) if item.current_wording else None,
                wording_sha256=item.current_wording.sha256 if item.current_wording else None,
                wording_text=item.current_wording.text if item.current_wording else None,
            )
            for item in view.purposes
        ],
    )


def _point_input(slug: str, body: CollectionPointFields) -> CollectionPointInput:
    return CollectionPointInput(
        slug=slug,
        name=body.name,
        kind=body.kind.value,
        description=body.description,
        privacy_notice=body.privacy_notice,
        purposes=[CollectsFor(p.purpose, p.consent_notice) for p in body.purposes],
    )


@router.get("/collection-points", response_model=list[CollectionPointOut])
def list_collection_points(ctx: Read, language: Language = "en") -> list[CollectionPointOut]:
    """Where data is collected, for which purposes, on which basis, with which wording."""
    return [point_out(v) for v in catalogue.point_views(ctx, language=language)]


@router.post(
    "/collection-points", status_code=status.HTTP_201_CREATED, response_model=CollectionPointOut
)
def create_collection_point(body: CollectionPointIn, ctx: Write) -> CollectionPointOut:
    if service.find_collection_point(ctx, body.slug) is not None:
        raise Conflict(f"collection point {body.slug!r} already exists")
    point = service.save_collection_point(ctx, _point_input(body.slug, body))
    return point_out(catalogue.point_view(ctx, point))


@router.get("/collection-points/{slug}", response_model=CollectionPointOut)
def get_collection_point(slug: str, ctx: Read, language: Language = "en") -> CollectionPointOut:
    point = service.get_collection_point(ctx, slug)
    return point_out(catalogue.point_view(ctx, point, language=language))


@router.put(
    "/collection-points/{slug}",
    response_model=CollectionPointOut,
    responses={201: {"model": CollectionPointOut, "description": "Created"}},
)
def save_collection_point(
    slug: str, body: CollectionPointFields, ctx: Write, response: Response
) -> CollectionPointOut:
    """Create or replace a collection point and the purposes it collects for."""
    created = service.find_collection_point(ctx, slug) is None
    point = service.save_collection_point(ctx, _point_input(slug, body))
    if created:
        response.status_code = status.HTTP_201_CREATED
    return point_out(catalogue.point_view(ctx, point))


# ---------------------------------------------------------------------------------------------
# Topics


@router.get("/topics", response_model=list[TopicOut])
def list_topics(ctx: Read) -> list[TopicOut]:
    """What messages are about; each topic serves a purpose (marketing or service)."""
    return [
        TopicOut(
            id=str(t.id),
            slug=t.slug,
            name=t.name,
            description=t.description,
            purpose=p.slug,
            is_marketing=p.is_marketing,
            created_at=t.created_at,
        )
        for t, p in topics.list_topics(ctx)
    ]


@router.post("/topics", status_code=status.HTTP_201_CREATED, response_model=TopicOut)
def create_topic(body: TopicIn, ctx: Write) -> TopicOut:
    topic = topics.create_topic(
        ctx, slug=body.slug, name=body.name, purpose=body.purpose, description=body.description
    )
    purpose = service.get_purpose_by_id(ctx, topic.purpose_id)
    return TopicOut(
        id=str(topic.id),
        slug=topic.slug,
        name=topic.name,
        description=topic.description,
        purpose=purpose.slug,
        is_marketing=purpose.is_marketing,
        created_at=topic.created_at,
    )
