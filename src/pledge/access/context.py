"""The context every service call runs in: one transaction, one tenant, one actor.

Routes, pages and CLI commands build a `TenantContext` from the authenticated principal; the
tenant in it comes from the credential (API key, session) and never from the URL. Services
take the context and filter every query by `ctx.tenant_id` through `pledge.access.scoping`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.orm import Session

from pledge.access.permissions import Scope
from pledge.core.errors import Forbidden
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


@dataclass
class TenantContext:
    session: Session
    keystore: KeyStore
    tenant: Tenant
    actor: Actor
    scopes: frozenset[Scope] = field(default_factory=frozenset)

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.tenant.id

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this action needs the {scope.value} permission")
