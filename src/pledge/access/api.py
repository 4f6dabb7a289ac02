"""REST routes for a tenant's API keys (scope `apikeys:manage`) and staff users (scope
`users:manage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from pledge.access import invitations, service
from pledge.access.context import TenantContext
from pledge.access.models import ApiKey, User
from pledge.access.permissions import Role, Scope
from pledge.runtime import Runtime
from pledge.web.deps import RuntimeDep, api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"], responses=PROBLEMS)

Manage = Annotated[TenantContext, Depends(api_context(Scope.APIKEYS_MANAGE))]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyCreated(ApiKeyOut):
    token: str = Field(description="Shown once. Only a digest is stored.")


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=str(key.id),
        name=key.name,
        scopes=key.scopes,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


@router.get("", response_model=list[ApiKeyOut])
def list_keys(ctx: Manage) -> list[ApiKeyOut]:
    return [_out(k) for k in service.list_api_keys(ctx)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(body: ApiKeyIn, ctx: Manage) -> ApiKeyCreated:
    key, token = service.create_api_key(ctx, name=body.name, scopes=frozenset(body.scopes))
    return ApiKeyCreated(**_out(key).model_dump(), token=token)


@router.delete("/{key_id}", response_model=ApiKeyOut)
def revoke_key(key_id: str, ctx: Manage) -> ApiKeyOut:
    return _out(service.revoke_api_key(ctx, key_id))


# ---------------------------------------------------------------------------------------------
# Staff (scope `users:manage`)


users_router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=PROBLEMS)

ManageUsers = Annotated[TenantContext, Depends(api_context(Scope.USERS_MANAGE))]


class UserOut(BaseModel):
    id: str
    email: str
    role: Role
    second_factor: bool = Field(description="Two-step sign-in (TOTP) is on")
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    role: Role


class InvitationCreated(BaseModel):
    id: str
    role: Role
    expires_at: datetime
    link: str = Field(
        description="Shown once: the invitee opens it to choose a password. Only a digest "
        "of its secret is stored; send it to the invitee yourself."
    )


class InvitationOut(BaseModel):
    id: str
    role: Role
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


def _user_out(ctx: TenantContext, user: User) -> UserOut:
    return UserOut(
        id=str(user.id),
        email=service.user_email(ctx.keystore, user),
        role=Role(user.role),
        second_factor=user.totp_enabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        disabled_at=user.disabled_at,
    )


def invitation_link(runtime: Runtime, token: str) -> str:
    return f"{runtime.settings.base_url.rstrip('/')}/invite/{token}"


@users_router.get("", response_model=list[UserOut])
def list_staff(ctx: ManageUsers) -> list[UserOut]:
    """The tenant's staff users, disabled ones included, oldest first."""
    return [_user_out(ctx, user) for user in service.list_users(ctx)]


@users_router.post("", status_code=status.HTTP_201_CREATED, response_model=InvitationCreated)
def invite(body: InvitationIn, ctx: ManageUsers, runtime: RuntimeDep) -> InvitationCreated:
    """Invite a person by e-mail with a role. The answer carries the invitation link, once;
    it works once, for 72 hours. Only an owner may invite an owner, and no key or user can
    grant a role with permissions it does not hold itself (403)."""
    invitation, token = invitations.invite_user(ctx, email=body.email, role=body.role.value)
    return InvitationCreated(
        id=str(invitation.id),
        role=Role(invitation.role),
        expires_at=invitation.expires_at,
        link=invitation_link(runtime, token),
    )


@users_router.delete("/invitations/{invitation_id}", response_model=InvitationOut)
def revoke_invitation(invitation_id: str, ctx: ManageUsers) -> InvitationOut:
    """Revoke a waiting invitation: its link stops working. Again changes nothing; an
    accepted invitation is 409 (disable the user instead). Only an owner revokes an
    invitation to be an owner (403, always for an API key)."""
    invitation = invitations.revoke_invitation(ctx, invitation_id)
    return InvitationOut(
        id=str(invitation.id),
        role=Role(invitation.role),
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
    )


@users_router.patch("/{user_id}", response_model=UserOut)
def change_role(user_id: str, body: RoleIn, ctx: ManageUsers) -> UserOut:
    """Change a user's role. The tenant's last active owner keeps the role (409); only an
    owner makes or changes an owner (403, always for an API key)."""
    user = service.change_role(ctx, service.get_user(ctx, user_id), body.role.value)
    return _user_out(ctx, user)


@users_router.post("/{user_id}/disable", response_model=UserOut)
def disable(user_id: str, ctx: ManageUsers) -> UserOut:
    """Stop a user signing in; their open sessions end at once. The last active owner
    cannot be disabled (409)."""
    user = service.get_user(ctx, user_id)
    service.disable_user(ctx, user)
    return _user_out(ctx, user)


@users_router.post("/{user_id}/enable", response_model=UserOut)
def enable(user_id: str, ctx: ManageUsers) -> UserOut:
    """Let a disabled user sign in again, with the same password and second factor. Only
    whoever could grant the user's role may (403)."""
    user = service.get_user(ctx, user_id)
    service.enable_user(ctx, user)
    return _user_out(ctx, user)
