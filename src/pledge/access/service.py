"""Users, passwords, second factor, login sessions and API keys."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import ApiKey, LoginSession, User
from pledge.access.permissions import ROLE_SCOPES, Role, Scope
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import serialise_on
from pledge.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from pledge.core.ids import new_id, parse_id
from pledge.crypto.aead import blind_index, seal, unseal
from pledge.crypto.keystore import KeyStore
from pledge.subjects.identity import InvalidIdentity, normalise_email
from pledge.tenants.models import Tenant

# argon2id with the library's defaults (RFC 9106 second recommended option: t=3, m=64 MiB).
_hasher = PasswordHasher()
# Verified against when the account does not exist, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_CHARS = 12
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
_LOCKOUT_MINUTES = int(LOCKOUT.total_seconds()) // 60
# The one answer to every refused sign-in — unknown account, wrong password, locked account —
# so the answer does not tell whether an account exists or is locked.
LOGIN_REFUSED = (
    "Wrong workspace, e-mail or password — or too many failed tries: "
    f"wait {_LOCKOUT_MINUTES} minutes and try again."
)
# After the password was accepted the account is known to the user: the lock may be told.
SECOND_FACTOR_LOCKED = (
    f"Too many failed tries: this account is locked; wait {_LOCKOUT_MINUTES} minutes "
    "and sign in again."
)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _dotted(token: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """A `tenant.row.secret` token (a sign-in session, an invitation) as its parts: the
    tenant's id and the row's, both in hex, and the secret; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    tenant_id, row_id = parse_id(parts[0]), parse_id(parts[1])
    if tenant_id is None or row_id is None:
        return None
    return tenant_id, row_id, parts[2]


# ---------------------------------------------------------------------------------------------
# Users


def _staff_aead(keystore: KeyStore, tenant_id: uuid.UUID) -> AESGCM:
    return AESGCM(keystore.derived_key(tenant_id, "staff"))


def _email_index(keystore: KeyStore, tenant_id: uuid.UUID, normal: str) -> bytes:
    return blind_index(keystore.derived_key(tenant_id, "blind-index"), f"user-email:{normal}")


def check_password_strength(password: str) -> None:
    # NIST SP 800-63B: length over composition rules.
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > 1024:
        raise InvalidInput("a password may have at most 1024 characters")


def add_user(ctx: TenantContext, *, email: str, password: str, role: str) -> User:
    normal = _normal_email(email)
    role_value = _role(role).value
    check_password_strength(password)
    index = _email_index(ctx.keystore, ctx.tenant_id, normal)
    _refuse_taken(ctx, index)
    return _insert_user(ctx, new_id(), normal, index, password, role_value)


def _normal_email(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidIdentity as exc:
        raise InvalidInput(f"email: {exc}") from None


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"role must be one of: {', '.join(r.value for r in Role)}") from None


def _refuse_taken(ctx: TenantContext, index: bytes) -> None:
    exists = ctx.session.scalar(
        for_tenant(select(User.id), User, ctx.tenant_id).where(User.email_index == index)
    )
    if exists is not None:
        raise Conflict("a user with this e-mail already exists in this tenant")


def _insert_user(
    ctx: TenantContext, user_id: uuid.UUID, normal: str, index: bytes, password: str, role: str
) -> User:
    user = User(
        tenant_id=ctx.tenant_id,
        id=user_id,
        email_index=index,
        email_sealed=seal(
            _staff_aead(ctx.keystore, ctx.tenant_id),
            normal.encode(),
            b"user-email|" + ctx.tenant_id.bytes + user_id.bytes,
        ),
        password_hash=_hasher.hash(password),
        role=role,
        created_at=utcnow(),
    )
    ctx.session.add(user)
    ctx.session.flush()
    audit.record(ctx, AuditEvent.USER_CREATED, details={"user_id": str(user.id), "role": role})
    return user


def user_email(keystore: KeyStore, user: User) -> str:
    return unseal(
        _staff_aead(keystore, user.tenant_id),
        user.email_sealed,
        b"user-email|" + user.tenant_id.bytes + user.id.bytes,
    ).decode()


def list_users(ctx: TenantContext) -> list[User]:
    return list(
        ctx.session.scalars(for_tenant(select(User), User, ctx.tenant_id).order_by(User.created_at))
    )


def authenticate(
    session: Session, keystore: KeyStore, tenant: Tenant, email: str, password: str
) -> User:
    """Check a password. Failures are audited; five in a row lock the account for 15 minutes.

    Every refusal — unknown or disabled account, wrong password, locked account — raises the
    same `Unauthenticated(LOGIN_REFUSED)` after the same argon2 work, so the answer does not
    tell an account that exists, or is locked, from one that does not."""
    now = utcnow()
    try:
        normal = normalise_email(email)
    except InvalidIdentity:
        normal = ""
    user = None
    if normal:
        user = session.scalar(
            for_tenant(select(User), User, tenant.id).where(
                User.email_index == _email_index(keystore, tenant.id, normal)
            )
        )
    ctx = TenantContext(session, keystore, tenant, Actor(ActorKind.ANONYMOUS))
    if user is None or user.disabled_at is not None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        audit.record(ctx, AuditEvent.USER_LOGIN_FAILED, details={"reason": "unknown_account"})
        raise Unauthenticated(LOGIN_REFUSED)
    ctx.actor = Actor(ActorKind.USER, str(user.id))
    if user.locked_until is not None and user.locked_until > now:
        # The same hashing work as the other refusals: a locked account must not answer faster.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        audit.record(ctx, AuditEvent.USER_LOGIN_FAILED, details={"reason": "locked"})
        raise Unauthenticated(LOGIN_REFUSED)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        if _count_failed_login(ctx.session, user) >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        audit.record(ctx, AuditEvent.USER_LOGIN_FAILED, details={"reason": "bad_password"})
        raise Unauthenticated(LOGIN_REFUSED) from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    # The count of failures is not reset here but where the sign-in completes: wrong codes
    # at the second step count too, and passing the password again must not restart them.
    user.locked_until = None
    return user


def set_password(ctx: TenantContext, user: User, password: str) -> None:
    check_password_strength(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    audit.record(ctx, AuditEvent.USER_PASSWORD_CHANGED, details={"user_id": str(user.id)})


def user_by_email(ctx: TenantContext, email: str) -> User:
    """The tenant's user signing in with `email`."""
    try:
        normal = normalise_email(email)
    except InvalidIdentity as exc:
        raise InvalidInput(f"email: {exc}") from None
    user = ctx.session.scalar(
        for_tenant(select(User), User, ctx.tenant_id).where(
            User.email_index == _email_index(ctx.keystore, ctx.tenant_id, normal)
        )
    )
    if user is None:
        raise NotFound("no user with this e-mail in this tenant")
    return user


def get_user(ctx: TenantContext, user_id: str) -> User:
    """The tenant's user by id; `NotFound` for another tenant's, as for a missing one."""
    return get_in_tenant(ctx.session, User, ctx.tenant_id, user_id, what="user")


def disable_user(ctx: TenantContext, user: User) -> int:
    """Stop a user signing in (someone who left): their sessions end at once; the account,
    and what the audit log says they did, stay. Returns how many sessions ended.

    The tenant's last active owner is never disabled: nobody would be left to manage it;
    nor is one's own account (it would sign its user out for good). Whoever could not grant
    the user's role cannot take it away either."""
    _may_manage(ctx, user)
    if _is_self(ctx, user):
        raise Forbidden("you cannot disable your own account")
    role = _role(user.role)
    _may_grant(ctx, role, doing=f"disable a user with the role {role.value}")
    if user.disabled_at is None:
        if user.role == Role.OWNER.value:
            _keep_an_owner(ctx, user)
        user.disabled_at = utcnow()
        audit.record(ctx, AuditEvent.USER_DISABLED, details={"user_id": str(user.id)})
    logins = ctx.session.scalars(
        for_tenant(select(LoginSession), LoginSession, ctx.tenant_id).where(
            LoginSession.user_id == user.id
        )
    ).all()
    for login in logins:
        ctx.session.delete(login)
    return len(logins)


def enable_user(ctx: TenantContext, user: User) -> None:
    """Let a disabled user sign in again (with the same password and second factor): it
    gives them their role's permissions back, so only whoever could grant the role may."""
    _may_manage(ctx, user)
    _may_grant(ctx, _role(user.role))
    if user.disabled_at is None:
        return
    user.disabled_at = None
    user.failed_logins = 0
    user.locked_until = None
    audit.record(ctx, AuditEvent.USER_ENABLED, details={"user_id": str(user.id)})


def change_role(ctx: TenantContext, user: User, role: str) -> User:
    """Give a user another role; their next page or call has the new role's permissions.

    Nobody changes their own role, only an owner makes an owner or changes an owner, only
    whoever could grant both the old role and the new one changes it, and the tenant's last
    active owner keeps the role."""
    wanted = _role(role)
    _may_manage(ctx, user)
    if _is_self(ctx, user):
        raise Forbidden("you cannot change your own role: ask another owner")
    _may_grant(ctx, wanted)
    # Nor take away a role one could not give (a narrow key demoting an admin).
    held = _role(user.role)
    _may_grant(ctx, held, doing=f"change the role of a user with the role {held.value}")
    if user.role == wanted.value:
        return user
    if user.role == Role.OWNER.value and user.disabled_at is None:
        _keep_an_owner(ctx, user)
    before = user.role
    user.role = wanted.value
    audit.record(
        ctx,
        AuditEvent.USER_ROLE_CHANGED,
        details={"user_id": str(user.id), "from": before, "to": wanted.value},
    )
    return user


def _keep_an_owner(ctx: TenantContext, user: User) -> None:
    """Refuse to take `user`, an active owner, out of the owners when no other is left."""
    # Two owners demoting or disabling each other at once must not both pass the count
    # (SQLite's writers take turns already).
    serialise_on(ctx.session, b"tenant-owners", ctx.tenant_id.bytes)
    others = ctx.session.scalar(
        for_tenant(select(func.count()).select_from(User), User, ctx.tenant_id).where(
            User.role == Role.OWNER.value,
            User.disabled_at.is_(None),
            User.id != user.id,
        )
    )
    if not others:
        raise Conflict("this is the tenant's last active owner: make another owner first")


def _is_self(ctx: TenantContext, user: User) -> bool:
    return ctx.actor.kind is ActorKind.USER and ctx.actor.id == str(user.id)


def _acts_as_owner(ctx: TenantContext) -> bool:
    """Whether the actor may do what only an owner may: the operator (who set the tenant up,
    from the CLI) or a signed-in, active owner. An API key never is: it holds no role, and
    whoever has a copy of one could otherwise make themselves an owner."""
    if ctx.actor.kind is ActorKind.OPERATOR:
        return True
    if ctx.actor.kind is not ActorKind.USER or ctx.actor.id is None:
        return False
    actor_id = parse_id(ctx.actor.id)
    if actor_id is None:
        return False
    # Read under the lock that demoting or disabling an owner takes (`_keep_an_owner`), from
    # the database and not the session's copy: an owner being demoted at this moment acts
    # as an owner only if the demotion comes after.
    serialise_on(ctx.session, b"tenant-owners", ctx.tenant_id.bytes)
    me = ctx.session.execute(
        for_tenant(select(User.role, User.disabled_at), User, ctx.tenant_id).where(
            User.id == actor_id
        )
    ).one_or_none()
    return me is not None and me.role == Role.OWNER.value and me.disabled_at is None


def _may_manage(ctx: TenantContext, user: User) -> None:
    ctx.require(Scope.USERS_MANAGE)
    if user.role == Role.OWNER.value and not _acts_as_owner(ctx):
        raise Forbidden("only an owner may change an owner's account")


def _may_grant(ctx: TenantContext, role: Role, *, doing: str = "") -> None:
    """Forbidden unless the actor may give `role` (`doing` names the act in the refusal)."""
    owner = role is Role.OWNER and _acts_as_owner(ctx)
    refusal = _grant_refusal(role, ctx.scopes, owner=owner, doing=doing)
    if refusal is not None:
        raise Forbidden(refusal)


def _grant_refusal(
    role: Role, scopes: frozenset[Scope], *, owner: bool, doing: str = ""
) -> str | None:
    """Why whoever holds `scopes` (and is an active owner, or not) may not give `role`;
    None if they may."""
    if role is Role.OWNER and not owner:
        return "only an owner may make an owner"
    # No escalation, as with API keys: a key holding only users:manage cannot bring in an
    # admin, who holds every permission — nor give one back those permissions.
    lacking = ROLE_SCOPES[role] - scopes
    if lacking:
        return (
            f"you cannot {doing or 'grant the role ' + role.value}: it has permissions you "
            "do not hold (" + ", ".join(sorted(scope.value for scope in lacking)) + ")"
        )
    return None


def scopes_for(user: User) -> frozenset[Scope]:
    return ROLE_SCOPES[Role(user.role)]


# ---------------------------------------------------------------------------------------------
# TOTP second factor (RFC 6238)


def _totp_aad(user: User) -> bytes:
    return b"user-totp|" + user.tenant_id.bytes + user.id.bytes


def begin_totp(ctx: TenantContext, user: User) -> str:
    """Store a new, not yet active, TOTP secret; returns it for the authenticator app."""
    secret = pyotp.random_base32()
    user.totp_sealed = seal(
        _staff_aead(ctx.keystore, ctx.tenant_id), secret.encode(), _totp_aad(user)
    )
    user.totp_enabled = False
    return secret


def totp_uri(secret: str, account: str, issuer: str) -> str:
    return str(pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer))


def pending_totp_secret(keystore: KeyStore, user: User) -> str | None:
    """The secret of an enrolment not yet confirmed."""
    return None if user.totp_enabled else _totp_secret(keystore, user)


def _totp_secret(keystore: KeyStore, user: User) -> str | None:
    if user.totp_sealed is None:
        return None
    return unseal(_staff_aead(keystore, user.tenant_id), user.totp_sealed, _totp_aad(user)).decode()


def check_totp(keystore: KeyStore, user: User, code: str) -> bool:
    """Accept a code of the current or the adjacent time step, each step only once."""
    secret = _totp_secret(keystore, user)
    code = code.strip().replace(" ", "")
    if secret is None or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = utcnow()
    step_now = int(now.timestamp()) // totp.interval
    for step in (step_now - 1, step_now, step_now + 1):
        if step <= user.totp_last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            user.totp_last_step = step
            return True
    return False


def confirm_totp(ctx: TenantContext, user: User, code: str) -> None:
    if not check_totp(ctx.keystore, user, code):
        raise InvalidInput("that code is not right; check the time on your device and try again")
    user.totp_enabled = True
    audit.record(ctx, AuditEvent.USER_TOTP_ENABLED, details={"user_id": str(user.id)})


def needs_second_factor(tenant: Tenant, user: User) -> bool:
    return user.totp_enabled or tenant.require_totp


# ---------------------------------------------------------------------------------------------
# Login sessions


@dataclass(frozen=True)
class ResolvedSession:
    login: LoginSession
    user: User
    tenant: Tenant


def start_session(ctx: TenantContext, user: User, hours: int) -> str:
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    login = LoginSession(
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        secret_digest=_digest(secret),
        needs_second_factor=needs_second_factor(ctx.tenant, user),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    ctx.session.add(login)
    ctx.session.flush()
    if not login.needs_second_factor:
        user.failed_logins = 0
        user.last_login_at = now
        audit.record(ctx, AuditEvent.USER_LOGIN, details={"user_id": str(user.id), "factors": 1})
    return f"{ctx.tenant_id.hex}.{login.id.hex}.{secret}"


def resolve_session(session: Session, token: str | None) -> ResolvedSession | None:
    if not token:
        return None
    parts = _dotted(token)
    if parts is None:
        return None
    tenant_id, login_id, secret = parts
    login = session.get(LoginSession, (tenant_id, login_id))
    if login is None or not hmac.compare_digest(login.secret_digest, _digest(secret)):
        return None
    if login.expires_at <= utcnow():
        return None
    user = session.get(User, (tenant_id, login.user_id))
    tenant = session.get(Tenant, tenant_id)
    if user is None or tenant is None or user.disabled_at is not None:
        return None
    return ResolvedSession(login, user, tenant)


def _count_failed_login(session: Session, user: User) -> int:
    """Add one to the user's failed sign-ins in the database; the new count.

    One UPDATE that reads and writes the count: wrong codes sent at once each count (adding
    to the count read with the session would let one overwrite the other on PostgreSQL), and
    the row stays locked until the transaction ends."""
    failed = session.execute(
        update(User)
        .where(User.tenant_id == user.tenant_id, User.id == user.id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    set_committed_value(user, "failed_logins", failed)
    return failed


def complete_second_factor(ctx: TenantContext, resolved: ResolvedSession, code: str) -> str:
    """Finish a login with a TOTP code; a user without one yet enrols with this same code.

    Returns the token of a fresh session (new id, new secret): the password-only token stops
    working, so a token seen or planted before the second factor never becomes a full session.
    Wrong codes count towards the same lockout as wrong passwords. Past the password the
    account is known to the user, so a locked account is told (`TooManyAttempts`) and the
    pending sign-in ends."""
    user = resolved.user
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        ctx.session.delete(resolved.login)
        audit.record(ctx, AuditEvent.USER_LOGIN_FAILED, details={"reason": "locked"})
        raise TooManyAttempts(SECOND_FACTOR_LOCKED)
    ok = check_totp(ctx.keystore, user, code)
    if not ok:
        failed = _count_failed_login(ctx.session, user)
        audit.record(ctx, AuditEvent.USER_LOGIN_FAILED, details={"reason": "bad_totp"})
        if failed >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            ctx.session.delete(resolved.login)
            raise TooManyAttempts(SECOND_FACTOR_LOCKED)
        raise Unauthenticated("that code is not right")
    if not user.totp_enabled:
        user.totp_enabled = True
        audit.record(ctx, AuditEvent.USER_TOTP_ENABLED, details={"user_id": str(user.id)})
    user.failed_logins = 0
    # Rotate: the pending session goes, a new one (same expiry) is the signed-in one.
    secret = secrets.token_urlsafe(32)
    login = LoginSession(
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        secret_digest=_digest(secret),
        needs_second_factor=False,
        created_at=now,
        expires_at=resolved.login.expires_at,
    )
    ctx.session.delete(resolved.login)
    ctx.session.add(login)
    ctx.session.flush()
    user.last_login_at = now
    audit.record(ctx, AuditEvent.USER_LOGIN, details={"user_id": str(user.id), "factors": 2})
    return f"{ctx.tenant_id.hex}.{login.id.hex}.{secret}"


def end_session(ctx: TenantContext, resolved: ResolvedSession) -> None:
    ctx.session.delete(resolved.login)
    audit.record(ctx, AuditEvent.USER_LOGOUT, details={"user_id": str(resolved.user.id)})


# ---------------------------------------------------------------------------------------------
# API keys


TOKEN_PREFIX = "plg"  # noqa: S105 - a label, not a secret


def create_api_key(
    ctx: TenantContext, *, name: str, scopes: frozenset[Scope]
) -> tuple[ApiKey, str]:
    """Returns the key and its token. The token is shown once; only its digest is stored.

    `scopes` must be a subset of `ctx.scopes` (the creating key's scopes, the user's role
    scopes; the operator holds all), else `Forbidden` naming the scopes lacking."""
    if not scopes:
        raise InvalidInput("an API key needs at least one scope")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("an API key needs a name of at most 100 characters")
    # No escalation: a key (or a user's role) can grant only scopes it holds itself.
    lacking = scopes - ctx.scopes
    if lacking:
        raise Forbidden(
            "you cannot grant scopes you do not hold: "
            + ", ".join(sorted(scope.value for scope in lacking))
        )
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    key = ApiKey(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        name=name.strip(),
        secret_digest=_digest(secret),
        scopes=sorted(s.value for s in scopes),
        created_at=utcnow(),
    )
    ctx.session.add(key)
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.API_KEY_CREATED,
        details={"api_key_id": str(key.id), "name": key.name, "scopes": key.scopes},
    )
    # The tenant is part of the token: the key alone says which tenant a call is for.
    return key, f"{TOKEN_PREFIX}_{ctx.tenant_id.hex}_{key.id.hex}_{secret}"


def resolve_api_key(session: Session, token: str) -> tuple[ApiKey, Tenant] | None:
    parts = token.split("_", 3)
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
        return None
    tenant_id, key_id = parse_id(parts[1]), parse_id(parts[2])
    if tenant_id is None or key_id is None:
        return None
    key = session.get(ApiKey, (tenant_id, key_id))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_digest, _digest(parts[3])):
        return None
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    return key, tenant


def revoke_api_key(ctx: TenantContext, key_id: str) -> ApiKey:
    key = get_in_tenant(ctx.session, ApiKey, ctx.tenant_id, key_id, what="API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(ctx, AuditEvent.API_KEY_REVOKED, details={"api_key_id": str(key.id)})
    return key


def list_api_keys(ctx: TenantContext) -> list[ApiKey]:
    return list(
        ctx.session.scalars(
            for_tenant(select(ApiKey), ApiKey, ctx.tenant_id).order_by(ApiKey.created_at)
        )
    )
