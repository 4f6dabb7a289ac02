"""The privacy center's pages after a request is made (`/p/{slug}/requests/status…`,
`/p/{slug}/downloads…`): following the request from the status link, appealing the answer
(or our failure to answer in time), and downloading it once. Links followed by a GET change
nothing, as in `public`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access.context import TenantContext
from pledge.core.clock import utcnow
from pledge.rights import downloads, letters, status_links, transitions, verification
from pledge.rights import service as rights
from pledge.rights.models import OPEN_STATES, RequestState, RightsRequest
from pledge.rights.public import TYPES, Csrf, _show, _tenant_context, _throttle, refusals_shown
from pledge.web.deps import DbSession, RuntimeDep

router = APIRouter(include_in_schema=False)


STATE_WORDS = {
    RequestState.RECEIVED.value: "Received",
    RequestState.AWAITING_VERIFICATION.value: "Waiting for you to confirm it",
    RequestState.VERIFIED.value: "Confirmed; we are working on it",
    RequestState.IN_PROGRESS.value: "We are working on it",
    RequestState.PAUSED.value: "Waiting for information from you",
    RequestState.COMPLETED.value: "Completed",
    RequestState.DENIED.value: "Refused (the reasons are in our letter)",
    RequestState.WITHDRAWN.value: "Withdrawn",
    RequestState.CLOSED_UNVERIFIED.value: "Closed: it was not confirmed in time",
    RequestState.APPEALED.value: "Your appeal is being reviewed",
    RequestState.APPEAL_DENIED.value: "Appeal decided: our answer stands",
}
# An agent's request is confirmed by the person it is about, not by the agent reading this
# (`letters.addressee`); under a power of attorney nobody is asked while staff check it.
AGENT_AWAITING = "Waiting for the person it is about to confirm it"
POWER_OF_ATTORNEY_AWAITING = "We are checking the power of attorney"


def state_words(ctx: TenantContext, made: RightsRequest) -> str:
    """The request's state, in words for whoever follows the status link."""
    if made.state == RequestState.AWAITING_VERIFICATION.value and made.requester_kind == "agent":
        if verification.power_of_attorney_pending(ctx, made):
            return POWER_OF_ATTORNEY_AWAITING
        return AGENT_AWAITING
    return STATE_WORDS[made.state]


@router.get("/p/{slug}/requests/status/{token}")
@refusals_shown
def status_page(
    request: Request,
    slug: str,
    token: str,
    session: DbSession,
    runtime: RuntimeDep,
    appealed: int = 0,
) -> Response:
    ctx = _tenant_context(request, session, runtime, slug)
    made = status_links.request_for_status(ctx, token)
    law = rights.rule(made)
    due = rights.deadlines(ctx, made)
    return _show(
        request,
        "status.html",
        {
            "made": made,
            "title": TYPES[made.type][0],
            "state_words": state_words(ctx, made),
            "open": RequestState(made.state) in OPEN_STATES,
            "due": due,
            "letters": letters.letters_for_requester(ctx, made),
            # Where the law grants one; and, the request late, the appeal of our silence —
            # or, where the law grants none (GDPR), the authority to complain to.
            "can_appeal": transitions.appeal_refusal(ctx, made) is None,
            "late_since": transitions.late_since(ctx, made, utcnow().date()),
            "law": law,
            "token": token,
            "appealed": appealed == 1,
        },
    )


@router.post("/p/{slug}/requests/status/{token}/appeal")
@refusals_shown
def appeal(
    request: Request, slug: str, token: str, session: DbSession, runtime: RuntimeDep, _csrf: Csrf
) -> Response:
    """Appeal the answer, or our failure to answer in time, where the law grants an appeal
    (the letters and the status page say how)."""
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    made = status_links.request_for_status(ctx, token)
    transitions.appeal(ctx, made)
    return RedirectResponse(
        f"/p/{ctx.settings.slug}/requests/status/{token}?appealed=1", status_code=303
    )


@router.get("/p/{slug}/downloads/{token}")
@refusals_shown
def download_page(
    request: Request, slug: str, token: str, session: DbSession, runtime: RuntimeDep
) -> Response:
    """A page with a button: the link works once, and a mail scanner's GET must not use it."""
    ctx = _tenant_context(request, session, runtime, slug)
    ready = downloads.is_ready(ctx, token)
    return _show(
        request,
        "download.html",
        {"token": token, "ready": ready},
        status_code=200 if ready else 410,
    )


@router.post("/p/{slug}/downloads/{token}")
@refusals_shown
def download(
    request: Request, slug: str, token: str, session: DbSession, runtime: RuntimeDep, _csrf: Csrf
) -> Response:
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    if not downloads.is_ready(ctx, token):
        return _show(request, "download.html", {"token": token, "ready": False}, status_code=410)
    got = downloads.redeem(ctx, token)
    return Response(
        got.content,
        media_type=got.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{got.name}"',
            "Cache-Control": "no-store",
        },
    )
