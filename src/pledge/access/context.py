"""The context every service call runs in: one transaction, one tenant, one actor.

Routes, pages and CLI commands build a `TenantContext` from the authenticated principal; the
tenant in it comes from the credential (API key, session) and never from the URL. Services
take the context and filter every query by `ctx.tenant_id` through `pledge.access.scoping`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from pledge.access.permissions import Scope
from pledge.core.db import get_row, transaction_memo
from pledge.core.errors import Forbidden, NotFound
from pledge.crypto.keystore import KeyMissing, KeyShredded, KeyStore
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


class TenantSettings(Protocol):
    """The tenant's row, to read: the `Tenant` the session holds, or the same columns read
    without the ORM (`TenantContext.settings`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def jurisdictions(self) -> list[str]: ...
    @property
    def region(self) -> str: ...
    @property
    def phone_region(self) -> str: ...
    @property
    def require_totp(self) -> bool: ...
    @property
    def retention_classes(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def honour_gpc(self) -> bool: ...
    @property
    def dnt_policy(self) -> str: ...
    @property
    def public_hosts(self) -> list[str]: ...
    @property
    def rights_promises(self) -> dict[str, Any]: ...
    @property
    def closing_days(self) -> list[str]: ...
    @property
    def privacy_contact(self) -> str: ...
    @property
    def child_age(self) -> int: ...
    @property
    def children_policy(self) -> str: ...
    @property
    def interaction_retention(self) -> list[dict[str, Any]]: ...


_TENANTS = cast(Table, Tenant.__table__)
_TENANT_COLUMNS = select(*_TENANTS.c).where(_TENANTS.c.id == bindparam("tenant_id"))
# The same by slug: what a CLI command or a job begins with (`Runtime.tenant_context`).
TENANT_COLUMNS_BY_SLUG = select(*_TENANTS.c).where(_TENANTS.c.slug == bindparam("slug"))


def _tenant_identity(tenant_id: uuid.UUID) -> tuple[type[Tenant], tuple[uuid.UUID], None]:
    return (Tenant, (tenant_id,), None)


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
        *,
        settings: TenantSettings | None = None,
    ) -> TenantContext:
        """A context on a tenant known (in this transaction) to exist, by its id; with its
        row's columns when the caller has read them in this transaction (`settings`)."""
        if settings is not None:
            transaction_memo(session)[("tenant-settings", tenant_id)] = settings
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
            tenant = get_row(self.session, Tenant, (self._tenant_id,))
            if tenant is None:
                raise NotFound("no such tenant")
            self._tenant = tenant
            # From here `settings` is this object; a copy read before must not come back if
            # the session lets go of it (another context's change, then dropped).
            transaction_memo(self.session).pop(("tenant-settings", self._tenant_id), None)
        return self._tenant

    @property
    def settings(self) -> TenantSettings:
        """The tenant's settings, to read. The `Tenant` when this session holds it (a change
        made in this transaction shows at once); else its row read once per transaction
        without the ORM, at a fifth of the cost of loading it — most transactions read a
        setting or two (a promise, the phone region, the name on a letter) and change none.
        A change goes through `tenant`, which this then returns."""
        session = self.session
        loaded = self._tenant or session.identity_map.get(_tenant_identity(self._tenant_id))
        if loaded is not None:
            return cast(TenantSettings, loaded)
        memo = transaction_memo(session)
        found: TenantSettings | None = memo.get(("tenant-settings", self._tenant_id))
        if found is None:
            row = session.connection().execute(_TENANT_COLUMNS, {"tenant_id": self._tenant_id})
            found = cast(TenantSettings | None, row.one_or_none())
            if found is None:
                raise NotFound("no such tenant")
            memo[("tenant-settings", self._tenant_id)] = found
        return found

    @property
    def tenant_id(self) -> uuid.UUID:
        return self._tenant_id

    # -- subjects' data keys, read once per transaction ----------------------------------
    #
    # A request's fulfilment opens the subject's record, its interactions, its consent
    # history and then seals the files and letters: the same key, each time a keystore
    # transaction. These go through the keystore once per data-store transaction (the memo
    # of `core.db.transaction_memo`, dropped when it ends) and `shred_subject` forgets what
    # it destroys. Services ask the context, not the keystore, for a subject's keys.

    def subject_keys(
        self, pairs: Iterable[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], bytes]:
        """The keys that exist for the given (subject, class) pairs; missing or shredded
        ones are absent."""
        memo = transaction_memo(self.session)
        tid = self._tenant_id
        out: dict[tuple[uuid.UUID, str], bytes] = {}
        wanted = []
        for pair in dict.fromkeys(pairs):
            key = memo.get(("data-key", tid, *pair))
            if key is None:
                wanted.append(pair)
            else:
                out[pair] = key
        if wanted:
            found = self.keystore.subject_keys(tid, wanted)
            for pair, key in found.items():
                memo[("data-key", tid, *pair)] = key
            out.update(found)
        return out

    def subject_key(self, subject_id: uuid.UUID, key_class: str) -> bytes:
        """One key; `KeyShredded` or `KeyMissing` when it is not there."""
        key = self.subject_keys([(subject_id, key_class)]).get((subject_id, key_class))
        if key is not None:
            return key
        if self.keystore.is_shredded(self._tenant_id, subject_id, key_class):
            raise KeyShredded(f"{subject_id}/{key_class}")
        raise KeyMissing(f"{subject_id}/{key_class}")

    def create_subject_keys(
        self, wanted: Iterable[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], bytes]:
        created = self.keystore.create_subject_keys(self._tenant_id, list(wanted))
        memo = transaction_memo(self.session)
        for pair, key in created.items():
            memo[("data-key", self._tenant_id, *pair)] = key
        return created

    def shred_subject(self, subject_id: uuid.UUID, keep: Iterable[str] = ()) -> list[str]:
        """Destroy the subject's keys but the classes in `keep` (`KeyStore.shred_subject`)."""
        memo = transaction_memo(self.session)
        for k in [k for k in memo if k[:3] == ("data-key", self._tenant_id, subject_id)]:
            del memo[k]
        return self.keystore.shred_subject(self._tenant_id, subject_id, keep=keep)

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this action needs the {scope.value} permission")

    def __repr__(self) -> str:
        return (
            f"TenantContext(tenant_id={self._tenant_id!s}, actor={self.actor!r}, "
            f"scopes={sorted(s.value for s in self.scopes)!r})"
        )
