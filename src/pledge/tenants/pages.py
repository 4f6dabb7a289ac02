"""The tenant's dashboard: what the vault holds and what happened lately."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from pledge.access.permissions import Scope
from pledge.audit import service as audit
from pledge.subjects import reading
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

SignedIn = Annotated[PageContext, Depends(page_context())]


@router.get("/")
def dashboard(request: Request, page: SignedIn) -> Response:
    counts = reading.count_subjects(page.ctx)
    recent = (
        audit.list_entries(page.ctx, limit=10, newest_first=True)
        if page.can(Scope.AUDIT_READ)
        else []
    )
    return render(
        request,
        "dashboard.html",
        {
            "counts": counts,
            "total": sum(counts.values()),
            "recent": recent,
            "interactions": reading.count_interactions(page.ctx),
        },
    )
