"""The team pages: an owner or admin invites, re-roles, disables and enables the tenant's staff
and revokes waiting invitations (scope `users:manage`), and the public page where an invitee
chooses a password.

The rules (who may make an owner, the last owner, one's own role) live in
`pledge.access.service`; a refusal comes back to the team page as its message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access import invitations, service
from pledge.access.api import invitation_link
from pledge.access.models import StaffInvitation, User
from pledge.access.permissions import Role, Scope
from pledge.core.errors import Conflict, Forbidden, InvalidInput, PledgeError
from pledge.runtime import Runtime
from pledge.web.deps import DbSession, PageContext, RuntimeDep, page_context
from pledge.web.security import csrf_protect
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Manage = Annotated[PageContext, Depends(page_context(Scope.USERS_MANAGE))]
Csrf = Annotated[None, Depends(csrf_protect)]
# What a refusal of the rules may be; `NotFound` (another tenant's user) stays a 404.
REFUSALS = (Conflict, Forbidden, InvalidInput)
ROLE_LABELS = {
    Role.OWNER.value: "Owner",
    Role.ADMIN.value: "Admin",
    Role.PRIVACY_OFFICER.value: "Privacy officer",
    Role.AGENT.value: "Agent",
    Role.VIEWER.value: "Viewer",
}
DONE = {
    "role": "The role is changed.",
    "disabled": "The user is disabled and signed out everywhere.",
    "enabled": "The user can sign in again.",
    "revoked": "The invitation is revoked: its link no longer works.",
}


def _team(
    request: Request, page: PageContext, *, status_code: int = 200, **context: Any
) -> Response:
    ctx = page.ctx
    members = [
        {"user": user, "email": service.user_email(ctx.keystore, user)}
        for user in service.list_users(ctx)
    ]
    pending = [
        {
            "invitation": inv,
            "email": invitations.invitation_email(ctx.keystore, inv),
            "invited_by": invitations.invited_by(ctx, inv),
        }
        for inv in invitations.list_invitations(ctx)
    ]
    values: dict[str, Any] = {
        "members": members,
        "pending": pending,
        "roles": ROLE_LABELS,
        "me": page.user.id,
        "form": {"email": "", "role": Role.AGENT.value},
        "error": None,
    }
    return render(request, "team/list.html", values | context, status_code=status_code)


@router.get("/team")
def team(request: Request, page: Manage, done: str = "") -> Response:
    return _team(request, page, notice=DONE.get(done))


@router.post("/team/invite")
def invite(
    request: Request,
    page: Manage,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=32)],
) -> Response:
    try:
        invitation, token = invitations.invite_user(page.ctx, email=email, role=role)
    except REFUSALS as exc:
        return _refused(request, page, exc, form={"email": email, "role": role}, invite_failed=True)
    # Rendered, not redirected to: the link must not go into a URL or the history.
    return _team(
        request,
        page,
        invited={
            "email": invitations.invitation_email(page.ctx.keystore, invitation),
            "role": invitation.role,
            "link": invitation_link(runtime, token),
            "expires_at": invitation.expires_at,
        },
    )


def _refused(request: Request, page: PageContext, exc: PledgeError, **context: Any) -> Response:
    message = exc.detail[:1].upper() + exc.detail[1:] + "."
    return _team(request, page, status_code=exc.status, error=message, **context)


def _member(page: PageContext, user_id: str) -> User:
    return service.get_user(page.ctx, user_id)


def _act(
    request: Request, page: PageContext, user_id: str, act: Callable[[User], object], done: str
) -> Response:
    """One change to a member: done, back to the list; refused, the list with the reason."""
    user = _member(page, user_id)
    try:
        act(user)
    except REFUSALS as exc:
        return _refused(request, page, exc)
    return RedirectResponse(f"/team?done={done}", status_code=303)


@router.post("/team/{user_id}/role")
def change_role(
    request: Request, page: Manage, user_id: str, role: Annotated[str, Form(max_length=32)]
) -> Response:
    return _act(request, page, user_id, lambda u: service.change_role(page.ctx, u, role), "role")


@router.post("/team/{user_id}/disable")
def disable(request: Request, page: Manage, user_id: str) -> Response:
    return _act(request, page, user_id, partial(service.disable_user, page.ctx), "disabled")


@router.post("/team/{user_id}/enable")
def enable(request: Request, page: Manage, user_id: str) -> Response:
    return _act(request, page, user_id, partial(service.enable_user, page.ctx), "enabled")


@router.post("/team/invitations/{invitation_id}/revoke")
def revoke_invitation(request: Request, page: Manage, invitation_id: str) -> Response:
    try:
        invitations.revoke_invitation(page.ctx, invitation_id)
    except REFUSALS as exc:
        return _refused(request, page, exc)
    return RedirectResponse("/team?done=revoked", status_code=303)


# ---------------------------------------------------------------------------------------------
# The invitee's page (public: the link is the credential)


def _invalid(request: Request) -> Response:
    """One answer to a link unknown, used, replaced or expired: which it was is not told."""
    return render(request, "team/invalid.html", {}, status_code=404)


@router.get("/invite/{token}")
def invitation_form(
    request: Request, session: DbSession, runtime: RuntimeDep, token: str
) -> Response:
    try:
        invitation, tenant = invitations.open_invitation(session, token)
    except invitations.InvitationInvalid:
        return _invalid(request)
    return _accept_form(request, runtime, invitation, tenant.name, None)


def _accept_form(
    request: Request,
    runtime: Runtime,
    invitation: StaffInvitation,
    tenant_name: str,
    error: str | None,
    *,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "team/accept.html",
        {
            "tenant_name": tenant_name,
            "email": invitations.invitation_email(runtime.keystore, invitation),
            "role": ROLE_LABELS[invitation.role],
            "min_chars": service.MIN_PASSWORD_CHARS,
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/invite/{token}")
def accept(
    request: Request,
    session: DbSession,
    runtime: RuntimeDep,
    _csrf: Csrf,
    token: str,
    password: Annotated[str, Form(max_length=1024)],
    password_again: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        invitation, tenant = invitations.open_invitation(session, token)
    except invitations.InvitationInvalid:
        return _invalid(request)
    tenant_name, slug = tenant.name, tenant.slug
    if password != password_again:
        return _accept_form(
            request,
            runtime,
            invitation,
            tenant_name,
            "The two passwords differ: type the same password twice.",
            status_code=422,
        )
    try:
        user = invitations.accept_invitation(session, runtime.keystore, token, password)
    except invitations.InvitationInvalid:
        return _invalid(request)
    except (InvalidInput, Conflict) as exc:
        message = exc.detail[:1].upper() + exc.detail[1:] + "."
        return _accept_form(
            request, runtime, invitation, tenant_name, message, status_code=exc.status
        )
    return render(
        request,
        "team/accepted.html",
        {
            "tenant_name": tenant_name,
            "workspace": slug,
            "email": service.user_email(runtime.keystore, user),
        },
    )
