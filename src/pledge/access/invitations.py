"""Invitations to join a tenant's staff: an owner or admin invites an address with a role; the
link (shown once to the inviter) is good once, for 72 hours, and the invitee chooses their
password. The address is sealed and blind-indexed like a user's; the link's secret is kept as a
digest only. The rules of who may grant which role are the team's (`service._may_grant`)."""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import StaffInvitation, User
from pledge.access.permissions import Scope
from pledge.access.scoping import for_tenant
from pledge.access.service import (
    _digest,
    _dotted,
    _email_index,
    _insert_user,
    _may_grant,
    _normal_email,
    _refuse_taken,
    _role,
    _staff_aead,
    check_password_strength,
)
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import NotFound
from pledge.core.ids import new_id
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
    return invitation, tenant


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
