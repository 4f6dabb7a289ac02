"""The privacy center's request pages, per tenant, with no sign-in (`/p/{slug}/requests…`).

Anyone may ask; nothing here says whether the address given is known — the same pages answer
for every address, and what the person is told about their data arrives by e-mail only. The
tenant comes from the slug; the request from a link the requester received (verification,
status, download) or from the reference and the code they were sent. Links followed by a GET
change nothing: mail scanners open links before people do. Asking and confirming are here;
following the request and downloading the answer are in `public_status`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, ParamSpec

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.scoping import for_tenant
from pledge.core.clock import utcnow
from pledge.core.db import serialise_on
from pledge.core.errors import Conflict, InvalidInput, NotFound, PledgeError, TooManyAttempts
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis, Purpose
from pledge.rights import (
    letters,
    verification,
    workflow,
)
from pledge.rights import service as rights
from pledge.rights.models import (
    RequestChannel,
    RequestState,
    RequestType,
    RightsRequest,
)
from pledge.rights.service import Requester, RequestInput
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.tenants import service as tenants
from pledge.web import throttle
from pledge.web.deps import DbSession, RuntimeDep
from pledge.web.limits import UPLOAD_MAX_BODY_BYTES
from pledge.web.security import csrf_protect
from pledge.web.templating import render
from pledge.web.throttle import Rule, TooManyRequests

router = APIRouter(include_in_schema=False)

Csrf = Annotated[None, Depends(csrf_protect)]
REQUESTER = Actor(ActorKind.ANONYMOUS, "privacy-center")

# What each right does, in plain words (the privacy center's choice page).
TYPES: dict[str, tuple[str, str]] = {
    RequestType.ACCESS.value: (
        "Get a copy of your data",
        "We send you a file with the personal data we hold about you and what we do with it.",
    ),
    RequestType.ACCESS_CATEGORIES.value: (
        "Know what kinds of data we hold",
        "We tell you the kinds of personal information we hold, where it comes from and why.",
    ),
    RequestType.PORTABILITY.value: (
        "Take your data elsewhere",
        "We give you the data you provided to us in a file a computer can read.",
    ),
    RequestType.RECTIFICATION.value: (
        "Correct your data",
        "Tell us what is wrong and what it should be; you may attach a document that shows it.",
    ),
    RequestType.ERASURE.value: (
        "Delete your data",
        "We erase your personal data, except what the law makes us keep — and we say why.",
    ),
    RequestType.RESTRICTION.value: (
        "Pause the use of your data",
        "We keep your data but stop using it, for example while you contest its accuracy.",
    ),
    RequestType.OBJECTION.value: (
        "Object to a use of your data",
        "We stop using your data for direct marketing or for our legitimate interests.",
    ),
    RequestType.OPT_OUT_SALE.value: (
        "Do not sell or share my personal information",
        "We stop selling or sharing your personal information, at once.",
    ),
    RequestType.LIMIT_SENSITIVE.value: (
        "Limit the use of my sensitive personal information",
        "We use your sensitive information only as needed to provide our services, at once.",
    ),
    RequestType.WITHDRAW_CONSENT.value: (
        "Withdraw your consent",
        "We stop the uses of your data you agreed to; what we did before stays lawful.",
    ),
    RequestType.AUTOMATED_DECISION.value: (
        "Ask a person to review an automated decision",
        "A member of our staff reviews a decision about you that a computer made.",
    ),
}
JURISDICTIONS = {
    "EU": "European Union",
    "UK": "United Kingdom",
    "CH": "Switzerland",
    "AU": "Australia",
    "US-CA": "California",
    "US-VA": "Virginia",
    "US-CO": "Colorado",
    "US-CT": "Connecticut",
    "US-UT": "Utah",
}
# Details a person may ask to correct, and the details that verify who they are (the names
# `verification.COMPARABLE_FIELDS` compares with what is on file).
CORRECTABLE = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "E-mail address",
    "phone": "Phone number",
    "address": "Postal address",
    "postcode": "Postcode",
    "city": "City",
    "date_of_birth": "Date of birth",
}
DATA_POINTS = {
    "phone": "Phone number",
    "first_name": "First name",
    "last_name": "Last name",
    "postcode": "Postcode",
    "city": "City",
    "date_of_birth": "Date of birth (YYYY-MM-DD)",
    "external_id": "Customer or account number",
}
PROOF_MAX_BYTES = 5 * 1024 * 1024
PROOF_TYPES = (  # by content, not by the name or the type the browser claims
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
PURPOSE_TYPES = {RequestType.OBJECTION.value, RequestType.WITHDRAW_CONSENT.value}
OBJECTABLE = {
    LawfulBasis.LEGITIMATE_INTEREST.value,
    LawfulBasis.PUBLIC_INTEREST.value,
    LawfulBasis.OFFICIAL_AUTHORITY.value,
}
FAILURES = {
    "wrong_code": "That code or link is not right. Check the e-mail we sent you and try again.",
    "expired": "This code or link has expired or was used already. Make a new request, or "
    "reply to our e-mail.",
    "declaration_missing": "Tick the declaration to confirm the request.",
    "data_points_mismatch": "The details you gave do not match what we hold about you.",
    "locked": "Too many wrong tries. Ask for a new code below: it comes by e-mail.",
}
RESENT = (
    "If a request with this reference is waiting for confirmation, a new code and link are on "
    "their way to its e-mail address. Use the newest code; the links of earlier e-mails still "
    f"work. At most {verification.MAX_CHALLENGES_PER_DAY} codes a day are sent for a request."
)


# ---------------------------------------------------------------------------------------------
# Plumbing: the tenant from the slug, and errors shown on the privacy center's own page


def _tenant_context(
    request: Request, session: DbSession, runtime: RuntimeDep, slug: str
) -> TenantContext:
    tenant = tenants.get_tenant_by_slug(session, slug)
    request.state.tenant_name = tenant.name
    request.state.tenant_slug = tenant.slug
    return TenantContext(session, runtime.keystore, tenant, REQUESTER, frozenset())


def _show(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    base = {
        "tenant_name": getattr(request.state, "tenant_name", ""),
        "slug": getattr(request.state, "tenant_slug", ""),
    }
    return render(request, f"privacy_center/{name}", base | context, status_code=status_code)


P = ParamSpec("P")


def refusals_shown(route: Callable[P, Response]) -> Callable[P, Response]:
    """A domain error rolls the transaction back and is told on the privacy center's page
    (the console's error page would offer a dashboard the visitor cannot open). Errors before
    the route runs (an expired form token, a value over its limit) get the same page from
    `pledge.web.problems`."""

    @functools.wraps(route)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return route(*args, **kwargs)
        except PledgeError as exc:
            request, session = kwargs["request"], kwargs["session"]
            assert isinstance(request, Request) and isinstance(session, Session)
            session.rollback()
            response = _show(
                request,
                "problem.html",
                {"title": exc.title, "detail": exc.detail},
                status_code=exc.status,
            )
            if isinstance(exc, TooManyRequests):
                response.headers.update(exc.headers)
            return response

    return wrapper


def _throttle(request: Request, ctx: TenantContext) -> None:
    """Count a posted form against the client address's limit at this tenant
    (`pledge.web.throttle`), before anything but the tenant is looked up, and nothing
    written; TooManyRequests past it."""
    throttle.check(request, Rule.PUBLIC_FORMS, "forms sent", tenant=ctx.tenant_id)


RECENT_WINDOW = timedelta(hours=24)


def _refuse_if_many_recent(ctx: TenantContext, email: str, most: int) -> None:
    """TooManyRequests when `most` privacy-center requests for this address came in the last
    24 hours: anyone can type any address, and each request mails it. Counted in the
    database, in this transaction, so every server process sees the same count. The message
    says no more than that: not whether the address is known, nor what was asked."""
    if most <= 0:
        return
    try:
        index = rights.contact_index(ctx, normalise_email(email))
    except InvalidIdentity:
        return  # the intake refuses the address, on the form
    # Counted and then taken in one go: two requests for the address at once take turns, or
    # each would count before the other's insert and both be taken.
    serialise_on(ctx.session, b"requests-per-address", ctx.tenant_id.bytes, index)
    recent = ctx.session.scalar(
        for_tenant(
            select(func.count()).select_from(RightsRequest), RightsRequest, ctx.tenant_id
        ).where(
            RightsRequest.contact_index == index,
            RightsRequest.received_at > utcnow() - RECENT_WINDOW,
            RightsRequest.channel == RequestChannel.PRIVACY_CENTER.value,
        )
    )
    if (recent or 0) >= most:
        contact = ctx.settings.privacy_contact.strip()
        raise TooManyRequests(
            "several requests for this e-mail address were received in the last 24 hours, "
            "so this one was not taken: follow the link in the e-mail we sent, or "
            + (f"write to {contact}" if contact else "contact our privacy team")
        )


def _purposes_for(ctx: TenantContext, rtype: str) -> list[Purpose]:
    """The purposes a person may name: consent purposes to withdraw; marketing and
    legitimate-interest purposes to object to."""
    found = purposes.list_purposes(ctx)
    if rtype == RequestType.WITHDRAW_CONSENT.value:
        return [p for p in found if p.lawful_basis == LawfulBasis.CONSENT.value]
    if rtype == RequestType.OBJECTION.value:
        return [p for p in found if p.lawful_basis in OBJECTABLE or p.is_marketing]
    return []


def _jurisdictions(ctx: TenantContext) -> list[tuple[str, str]]:
    codes = list(ctx.settings.jurisdictions or ["EU"])
    return [(code, JURISDICTIONS.get(code, code)) for code in codes]


class ConfirmForm(BaseModel):
    """What the requester types to confirm: the code (not on the link page), the details
    that must match what is on file, the declaration where the law asks for one."""

    reference: str = Field(default="", max_length=16)
    code: str = Field(default="", max_length=12)
    declaration: str = Field(default="", max_length=3)
    phone: str = Field(default="", max_length=200)
    first_name: str = Field(default="", max_length=200)
    last_name: str = Field(default="", max_length=200)
    postcode: str = Field(default="", max_length=200)
    city: str = Field(default="", max_length=200)
    date_of_birth: str = Field(default="", max_length=200)
    external_id: str = Field(default="", max_length=200)

    def supplied(self) -> dict[str, str]:
        given = self.model_dump()
        return {name: given[name].strip() for name in DATA_POINTS if given[name].strip()}


def _proof(upload: UploadFile | None) -> tuple[str, str, bytes] | None:
    """The rectification's proof: (media type, extension, content), checked by content."""
    if upload is None or not upload.filename:
        return None
    content = upload.file.read(PROOF_MAX_BYTES + 1)
    if not content:
        return None
    if len(content) > PROOF_MAX_BYTES:
        raise InvalidInput("the proof file is larger than 5 MB")
    for magic, media_type, extension in PROOF_TYPES:
        if content.startswith(magic):
            return media_type, extension, content
    raise InvalidInput("the proof must be a PDF, PNG or JPEG file")


# ---------------------------------------------------------------------------------------------
# Asking


def _form_context(
    ctx: TenantContext, rtype: str, values: dict[str, Any] | None = None, error: str = ""
) -> dict[str, Any]:
    return {
        "type": rtype,
        "title": TYPES[rtype][0],
        "description": TYPES[rtype][1],
        "jurisdictions": _jurisdictions(ctx),
        "correctable": CORRECTABLE,
        "purposes": _purposes_for(ctx, rtype),
        "values": values or {},
        "error": error,
        "purpose_types": PURPOSE_TYPES,
    }


@router.get("/p/{slug}/requests")
@refusals_shown
def choose(
    request: Request, slug: str, session: DbSession, runtime: RuntimeDep, type: str = ""
) -> Response:
    """Choose a right (no `type`), then the form for it."""
    ctx = _tenant_context(request, session, runtime, slug)
    if type in TYPES:
        return _show(request, "form.html", _form_context(ctx, type))
    return _show(request, "choose.html", {"types": TYPES, "unknown": bool(type)})


@router.post("/p/{slug}/requests", max_body_size=UPLOAD_MAX_BODY_BYTES)
@refusals_shown
def submit(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    type: Annotated[str, Form(max_length=24)],
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)] = "",
    jurisdiction: Annotated[str, Form(max_length=8)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    field: Annotated[list[str] | None, Form(max_length=40)] = None,
    value: Annotated[list[str] | None, Form(max_length=500)] = None,
    purpose: Annotated[list[str] | None, Form(max_length=60)] = None,
    proof: Annotated[UploadFile | None, File()] = None,
) -> Response:
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    if type not in TYPES:
        raise InvalidInput("choose the kind of request")
    _refuse_if_many_recent(ctx, email, runtime.settings.requests_per_address_per_day)
    values = {
        "email": email,
        "name": name,
        "jurisdiction": jurisdiction,
        "note": note,
        "fields": list(zip(field or [], value or [], strict=False)),
        "purposes": purpose or [],
    }
    try:
        details: dict[str, Any] = {}
        if note.strip():
            details["note"] = note.strip()
        attached = None
        if type == RequestType.RECTIFICATION.value:
            proposed = {f: v.strip() for f, v in values["fields"] if f in CORRECTABLE and v.strip()}
            if not proposed:
                raise InvalidInput("tell us which detail is wrong and what it should be")
            details["proposed"] = proposed
            attached = _proof(proof)
        if type in PURPOSE_TYPES and purpose:
            known = {p.slug for p in _purposes_for(ctx, type)}
            if not set(purpose) <= known:
                raise InvalidInput("choose purposes from the list")
            details["purposes"] = sorted(set(purpose))
        received = workflow.receive(
            ctx,
            RequestInput(
                type,
                Requester(email, name),
                jurisdiction or None,
                "privacy_center",
                details,
            ),
        )
    except InvalidInput as exc:
        session.rollback()
        return _show(
            request,
            "form.html",
            _form_context(ctx, type, values, error=exc.detail),
            status_code=422,
        )
    made = received.request
    if attached is not None:
        media_type, extension, content = attached
        letters.store_artifact(
            ctx,
            made,
            kind="proof",
            name=f"proof-{made.reference}{extension}",
            media_type=media_type,
            content=content,
        )
    # The same page for every address: whether we know the person is not said here.
    return _show(
        request,
        "received.html",
        {
            "made": made,
            "title": TYPES[type][0],
            "done": made.state == RequestState.COMPLETED.value,
            # An objection's marketing part stopped on receipt (said from what was asked).
            "marketing_now": made.state != RequestState.COMPLETED.value
            and workflow.stops_marketing(ctx, made),
            "need": verification.requirement(made),
            "due": made.due_on,
            "data_points": DATA_POINTS,
        },
    )


# ---------------------------------------------------------------------------------------------
# Confirming: the link, or the reference and the code


def _confirm_context(
    need: verification.Requirement | None, error: str = "", reference: str = ""
) -> dict[str, Any]:
    return {"need": need, "error": error, "reference": reference, "data_points": DATA_POINTS}


def _locked(request: Request, session: Session, name: str, context: dict[str, Any]) -> Response:
    """Wrong tries used up: said on the form, with the way to a new code (nothing written)."""
    session.rollback()
    return _show(request, name, context | {"error": FAILURES["locked"]}, status_code=429)


def _verified(request: Request, made: RightsRequest) -> Response:
    return _show(
        request,
        "verified.html",
        {"made": made, "title": TYPES[made.type][0], "due": made.due_on},
    )


def _too_few(need: verification.Requirement, supplied: dict[str, str]) -> str:
    if len(supplied) < need.data_points:
        return f"Give at least {need.data_points} of the details below."
    return ""


@router.get("/p/{slug}/requests/confirm")
@refusals_shown
def confirm_form(
    request: Request, slug: str, session: DbSession, runtime: RuntimeDep, reference: str = ""
) -> Response:
    """The code form: for someone who reads the e-mail on another device than the browser."""
    ctx = _tenant_context(request, session, runtime, slug)
    need = None
    if reference:
        try:
            waiting = rights.get_by_reference(
                ctx, reference, state=RequestState.AWAITING_VERIFICATION
            )
            need = verification.requirement(waiting)
        except NotFound:
            need = None  # the general form; an unknown reference is told on sending
    return _show(request, "confirm.html", _confirm_context(need, reference=reference[:16]))


@router.post("/p/{slug}/requests/confirm")
@refusals_shown
def confirm_code(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    form: Annotated[ConfirmForm, Form()],
) -> Response:
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    reference = form.reference.strip()
    try:
        made = rights.get_by_reference(ctx, reference, state=RequestState.AWAITING_VERIFICATION)
    except NotFound:
        return _show(
            request,
            "confirm.html",
            _confirm_context(
                None, "No request with that reference is waiting for confirmation.", reference
            ),
            status_code=404,
        )
    need = verification.requirement(made)
    supplied = form.supplied()
    too_few = _too_few(need, supplied)
    if too_few:
        return _show(
            request, "confirm.html", _confirm_context(need, too_few, reference), status_code=422
        )
    try:
        outcome = verification.confirm(
            ctx, made, code=form.code, data_points=supplied, declaration=form.declaration == "yes"
        )
    except TooManyAttempts:
        return _locked(request, session, "confirm.html", _confirm_context(need, "", reference))
    if outcome.verified:
        return _verified(request, made)
    # A failed try is kept (it counts towards the limit of attempts): answer, not raise.
    message = FAILURES.get(outcome.reason or "", FAILURES["wrong_code"])
    return _show(
        request, "confirm.html", _confirm_context(need, message, reference), status_code=422
    )


@router.post("/p/{slug}/requests/confirm/resend")
@refusals_shown
def resend_code(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    reference: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """A new code and link by e-mail, for the reference of a request waiting for
    verification. The same answer whatever the reference — unknown, confirmed already, or
    sent its codes for the day: it says nothing of requests."""
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    reference = reference.strip()
    try:
        made = rights.get_by_reference(ctx, reference, state=RequestState.AWAITING_VERIFICATION)
        workflow.resend_verification(ctx, made, by="requester")
    except (NotFound, Conflict, TooManyAttempts):
        session.rollback()  # nothing sent, nothing written
    return _show(
        request, "confirm.html", _confirm_context(None, "", reference) | {"notice": RESENT}
    )


@router.get("/p/{slug}/requests/verify/{token}")
@refusals_shown
def verify_page(
    request: Request, slug: str, token: str, session: DbSession, runtime: RuntimeDep
) -> Response:
    """The link in the e-mail: a page with a button. Opening it verifies nothing."""
    ctx = _tenant_context(request, session, runtime, slug)
    made, _secret = verification.request_for_link(ctx, token)
    waiting = made.state == RequestState.AWAITING_VERIFICATION.value
    return _show(
        request,
        "verify.html",
        _confirm_context(verification.requirement(made)) | {"token": token, "waiting": waiting},
    )


@router.post("/p/{slug}/requests/verify/{token}")
@refusals_shown
def verify_now(
    request: Request,
    slug: str,
    token: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    form: Annotated[ConfirmForm, Form()],
) -> Response:
    ctx = _tenant_context(request, session, runtime, slug)
    _throttle(request, ctx)
    made, _secret = verification.request_for_link(ctx, token)
    context: dict[str, Any] = {"token": token, "waiting": True}
    if made.state != RequestState.AWAITING_VERIFICATION.value:
        return _show(request, "verify.html", _confirm_context(None) | context | {"waiting": False})
    need = verification.requirement(made)
    supplied = form.supplied()
    too_few = _too_few(need, supplied)
    if too_few:
        return _show(
            request, "verify.html", _confirm_context(need, too_few) | context, status_code=422
        )
    try:
        made, outcome = workflow.verify_link(
            ctx, token, data_points=supplied, declaration=form.declaration == "yes"
        )
    except TooManyAttempts:
        return _locked(request, session, "verify.html", _confirm_context(need) | context)
    if outcome.verified:
        return _verified(request, made)
    message = FAILURES.get(outcome.reason or "", FAILURES["wrong_code"])
    return _show(request, "verify.html", _confirm_context(need, message) | context, status_code=422)
