"""Sign-in pages: password, then the TOTP step when the user or the tenant requires it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access import service
from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import User
from pledge.core.errors import InvalidInput, NotFound, TooManyAttempts, Unauthenticated
from pledge.runtime import Runtime
from pledge.tenants.service import get_tenant_by_slug
from pledge.web import throttle
from pledge.web.deps import SESSION_COOKIE, DbSession, PageContext, RuntimeDep, page_context
from pledge.web.security import csrf_protect
from pledge.web.templating import render
from pledge.web.throttle import Rule, TooManyRequests

router = APIRouter(include_in_schema=False)

Csrf = Annotated[None, Depends(csrf_protect)]
SignedIn = Annotated[PageContext, Depends(page_context())]
SIGN_IN_ATTEMPTS = "sign-in attempts"


def safe_next(target: str | None) -> str:
    """Only local paths: `next` must not send a signed-in user to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    workspace: Annotated[str, Form(max_length=40)],
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        # Per client address, before any account is looked at: one client trying a password
        # on many accounts never trips the per-account lock.
        throttle.check(request, Rule.SIGN_IN, SIGN_IN_ATTEMPTS)
    except TooManyRequests as exc:
        return _throttled(
            request,
            exc,
            "login.html",
            {"next": safe_next(next), "workspace": workspace, "email": email},
        )
    try:
        tenant = get_tenant_by_slug(session, workspace.strip().lower())
        user = service.authenticate(session, runtime.keystore, tenant, email, password)
    except (NotFound, Unauthenticated):
        # One answer for an unknown workspace or account, a wrong password and a locked
        # account: the page must not tell which accounts exist or are locked.
        return render(
            request,
            "login.html",
            {
                "next": safe_next(next),
                "error": service.LOGIN_REFUSED,
                # What was typed comes back (not the password): the same for any account.
                "workspace": workspace,
                "email": email,
            },
            status_code=401,
        )
    ctx = TenantContext(session, runtime.keystore, tenant, Actor(ActorKind.USER, str(user.id)))
    token = service.start_session(ctx, user, runtime.settings.session_hours)
    target = "/login/totp" if service.needs_second_factor(tenant, user) else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(response, runtime, token)
    return response


def _throttled(
    request: Request, exc: TooManyRequests, template: str, context: dict[str, object]
) -> Response:
    """The form again, saying to wait: 429 with `Retry-After`; nothing was tried."""
    message = exc.detail[:1].upper() + exc.detail[1:] + "."
    response = render(request, template, context | {"error": message}, status_code=exc.status)
    response.headers.update(exc.headers)
    return response


def _set_session_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookies_secure,
        max_age=runtime.settings.session_hours * 3600,
        path="/",
    )


def _pending(request: Request, session: DbSession) -> service.ResolvedSession | None:
    resolved = service.resolve_session(session, request.cookies.get(SESSION_COOKIE))
    return resolved if resolved and resolved.login.needs_second_factor else None


def _enrolment(ctx: TenantContext, user: User) -> dict[str, str] | None:
    """For a user without a second factor yet (the tenant requires one): the secret to add to
    an authenticator app — the pending one if any, so a reload shows the same secret."""
    if user.totp_enabled:
        return None
    secret = service.pending_totp_secret(ctx.keystore, user) or service.begin_totp(ctx, user)
    return _shown(ctx, user, secret)


def _shown(ctx: TenantContext, user: User, secret: str) -> dict[str, str]:
    """The secret as the pages show it: the key, and the link an authenticator app opens."""
    account = service.user_email(ctx.keystore, user)
    return {
        "secret": secret,
        "uri": service.totp_uri(secret, account, f"Pledge ({ctx.settings.slug})"),
    }


@router.get("/login/totp")
def totp_form(request: Request, session: DbSession, runtime: RuntimeDep) -> Response:
    resolved = _pending(request, session)
    if resolved is None:
        return RedirectResponse("/login", status_code=303)
    ctx = TenantContext(
        session, runtime.keystore, resolved.tenant, Actor(ActorKind.USER, str(resolved.user.id))
    )
    return render(request, "totp.html", {"enrol": _enrolment(ctx, resolved.user), "error": None})


@router.post("/login/totp")
def totp_submit(
    request: Request,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    code: Annotated[str, Form(max_length=12)],
) -> Response:
    try:
        throttle.check(request, Rule.SIGN_IN, SIGN_IN_ATTEMPTS)
    except TooManyRequests as exc:
        # The form without the enrolment secret: showing it could start an enrolment.
        return _throttled(request, exc, "totp.html", {"enrol": None})
    resolved = _pending(request, session)
    if resolved is None:
        return RedirectResponse("/login", status_code=303)
    ctx = TenantContext(
        session, runtime.keystore, resolved.tenant, Actor(ActorKind.USER, str(resolved.user.id))
    )
    try:
        token = service.complete_second_factor(ctx, resolved, code)
    except Unauthenticated:
        enrol = _enrolment(ctx, resolved.user)
        return render(
            request,
            "totp.html",
            {"enrol": enrol, "error": "That code is not right."},
            status_code=401,
        )
    except TooManyAttempts as exc:
        # The password was right, so telling of the lock reveals nothing new; the pending
        # sign-in has ended.
        locked = render(
            request,
            "totp.html",
            {"enrol": None, "locked": True, "error": exc.detail},
            status_code=429,
        )
        locked.delete_cookie(SESSION_COOKIE, path="/")
        return locked
    # A fresh session token replaces the password-only one.
    response = RedirectResponse("/", status_code=303)
    _set_session_cookie(response, runtime, token)
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession, runtime: RuntimeDep, _csrf: Csrf) -> Response:
    """End the browser's session, signed in or still waiting for its second factor: a person
    who gave the password on a shared computer can take it back before the code."""
    resolved = service.resolve_session(session, request.cookies.get(SESSION_COOKIE))
    if resolved is not None:
        ctx = TenantContext(
            session, runtime.keystore, resolved.tenant, Actor(ActorKind.USER, str(resolved.user.id))
        )
        service.end_session(ctx, resolved)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account")
def account(request: Request, page: SignedIn) -> Response:
    return render(
        request,
        "account.html",
        {"email": service.user_email(page.ctx.keystore, page.user), "enrol": None},
    )


@router.post("/account/totp")
def account_totp_begin(request: Request, page: SignedIn) -> Response:
    if page.user.totp_enabled:
        return RedirectResponse("/account", status_code=303)
    secret = service.begin_totp(page.ctx, page.user)
    email = service.user_email(page.ctx.keystore, page.user)
    enrol = _shown(page.ctx, page.user, secret)
    return render(request, "account.html", {"email": email, "enrol": enrol})


@router.post("/account/totp/confirm")
def account_totp_confirm(
    request: Request, page: SignedIn, code: Annotated[str, Form(max_length=12)]
) -> Response:
    email = service.user_email(page.ctx.keystore, page.user)
    try:
        service.confirm_totp(page.ctx, page.user, code)
    except InvalidInput as exc:
        # The same key again, not a new one: it is in the person's authenticator app already.
        pending = service.pending_totp_secret(page.ctx.keystore, page.user)
        enrol = _shown(page.ctx, page.user, pending) if pending else None
        return render(
            request,
            "account.html",
            {"email": email, "enrol": enrol, "error": exc.detail},
            status_code=422,
        )
    return render(
        request,
        "account.html",
        {"email": email, "enrol": None, "notice": "Two-step sign-in is on."},
    )
