"""Invitations to join a tenant's staff: an owner or admin invites an address with a role; the
link (shown once to the inviter) is good once, for 72 hours, and the invitee chooses their
password. The address is sealed and blind-indexed like a user's; the link's secret is kept as a
digest only. The rules of who may grant which role are the team's (`service._may_grant`), and
hold when the link is used as when it was made: an inviter disabled, demoted or revoked since
leaves a link that does not work. A waiting invitation can be revoked."""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import ApiKey, StaffInvitation, User
from pledge.access.permissions import Role, Scope
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.access.service import (
    _acts_as_owner,
    _digest,
    _dotted,
    _email_index,
    _grant_refusal,
    _insert_user,
    _may_grant,
    _normal_email,
    _refuse_taken,
    _role,
    _staff_aead,
    check_password_strength,
    scopes_for,
    user_email,
)
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, Forbidden, NotFound
from pledge.core.ids import new_id, parse_id
from pledge.crypto.aead import seal, unseal
from pledge.crypto.keystore import KeyStore
from pledge.tenants.models import Tenant

INVITATION_LIFETIME = timedelta(hours=72)


class InvitationInvalid(NotFound):
    """The one answer to a link that is unknown, used, replaced or expired."""

    def __init__(self) -> None:
        super().__init__("this invitation link is not valid: it is unknown, used or expired")


def _invitation_aad(tenant_id: uuid.UUID, invitation_id: uuid.UUID) -> bytes:
    return b"invitation-email|" + tenant_id.bytes + invitation_id.bytes


def invite_user(ctx: TenantContext, *, email: str, role: str) -> tuple[StaffInvitation, str]:
    """Invite `email` to the staff with `role`. Returns the invitation and the token of its
    link: shown once, only its digest is stored. A pending invitation to the same address
    is replaced (its link stops working)."""
    ctx.require(Scope.USERS_MANAGE)
    normal = _normal_email(email)
    wanted = _role(role)
    _may_grant(ctx, wanted)
    index = _email_index(ctx.keystore, ctx.tenant_id, normal)
    _refuse_taken(ctx, index)
    now = utcnow()
    replaced = ctx.session.scalars(
        for_tenant(select(StaffInvitation), StaffInvitation, ctx.tenant_id).where(
            StaffInvitation.email_index == index,
            StaffInvitation.accepted_at.is_(None),
            StaffInvitation.revoked_at.is_(None),
        )
    ).all()
    for old in replaced:
        old.revoked_at = now
    secret = secrets.token_urlsafe(32)
    invitation_id = new_id()
    invitation = StaffInvitation(
        tenant_id=ctx.tenant_id,
        id=invitation_id,
        email_index=index,
        email_sealed=seal(
            _staff_aead(ctx.keystore, ctx.tenant_id),
            normal.encode(),
            _invitation_aad(ctx.tenant_id, invitation_id),
        ),
        role=wanted.value,
        secret_digest=_digest(secret),
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
        # Kept to check, when the link is used, that they could still grant the role.
        invited_by_user_id=_actor_id(ctx, ActorKind.USER),
        invited_by_key_id=_actor_id(ctx, ActorKind.API_KEY),
    )
    ctx.session.add(invitation)
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.USER_INVITED,
        details={
            "invitation_id": str(invitation_id),
            "role": wanted.value,
            "expires_at": invitation.expires_at.isoformat(),
            "replaces": [str(old.id) for old in replaced],
        },
    )
    # The tenant is part of the token: the link alone says which tenant it is for.
    return invitation, f"{ctx.tenant_id.hex}.{invitation_id.hex}.{secret}"


def _actor_id(ctx: TenantContext, kind: ActorKind) -> uuid.UUID | None:
    return parse_id(ctx.actor.id) if ctx.actor.kind is kind and ctx.actor.id else None


def invitation_email(keystore: KeyStore, invitation: StaffInvitation) -> str:
    return unseal(
        _staff_aead(keystore, invitation.tenant_id),
        invitation.email_sealed,
        _invitation_aad(invitation.tenant_id, invitation.id),
    ).decode()


def list_invitations(ctx: TenantContext) -> list[StaffInvitation]:
    """The invitations still waiting for their invitee."""
    return list(
        ctx.session.scalars(
            for_tenant(select(StaffInvitation), StaffInvitation, ctx.tenant_id)
            .where(
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
                StaffInvitation.expires_at > utcnow(),
            )
            .order_by(StaffInvitation.created_at)
        )
    )


def open_invitation(session: Session, token: str) -> tuple[StaffInvitation, Tenant]:
    """The open invitation of a link, with its tenant; `InvitationInvalid` otherwise."""
    parts = _dotted(token)
    if parts is None:
        raise InvitationInvalid
    tenant_id, invitation_id, secret = parts
    invitation = session.get(StaffInvitation, (tenant_id, invitation_id))
    if invitation is None or not hmac.compare_digest(invitation.secret_digest, _digest(secret)):
        raise InvitationInvalid
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise InvitationInvalid
    if invitation.expires_at <= utcnow():
        raise InvitationInvalid
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise InvitationInvalid
    if not _inviter_may_still_grant(session, invitation):
        raise InvitationInvalid
    return invitation, tenant


def _inviter_may_still_grant(session: Session, invitation: StaffInvitation) -> bool:
    """Whether whoever invited could make this invitation now: not disabled (or revoked, for
    a key), still managing the team, still holding the role's permissions — and an owner, for
    an owner's invitation. The operator's (neither recorded) always could.

    Their row is read locked (FOR SHARE, PostgreSQL): disabling or demoting them at the same
    moment waits for the acceptance, or the acceptance reads what it left."""
    scopes: frozenset[Scope]
    if invitation.invited_by_user_id is not None:
        inviter = session.scalars(
            for_tenant(select(User), User, invitation.tenant_id)
            .where(User.id == invitation.invited_by_user_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if inviter is None or inviter.disabled_at is not None:
            return False
        scopes, owner = scopes_for(inviter), inviter.role == Role.OWNER.value
    elif invitation.invited_by_key_id is not None:
        key = session.scalars(
            for_tenant(select(ApiKey), ApiKey, invitation.tenant_id)
            .where(ApiKey.id == invitation.invited_by_key_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if key is None or key.revoked_at is not None:
            return False
        # A key holds no role: it never makes an owner.
        scopes, owner = (
            frozenset(Scope(s) for s in key.scopes if s in Scope._value2member_map_),
            False,
        )
    else:
        return True
    if Scope.USERS_MANAGE not in scopes:
        return False
    return _grant_refusal(Role(invitation.role), scopes, owner=owner) is None


def accept_invitation(session: Session, keystore: KeyStore, token: str, password: str) -> User:
    """The invitee chooses a password: the account is made, with the invited role, and the
    link is used up. Every check comes before the first write: a refusal changes nothing."""
    invitation, tenant = open_invitation(session, token)
    check_password_strength(password)
    user_id = new_id()
    ctx = TenantContext(session, keystore, tenant, Actor(ActorKind.USER, str(user_id)))
    # Added from the CLI since the invitation: the account exists, the link has no use.
    _refuse_taken(ctx, invitation.email_index)
    now = utcnow()
    # One UPDATE that only an open invitation passes: of two tabs accepting at once, the
    # second waits for the first and then finds it used (PostgreSQL re-checks the row).
    claimed = session.execute(
        update(StaffInvitation)
        .where(
            StaffInvitation.tenant_id == invitation.tenant_id,
            StaffInvitation.id == invitation.id,
            StaffInvitation.accepted_at.is_(None),
            StaffInvitation.revoked_at.is_(None),
            StaffInvitation.expires_at > now,
        )
        .values(accepted_at=now)
        .returning(StaffInvitation.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if claimed is None:
        raise InvitationInvalid
    set_committed_value(invitation, "accepted_at", now)
    normal = invitation_email(keystore, invitation)
    user = _insert_user(ctx, user_id, normal, invitation.email_index, password, invitation.role)
    invitation.user_id = user.id
    audit.record(
        ctx,
        AuditEvent.USER_INVITATION_ACCEPTED,
        details={
            "invitation_id": str(invitation.id),
            "user_id": str(user.id),
            "role": invitation.role,
        },
    )
    return user


def revoke_invitation(ctx: TenantContext, invitation_id: str) -> StaffInvitation:
    """Revoke a waiting invitation: its link stops working. Revoking it again changes
    nothing; an accepted one is `Conflict` (disable the user instead). Only an owner revokes
    an invitation to be an owner, as only an owner changes an owner's account."""
    ctx.require(Scope.USERS_MANAGE)
    invitation = get_in_tenant(
        ctx.session, StaffInvitation, ctx.tenant_id, invitation_id, what="invitation"
    )
    if invitation.role == Role.OWNER.value and not _acts_as_owner(ctx):
        raise Forbidden("only an owner may revoke an invitation to be an owner")
    now = utcnow()
    # One UPDATE that only an open invitation passes, as its acceptance: of the two at once,
    # the second finds what the first did (PostgreSQL re-checks the row).
    revoked = ctx.session.execute(
        update(StaffInvitation)
        .where(
            StaffInvitation.tenant_id == ctx.tenant_id,
            StaffInvitation.id == invitation.id,
            StaffInvitation.accepted_at.is_(None),
            StaffInvitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(StaffInvitation.id),
        execution_options={"synchronize_session": False},
    ).scalar_one_or_none()
    if revoked is None:
        ctx.session.refresh(invitation)
        if invitation.accepted_at is not None:
            raise Conflict("this invitation was accepted already: disable the user instead")
        return invitation
    set_committed_value(invitation, "revoked_at", now)
    audit.record(
        ctx,
        AuditEvent.USER_INVITATION_REVOKED,
        details={"invitation_id": str(invitation.id), "role": invitation.role},
    )
    return invitation


def invited_by(ctx: TenantContext, invitation: StaffInvitation) -> str:
    """Who invited, for the team page: a member's address, an API key's name, or the
    operator."""
    if invitation.invited_by_user_id is not None:
        user = ctx.session.get(User, (ctx.tenant_id, invitation.invited_by_user_id))
        return user_email(ctx.keystore, user) if user is not None else "a former member"
    if invitation.invited_by_key_id is not None:
        key = ctx.session.get(ApiKey, (ctx.tenant_id, invitation.invited_by_key_id))
        return f"API key “{key.name}”" if key is not None else "an API key"
    return "the operator (command line)"
