"""Dependencies of every route: the runtime, the request's transaction, and the authenticated
tenant context — from an API key for `/api/v1`, from the session cookie for pages.

One request is one transaction, committed here at the edge after the route returns and
before the response leaves (FastAPI `scope="function"`), so a failed commit is an error
response, never a false success. The e-mails and webhooks it sets off leave after the
response (`web.after_answer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from pledge.access import service as access
from pledge.access.context import Actor, ActorKind, TenantContext
from pledge.access.models import LoginSession, User
from pledge.access.permissions import Scope
from pledge.core.clock import utcnow
from pledge.core.db import hand_over_network_actions
from pledge.core.errors import Forbidden, PledgeError, Unauthenticated
from pledge.runtime import Runtime
from pledge.web import after_answer
from pledge.web.security import csrf_protect

SESSION_COOKIE = "pledge_session"


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def open_session(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Iterator[Session]:
    session = runtime.sessions()
    later = after_answer.later_for(request)
    if later is not None:  # e-mails and webhooks leave once the response has
        hand_over_network_actions(session, later)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(open_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# ---------------------------------------------------------------------------------------------
# API


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API key as `Authorization: Bearer <key>`")
    return token.strip()


def api_context(scope: Scope) -> Callable[..., TenantContext]:
    """A dependency giving the API key's tenant context, if the key holds `scope`."""

    def dependency(request: Request, session: DbSession, runtime: RuntimeDep) -> TenantContext:
        resolved = access.resolve_api_key(session, _bearer(request))
        if resolved is None:
            raise Unauthenticated("unknown or revoked API key")
        key, tenant = resolved
        scopes = frozenset(Scope(s) for s in key.scopes if s in Scope._value2member_map_)
        if scope not in scopes:
            raise Forbidden(f"this API key lacks the {scope.value} scope")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=5):
            key.last_used_at = now
        return TenantContext(
            session, runtime.keystore, tenant, Actor(ActorKind.API_KEY, str(key.id)), scopes
        )

    dependency.__name__ = f"api_context_{scope.name.lower()}"
    return dependency


# ---------------------------------------------------------------------------------------------
# Pages


class LoginRequired(PledgeError):
    status = 303
    code = "login_required"
    title = "Please sign in"


class SecondFactorRequired(LoginRequired):
    code = "second_factor_required"


@dataclass
class PageContext:
    ctx: TenantContext
    user: User
    login: LoginSession
    # Plain copies for the page layout: an error page renders after the transaction rolled
    # back, when the ORM objects above are expired.
    tenant_name: str = ""

    def __post_init__(self) -> None:
        self.tenant_name = self.ctx.settings.name

    def can(self, scope: Scope) -> bool:
        return scope in self.ctx.scopes


def page_context(scope: Scope | None = None) -> Callable[..., PageContext]:
    """A dependency giving the signed-in user's context; redirects to the login otherwise."""

    def dependency(
        request: Request,
        session: DbSession,
        runtime: RuntimeDep,
        _csrf: Annotated[None, Depends(csrf_protect)],
    ) -> PageContext:
        resolved = access.resolve_session(session, request.cookies.get(SESSION_COOKIE))
        if resolved is None:
            raise LoginRequired("sign in to continue")
        if resolved.login.needs_second_factor:
            raise SecondFactorRequired("enter your authenticator code")
        scopes = access.scopes_for(resolved.user)
        ctx = TenantContext(
            session,
            runtime.keystore,
            resolved.tenant,
            Actor(ActorKind.USER, str(resolved.user.id)),
            scopes,
        )
        page = PageContext(ctx, resolved.user, resolved.login)
        request.state.page = page
        if scope is not None and scope not in scopes:
            raise Forbidden(f"your role does not include {scope.value}")
        return page

    dependency.__name__ = f"page_context_{scope.name.lower() if scope else 'any'}"
    return dependency
