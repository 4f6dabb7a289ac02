"""The context every service call runs in: one transaction, one tenant, one actor.

Routes, pages and CLI commands build a `TenantContext` from the authenticated principal; the
tenant in it comes from the credential (API key, session) and never from the URL. Services
take the context and filter every query by `ctx.tenant_id` through `pledge.access.scoping`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from pledge.access.permissions import Scope
from pledge.core.errors import Forbidden, NotFound
from pledge.crypto.keystore import KeyStore
from pledge.tenants.models import Tenant


class ActorKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    OPERATOR = "operator"  # the platform operator, through the CLI
    SYSTEM = "system"  # scheduled jobs
    ANONYMOUS = "anonymous"  # e.g. a failed login for an unknown account


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None = None

    def label(self) -> str:
        return f"{self.kind.value}:{self.id}" if self.id else self.kind.value


OPERATOR = Actor(ActorKind.OPERATOR, "cli")


class TenantContext:
    """One transaction (`session`) in one tenant, as one actor with some scopes.

    Built with the tenant row, or with `TenantContext.lazy` with its id only: the row is then
    loaded (in the same session) the first time `tenant` is read — most service calls need
    only `tenant_id`, and loading the row is a good part of a short transaction."""

    __slots__ = ("_tenant", "_tenant_id", "actor", "keystore", "scopes", "session")

    def __init__(
        self,
        session: Session,
        keystore: KeyStore,
        tenant: Tenant,
        actor: Actor,
        scopes: frozenset[Scope] = frozenset(),
    ) -> None:
        self.session = session
        self.keystore = keystore
        self._tenant: Tenant | None = tenant
        self._tenant_id: uuid.UUID = tenant.id
        self.actor = actor
        self.scopes = scopes

    @classmethod
    def lazy(
        cls,
        session: Session,
        keystore: KeyStore,
        tenant_id: uuid.UUID,
        actor: Actor,
        scopes: frozenset[Scope] = frozenset(),
    ) -> TenantContext:
        """A context on a tenant known (in this transaction) to exist, by its id."""
        ctx = cls.__new__(cls)
        ctx.session = session
        ctx.keystore = keystore
        ctx._tenant = None
        ctx._tenant_id = tenant_id
        ctx.actor = actor
        ctx.scopes = scopes
        return ctx

    @property
    def tenant(self) -> Tenant:
        if self._tenant is None:
            tenant = self.session.get(Tenant, self._tenant_id)
            if tenant is None:
                raise NotFound("no such tenant")
            self._tenant = tenant
        return self._tenant

    @property
    def tenant_id(self) -> uuid.UUID:
        return self._tenant_id

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this action needs the {scope.value} permission")

    def __repr__(self) -> str:
        return (
            f"TenantContext(tenant_id={self._tenant_id!s}, actor={self.actor!r}, "
            f"scopes={sorted(s.value for s in self.scopes)!r})"
        )
