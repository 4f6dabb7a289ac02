"""Public pages reached from an e-mail, with no sign-in: one-click unsubscribe (RFC 8058) and
the preference center. The tenant and the person come from the link alone — the token of an
unsubscribe URL, the signature of a preference link — never from a cookie or a session.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.core.errors import NotFound
from pledge.preferences import links, tokens
from pledge.preferences import service as preferences
from pledge.purposes.models import Channel
from pledge.signals import service as signals
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.tenants import service as tenants
from pledge.tenants.models import Tenant
from pledge.web import throttle
from pledge.web.deps import DbSession, RuntimeDep
from pledge.web.security import csrf_protect
from pledge.web.templating import render
from pledge.web.throttle import Rule, TooManyRequests

router = APIRouter(include_in_schema=False)

Csrf = Annotated[None, Depends(csrf_protect)]
UNSUBSCRIBE_ACTOR = Actor(ActorKind.ANONYMOUS, "unsubscribe-link")
PREFERENCES_ACTOR = Actor(ActorKind.ANONYMOUS, "preference-link")
CHANNEL_LABELS = {
    Channel.EMAIL.value: "e-mail",
    Channel.SMS.value: "text message",
    Channel.PHONE.value: "phone",
    Channel.POST.value: "post",
}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _invalid(request: Request, what: str) -> Response:
    if _wants_html(request):
        return render(
            request, "public/invalid_link.html", {"what": what, "tenant_name": ""}, status_code=404
        )
    return PlainTextResponse(f"This {what} link is not valid or has expired.\n", status_code=404)


# ---------------------------------------------------------------------------------------------
# One-click unsubscribe


@router.get("/u/{token}")
def unsubscribe_page(
    request: Request, token: str, session: DbSession, runtime: RuntimeDep
) -> Response:
    """The confirmation page. It changes nothing: link scanners follow GETs (RFC 8058 §4)."""
    try:
        found = tokens.resolve(session, runtime.keystore, token)
    except NotFound:
        return _invalid(request, "unsubscribe")
    ctx = TenantContext(session, runtime.keystore, found.tenant, UNSUBSCRIBE_ACTOR)
    what = tokens.describe(ctx, found.token)
    return render(
        request,
        "public/unsubscribe.html",
        {
            "tenant_name": found.tenant.name,
            "token": token,
            "topic_name": what.topic_name,
            "channel": CHANNEL_LABELS.get(what.channel, what.channel),
            "preferences_url": _preferences_url(ctx, found.token.subject_id),
        },
    )


def _preferences_url(ctx: TenantContext, subject_id: uuid.UUID) -> str | None:
    """The person's preference center, while there is a person (not after an erasure)."""
    if subjects.get_subject_row(ctx, subject_id).status == SubjectStatus.ERASED.value:
        return None
    return links.preference_link(ctx, subject_id)


@router.post("/u/{token}")
def unsubscribe_now(
    request: Request,
    token: str,
    session: DbSession,
    runtime: RuntimeDep,
    one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> Response:
    """RFC 8058: the body `List-Unsubscribe=One-Click` (form-urlencoded or multipart), no
    cookies, no CSRF token, no authorization — the token is the credential. Unsubscribes at
    once and answers 200, never a redirect."""
    try:
        found = tokens.resolve(session, runtime.keystore, token)
    except NotFound:
        return _invalid(request, "unsubscribe")
    if one_click != "One-Click":
        return PlainTextResponse(
            "Send the body List-Unsubscribe=One-Click to unsubscribe.\n", status_code=400
        )
    ctx = TenantContext(session, runtime.keystore, found.tenant, UNSUBSCRIBE_ACTOR)
    done = tokens.unsubscribe(ctx, found.token)
    if not _wants_html(request):
        return PlainTextResponse("You are unsubscribed.\n")
    return render(
        request,
        "public/unsubscribed.html",
        {
            "tenant_name": found.tenant.name,
            "topic_name": done.topic_name,
            "channel": CHANNEL_LABELS.get(done.channel, done.channel),
            "preferences_url": _preferences_url(ctx, found.token.subject_id),
        },
    )


# ---------------------------------------------------------------------------------------------
# The preference center


def _holder(
    session: DbSession, runtime: RuntimeDep, slug: str, s: str, e: str, sig: str
) -> tuple[links.LinkHolder, TenantContext]:
    holder = links.verify_link(session, runtime.keystore, slug, s, e, sig)
    return holder, TenantContext(session, runtime.keystore, holder.tenant, PREFERENCES_ACTOR)


LinkParam = Annotated[str, Query(max_length=100)]


def _gpc_note(tenant: Tenant, gpc: bool, opted_out: bool, source: str | None) -> str | None:
    """Show the person that their browser's signal was honoured (STANDARDS.md, GPC)."""
    if not gpc:
        return None
    if opted_out and tenant.honour_gpc:
        return (
            "Your browser sent a Global Privacy Control signal. We honour it: we do not sell "
            "or share your personal information."
        )
    if source == "explicit_opt_in":
        return (
            "Your browser sent a Global Privacy Control signal. You told us yourself that we "
            "may share your personal information, and your own choice takes precedence; "
            "tick the box below to opt out."
        )
    return None


@router.get("/p/{slug}/preferences")
def preference_center(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    s: LinkParam = "",
    e: LinkParam = "",
    sig: LinkParam = "",
    saved: int = 0,
) -> Response:
    try:
        holder, ctx = _holder(session, runtime, slug, s, e, sig)
    except NotFound:
        return _invalid(request, "preferences")
    sent = signals.from_headers(request.headers, None)
    signals.apply_to_subject(ctx, holder.subject.id, sent)
    view = preferences.read_preferences(ctx, holder.subject.id)
    return render(
        request,
        "public/preferences.html",
        {
            "tenant_name": holder.tenant.name,
            "view": view,
            "by_channel": view.by_channel(),
            "labels": CHANNEL_LABELS,
            "action": f"/p/{holder.tenant.slug}/preferences?{urlencode(holder.query)}",
            "withdraw_action": (
                f"/p/{holder.tenant.slug}/preferences/withdraw?{urlencode(holder.query)}"
            ),
            "gpc_note": _gpc_note(
                holder.tenant, sent.gpc, view.sale_opt_out, view.sale_opt_out_source
            ),
            "saved": saved,
        },
    )


def _throttled(request: Request, session: DbSession, slug: str) -> Response | None:
    """A 429 answer when this client address has sent too many public forms to this tenant
    (`pledge.web.throttle`): a page for a browser, plain text for other clients; None to go
    on. Checked before the link is even read; a tenant that does not exist is not counted
    (the link is then refused as invalid)."""
    try:
        tenant = tenants.get_tenant_by_slug(session, slug)
    except NotFound:
        return None
    try:
        throttle.check(request, Rule.PUBLIC_FORMS, "forms sent", tenant=tenant.id)
    except TooManyRequests as exc:
        message = exc.detail[:1].upper() + exc.detail[1:] + "."
        if _wants_html(request):
            # Back to the preferences page: its signed link is the query string the form kept.
            query = request.url.query
            page = render(
                request,
                "public/too_many.html",
                {
                    "message": message,
                    "back": f"/p/{tenant.slug}/preferences?{query}" if query else "",
                    "tenant_name": tenant.name,
                },
                status_code=exc.status,
            )
            page.headers.update(exc.headers)
            return page
        return PlainTextResponse(message + "\n", status_code=exc.status, headers=exc.headers)
    return None


def _back(holder: links.LinkHolder, saved: int) -> RedirectResponse:
    query = urlencode({**holder.query, "saved": saved})
    return RedirectResponse(f"/p/{holder.tenant.slug}/preferences?{query}", status_code=303)


@router.post("/p/{slug}/preferences")
def preference_center_save(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    s: LinkParam = "",
    e: LinkParam = "",
    sig: LinkParam = "",
    topic: Annotated[list[str] | None, Form(max_length=130)] = None,
    all_marketing_off: Annotated[str | None, Form(max_length=1)] = None,
    sale_opt_out: Annotated[str | None, Form(max_length=1)] = None,
) -> Response:
    """Save what the form shows. The page's CSRF token is required: this is a browser form,
    unlike the one-click unsubscribe."""
    if refused := _throttled(request, session, slug):
        return refused
    try:
        holder, ctx = _holder(session, runtime, slug, s, e, sig)
    except NotFound:
        return _invalid(request, "preferences")
    chosen = {(c, t) for c, _, t in (value.partition(":") for value in topic or [])}
    choices = preferences.Choices(
        frozenset(chosen),
        all_marketing_off=all_marketing_off == "1",
        sale_opt_out=sale_opt_out == "1",
    )
    preferences.apply_choices(ctx, holder.subject.id, choices, source="preference_center")
    signals.apply_to_subject(ctx, holder.subject.id, signals.from_headers(request.headers, None))
    return _back(holder, 1)


@router.post("/p/{slug}/preferences/withdraw")
def preference_center_withdraw(
    request: Request,
    slug: str,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    purpose: Annotated[str, Form(max_length=60)],
    s: LinkParam = "",
    e: LinkParam = "",
    sig: LinkParam = "",
) -> Response:
    """One-click withdrawal of one consent: as easy as giving it (GDPR Art. 7(3))."""
    if refused := _throttled(request, session, slug):
        return refused
    try:
        holder, ctx = _holder(session, runtime, slug, s, e, sig)
    except NotFound:
        return _invalid(request, "preferences")
    preferences.withdraw_consent(ctx, holder.subject.id, purpose)
    return _back(holder, 2)
