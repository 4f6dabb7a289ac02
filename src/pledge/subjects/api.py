"""REST routes of the subject vault: thin — parse, call one service function, shape."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.core.errors import InvalidInput
from pledge.subjects import erasure, reading, service
from pledge.subjects.identity import IdentityKind
from pledge.subjects.schemas import (
    ErasureIn,
    ErasureOut,
    FieldOut,
    FieldUpdate,
    InteractionIn,
    InteractionOut,
    SubjectCreated,
    SubjectExport,
    SubjectIn,
    SubjectOut,
    SubjectPage,
    SubjectSearch,
    SubjectSummary,
)
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_WRITE))]
Erase = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_ERASE))]
Export = Annotated[TenantContext, Depends(api_context(Scope.SUBJECTS_EXPORT))]

MAX_PAYLOAD_BYTES = 1_000_000


def encode_cursor(subject_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(subject_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise InvalidInput("cursor is not one this API returned") from None


def _subject_out(view: reading.SubjectView) -> SubjectOut:
    return SubjectOut(
        id=str(view.id),
        status=view.status,
        created_at=view.created_at,
        updated_at=view.updated_at,
        erased_at=view.erased_at,
        fields=[FieldOut(**vars(f)) for f in view.fields],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubjectCreated)
def create_subject(body: SubjectIn, ctx: Write) -> SubjectCreated:
    items = [
        service.FieldInput(f.name, f.value, f.category, f.source.value, f.retention_class)
        for f in body.fields
    ]
    return SubjectCreated(id=str(service.create_subject(ctx, items)))


@router.get("", response_model=SubjectPage)
def list_subjects(
    ctx: Read,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SubjectPage:
    """Subjects, oldest first, without personal values (fetch one to see its fields)."""
    after = decode_cursor(cursor) if cursor else None
    rows = reading.list_subjects(ctx, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return SubjectPage(
        items=[
            SubjectSummary(
                id=str(r.id), status=r.status, created_at=r.created_at, updated_at=r.updated_at
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
    )


@router.post("/search", response_model=SubjectPage)
def search_subjects(body: SubjectSearch, ctx: Read) -> SubjectPage:
    """Find a subject by an identity (exact match on its blind index). POST keeps the
    identity out of URLs and access logs."""
    given = [
        (k, v)
        for k, v in (
            (IdentityKind.EMAIL, body.email),
            (IdentityKind.PHONE, body.phone),
            (IdentityKind.EXTERNAL_ID, body.external_id),
        )
        if v
    ]
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone, external_id")
    views = reading.search_subjects(ctx, *given[0], via="api_search")
    return SubjectPage(
        items=[
            SubjectSummary(
                id=str(v.id), status=v.status, created_at=v.created_at, updated_at=v.updated_at
            )
            for v in views
        ],
        next_cursor=None,
    )


@router.get("/{subject_id}", response_model=SubjectOut)
def get_subject(subject_id: str, ctx: Read) -> SubjectOut:
    return _subject_out(reading.read_subject(ctx, subject_id))


@router.put("/{subject_id}/fields/{name}", response_model=FieldOut)
def rectify_field(subject_id: str, name: str, body: FieldUpdate, ctx: Write) -> FieldOut:
    stored = service.rectify_field(
        ctx,
        subject_id,
        service.FieldInput(
            name, body.value, body.category, body.source.value, body.retention_class
        ),
    )
    return FieldOut(**vars(stored))


@router.get("/{subject_id}/export", response_model=SubjectExport)
def export_subject(subject_id: str, ctx: Export) -> SubjectExport:
    """The subject's whole record, decrypted: fields and interactions (audited)."""
    return SubjectExport.model_validate(reading.export_subject(ctx, subject_id))


@router.delete("/{subject_id}", response_model=ErasureOut)
def erase_subject(subject_id: str, ctx: Erase) -> ErasureOut:
    """Crypto-erase everything of the subject but the retention classes the tenant keeps on
    erasure (exempt_on_erasure: a legal duty); `POST …/erase` with `erase_exempt` takes them."""
    return ErasureOut(**erasure.erase_subject(ctx, subject_id).as_dict())


@router.post("/{subject_id}/erase", response_model=ErasureOut)
def erase_subject_keeping(subject_id: str, body: ErasureIn, ctx: Erase) -> ErasureOut:
    """Crypto-erase the subject except the retention classes held under a legal duty: those
    named and those the tenant keeps on erasure (unless `erase_exempt`)."""
    result = erasure.erase_subject(
        ctx, subject_id, keep_classes=body.keep_classes, erase_exempt=body.erase_exempt
    )
    return ErasureOut(**result.as_dict())


@router.post(
    "/{subject_id}/interactions", status_code=status.HTTP_201_CREATED, response_model=SubjectCreated
)
def add_interaction(subject_id: str, body: InteractionIn, ctx: Write) -> SubjectCreated:
    if len(json.dumps(body.payload)) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    new_id = service.add_interaction(
        ctx,
        subject_id,
        kind=body.kind.value,
        occurred_at=body.occurred_at,
        category=body.category,
        payload=body.payload,
        source=body.source.value,
        retention_class=body.retention_class,
    )
    return SubjectCreated(id=str(new_id))


@router.get("/{subject_id}/interactions", response_model=list[InteractionOut])
def list_interactions(
    subject_id: str, ctx: Read, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[InteractionOut]:
    items = reading.read_interactions(ctx, subject_id, limit=limit)
    return [
        InteractionOut(
            id=str(i.id),
            kind=i.kind,
            occurred_at=i.occurred_at,
            category=i.category,
            source=i.source,
            retention_class=i.retention_class,
            payload=i.payload,
        )
        for i in items
    ]
