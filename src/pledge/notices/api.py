"""REST routes of notices and their versions (under /api/v1)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.notices import service
from pledge.notices.models import Notice, NoticeVersion
from pledge.notices.schemas import (
    DIFF_OPS,
    DiffLine,
    DiffOut,
    NoticeIn,
    NoticeOut,
    VersionIn,
    VersionOut,
    VersionSummary,
)
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1", tags=["notices"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.NOTICES_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.NOTICES_WRITE))]


def version_summary(v: NoticeVersion, current: set[uuid.UUID]) -> VersionSummary:
    return VersionSummary(
        id=str(v.id),
        version=v.version,
        language=v.language,
        sha256=v.sha256,
        effective_at=v.effective_at,
        summary=v.summary,
        material=v.material,
        created_at=v.created_at,
        in_force=v.id in current,
    )


def version_out(ctx: TenantContext, v: NoticeVersion) -> VersionOut:
    notice = service.get_notice(ctx, v.notice_id)
    current = service.in_force(service.versions(ctx, notice, v.language))
    return VersionOut(
        **version_summary(v, current).model_dump(),
        notice=notice.slug,
        kind=notice.kind,
        text=v.text,
    )


def notice_out(ctx: TenantContext, notice: Notice) -> NoticeOut:
    versions = service.versions(ctx, notice)
    current = service.in_force(versions)
    return NoticeOut(
        id=str(notice.id),
        slug=notice.slug,
        kind=notice.kind,
        title=notice.title,
        created_at=notice.created_at,
        languages=sorted({v.language for v in versions}),
        versions=[version_summary(v, current) for v in versions],
    )


@router.get("/notices", response_model=list[NoticeOut])
def list_notices(ctx: Read) -> list[NoticeOut]:
    """Privacy notices and consent wordings, each with its versions (texts by version id)."""
    return [notice_out(ctx, n) for n in service.list_notices(ctx)]


@router.post("/notices", status_code=status.HTTP_201_CREATED, response_model=NoticeOut)
def create_notice(body: NoticeIn, ctx: Write) -> NoticeOut:
    notice = service.create_notice(ctx, slug=body.slug, kind=body.kind.value, title=body.title)
    return notice_out(ctx, notice)


@router.get("/notices/{slug}", response_model=NoticeOut)
def get_notice(slug: str, ctx: Read) -> NoticeOut:
    return notice_out(ctx, service.get_notice(ctx, slug))


@router.post(
    "/notices/{slug}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionOut
)
def publish_version(slug: str, body: VersionIn, ctx: Write) -> VersionOut:
    """Publish the next version in a language. Earlier versions are never edited: consents
    given under them keep pointing at the exact words shown."""
    version = service.publish_version(
        ctx,
        slug,
        text=body.text,
        language=body.language,
        effective_at=body.effective_at,
        summary=body.summary,
        material=body.material,
    )
    return version_out(ctx, version)


@router.get("/notice-versions/{version_id}", response_model=VersionOut)
def get_version(version_id: str, ctx: Read) -> VersionOut:
    """One version with its exact text and hash."""
    return version_out(ctx, service.get_version(ctx, version_id))


@router.get("/notices/{slug}/diff", response_model=DiffOut)
def diff_versions(
    slug: str,
    ctx: Read,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="Version number or id (default: the one before `to`)",
        ),
    ] = None,
    to: Annotated[
        str | None, Query(max_length=40, description="Version number or id (default: the latest)")
    ] = None,
    language: Annotated[str, Query(max_length=16)] = "en",
) -> DiffOut:
    """Line-by-line changes from one version to another; by default, what changed last."""
    notice = service.get_notice(ctx, slug)
    old, new = service.diff_pair(ctx, notice, from_, to, language)
    current = service.in_force(service.versions(ctx, notice))
    lines = [DiffLine(op=DIFF_OPS[op], text=text) for op, text in service.diff(old, new)]
    return DiffOut(
        notice=notice.slug,
        from_version=version_summary(old, current),
        to_version=version_summary(new, current),
        added=sum(1 for line in lines if line.op == "added"),
        removed=sum(1 for line in lines if line.op == "removed"),
        lines=lines,
    )
