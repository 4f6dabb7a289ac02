"""The audit log page, with a verify button."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from pledge.access.permissions import Scope
from pledge.audit import service
from pledge.audit.api import MAX_SEQ
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageContext, Depends(page_context(Scope.AUDIT_READ))]
PAGE_SIZE = 100


@router.get("/audit")
def audit_log(
    request: Request,
    page: Reader,
    before: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> Response:
    entries = service.list_entries(
        page.ctx, before_seq=before, limit=PAGE_SIZE + 1, newest_first=True
    )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return render(
        request, "audit/list.html", {"entries": entries, "older": entries[-1].seq if more else None}
    )


@router.post("/audit/verify")
def audit_verify(request: Request, page: Reader) -> Response:
    verification = service.verify_and_record(page.ctx)
    partial = bool(request.headers.get("HX-Request"))
    return render(
        request,
        "audit/_verify.html" if partial else "audit/verified.html",
        {"result": verification.verified, "verification": verification},
    )
