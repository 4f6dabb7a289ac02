"""Admin pages of the subject vault: list and search, detail, erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access.permissions import Scope
from pledge.audit import service as audit
from pledge.consent import service as consent
from pledge.core.errors import InvalidInput
from pledge.subjects import erasure, reading, service
from pledge.subjects.api import decode_cursor, encode_cursor
from pledge.subjects.categories import describe
from pledge.subjects.identity import IdentityKind
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[PageContext, Depends(page_context(Scope.SUBJECTS_READ))]
Eraser = Annotated[PageContext, Depends(page_context(Scope.SUBJECTS_ERASE))]
PAGE_SIZE = 50


@router.get("/subjects")
def subjects_list(request: Request, page: Reader, cursor: str | None = None) -> Response:
    after = decode_cursor(cursor) if cursor else None
    rows = reading.list_subjects(page.ctx, after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    views = reading.summarise_subjects(page.ctx, rows, via="page_list")
    return render(
        request,
        "subjects/list.html",
        {
            "subjects": views,
            "next_cursor": encode_cursor(rows[-1].id) if more else None,
            "query": "",
        },
    )


@router.post("/subjects/search")
def subjects_search(
    request: Request, page: Reader, email: Annotated[str, Form(max_length=320)]
) -> Response:
    """Search by e-mail (exact, through the blind index). A POST keeps it out of URLs and logs."""
    kind = IdentityKind.PHONE if email.strip().startswith("+") else IdentityKind.EMAIL
    views = reading.search_subjects(page.ctx, kind, email, via="page_search")
    template = "subjects/_rows.html" if request.headers.get("HX-Request") else "subjects/list.html"
    return render(
        request,
        template,
        {"subjects": views, "next_cursor": None, "query": email, "searched": True},
    )


@router.get("/subjects/{subject_id}")
def subject_detail(
    request: Request, subject_id: str, page: Reader, notice: str | None = None
) -> Response:
    view = reading.read_subject(page.ctx, subject_id, interactions=50)
    # The log needs its own scope (the /audit page, the API): the subject's entries tell who
    # on the staff read the person's data, and when.
    trail = (
        audit.list_entries(page.ctx, subject_id=view.id, limit=100, newest_first=True)
        if page.can(Scope.AUDIT_READ)
        else None
    )
    notices = {
        "erased": "The subject was erased. Its keys are destroyed; "
        "what is listed below is all that remains."
    }
    return render(
        request,
        "subjects/detail.html",
        {
            "subject": view,
            "trail": trail,
            "describe": describe,
            "notice": notices.get(notice or ""),
            "consent": consent.timeline_view(page.ctx, view.id)
            if page.can(Scope.CONSENT_READ)
            else None,
        },
    )


@router.get("/subjects/{subject_id}/erase")
def erase_confirm(request: Request, subject_id: str, page: Eraser) -> Response:
    subject = service.get_subject_row(page.ctx, subject_id)
    exempt = erasure.exempt_classes(page.ctx)
    # The exempt classes are kept by law with no one ticking them: listed, not offered.
    classes = sorted(service.retention_classes(page.ctx) - {"standard", *exempt})
    return render(
        request,
        "subjects/erase.html",
        {"subject": subject, "classes": classes, "exempt": sorted(exempt.items())},
    )


@router.post("/subjects/{subject_id}/erase")
async def erase(request: Request, subject_id: str, page: Eraser) -> Response:
    form = await request.form()
    if form.get("confirm") != "erase":
        raise InvalidInput("tick the confirmation box to erase this subject")
    keep = [str(v) for v in form.getlist("keep")]
    result = erasure.erase_subject(
        page.ctx, subject_id, keep_classes=keep, erase_exempt=form.get("erase_exempt") == "yes"
    )
    return RedirectResponse(f"/subjects/{result.subject_id}?notice=erased", status_code=303)
