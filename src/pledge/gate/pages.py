"""Admin pages of the gate: a check form, and the lawful-basis hygiene report with its bulk
erasure."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access.permissions import Scope
from pledge.core.errors import InvalidInput, NotFound
from pledge.core.ids import parse_id
from pledge.gate import hygiene
from pledge.gate import service as gate
from pledge.gate.schemas import REASON_TEXT
from pledge.preferences import topics
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Checker = Annotated[PageContext, Depends(page_context(Scope.GATE_CHECK))]
Reports = Annotated[PageContext, Depends(page_context(Scope.REPORTS_READ))]
Eraser = Annotated[PageContext, Depends(page_context(Scope.SUBJECTS_ERASE))]
SHOWN = 500  # subjects listed (and erased) per page of the report


def _check_form(
    request: Request, page: PageContext, values: dict[str, str], **extra: object
) -> Response:
    return render(
        request,
        "gate/check.html",
        {
            "purposes": purposes.list_purposes(page.ctx),
            "channels": [c.value for c in Channel],
            "topics": [t for t, _ in topics.list_topics(page.ctx)],
            "values": values,
            "decision": None,
            "error": None,
            "reason_text": REASON_TEXT,
            **extra,
        },
        status_code=422 if extra.get("error") else 200,
    )


@router.get("/gate")
def check_form(request: Request, page: Checker) -> Response:
    return _check_form(request, page, {})


def _subject(page: PageContext, who: str) -> uuid.UUID | None:
    as_id = parse_id(who)
    if as_id is None:
        return reading.find_subject_id(page.ctx, IdentityKind.EMAIL, who)
    try:
        return subjects.get_subject_row(page.ctx, as_id).id
    except NotFound:
        return None


@router.post("/gate/check")
async def check(request: Request, page: Checker) -> Response:
    """Ask the gate for one subject, by e-mail or subject id. An unknown subject is a message
    on the form, not an error page."""
    raw = await request.form()
    values = {k: str(raw.get(k, "")).strip() for k in ("who", "purpose", "channel", "topic")}
    partial = "gate/_decision.html" if request.headers.get("HX-Request") else "gate/check.html"
    subject_id = _subject(page, values["who"])
    if subject_id is None or not values["purpose"]:
        error = "No subject has that e-mail or id." if values["purpose"] else "Choose a purpose."
        if partial != "gate/check.html":
            # htmx swaps only 2xx answers: the message is the answer to show in place.
            return render(request, partial, {"decision": None, "error": error})
        return _check_form(request, page, values, error=error)
    decision = gate.may(
        page.ctx,
        subject_id,
        values["purpose"],
        values["channel"] or None,
        topic=values["topic"] or None,
    )
    if partial != "gate/check.html":
        return render(
            request, partial, {"decision": decision, "error": None, "reason_text": REASON_TEXT}
        )
    return _check_form(request, page, values, decision=decision)


@router.get("/reports/lawful-basis")
def report_page(
    request: Request, page: Reports, erased: int | None = None, skipped: int | None = None
) -> Response:
    report = hygiene.report(page.ctx)
    shown = report.subject_ids[:SHOWN]
    # Names only for those who may read subjects; the ids are enough to act on.
    rows = (
        reading.summarise_subjects(
            page.ctx,
            [subjects.get_subject_row(page.ctx, i) for i in shown],
            via="lawful_basis_report",
        )
        if page.can(Scope.SUBJECTS_READ)
        else []
    )
    return render(
        request,
        "gate/hygiene.html",
        {"report": report, "shown": shown, "rows": rows, "erased": erased, "skipped": skipped},
    )


@router.post("/reports/lawful-basis/erase")
async def erase_without_basis(request: Request, page: Eraser) -> Response:
    raw = await request.form()
    ids = [str(v) for v in raw.getlist("subject_ids")][:SHOWN]
    if raw.get("confirm") != "erase":
        raise InvalidInput("tick the confirmation box to erase these subjects")
    if not ids:
        raise InvalidInput("no subjects to erase")
    result = hygiene.erase_without_basis(page.ctx, ids, confirm=True)
    return RedirectResponse(
        f"/reports/lawful-basis?erased={result.count}&skipped={len(result.skipped)}",
        status_code=303,
    )
