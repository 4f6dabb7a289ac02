"""A tenant's signal settings — whether GPC is honoured, what DNT does, the host names its
public pages are served under — and finding a tenant by one of those host names (for
`/.well-known/gpc.json`, which is fetched at the root of a site)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput
from pledge.tenants.models import Tenant

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
MAX_HOSTS = 20


class DntPolicy(StrEnum):
    RECORD = "record"  # no law compels a response; record it (seed 001 §8 says so)
    OPT_OUT = "opt_out"  # treat DNT: 1 like GPC, as an opt-out of sale/sharing


def normalise_host(value: str) -> str | None:
    """A Host header or a configured host in its comparable form (lower case, no port, no
    trailing dot); None when it is not a DNS host name."""
    host = value.strip().lower()
    # A URL, credentials or an IPv6 literal never name a tenant's site.
    if not host or any(c in host for c in "/@[]?#\\ "):
        return None
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not port.isdigit() or ":" in host:
            return None
    host = host.rstrip(".")
    return host if _HOST.match(host) else None


def tenant_for_host(session: Session, host: str) -> Tenant | None:
    """The tenant that lists `host` among its public hosts. The JSON list is pre-filtered in
    SQL (its text contains the quoted name: host names hold no LIKE wildcards) and checked
    exactly here, which works the same on SQLite and PostgreSQL."""
    name = normalise_host(host)
    if name is None:
        return None
    candidates = session.scalars(
        select(Tenant).where(cast(Tenant.public_hosts, String).like(f'%"{name}"%'))
    )
    return next((t for t in candidates if name in (t.public_hosts or [])), None)


def _hosts(ctx: TenantContext, values: Sequence[str]) -> list[str]:
    if len(values) > MAX_HOSTS:
        raise InvalidInput(f"at most {MAX_HOSTS} public hosts")
    out: list[str] = []
    for n, value in enumerate(values, start=1):
        name = normalise_host(value)
        if name is None:
            raise InvalidInput(f"public host #{n} is not a host name such as privacy.example.com")
        if name not in out:
            out.append(name)
    for name in out:
        owner = tenant_for_host(ctx.session, name)
        if owner is not None and owner.id != ctx.tenant_id:
            # Else another workspace could publish a gpc.json for this tenant's site. Which
            # workspace holds it is not said.
            raise Conflict(f"host {name!r} is already used by another workspace")
    return out


def update_signal_settings(
    ctx: TenantContext,
    *,
    honour_gpc: bool | None = None,
    dnt_policy: str | None = None,
    public_hosts: Sequence[str] | None = None,
) -> Tenant:
    """Change what is given; `signals_updated_at` (gpc.json's lastUpdate) moves when the
    policy itself — GPC honoured, DNT's effect — changes. One audit entry when anything did."""
    tenant = ctx.tenant
    changed: list[str] = []
    if dnt_policy is not None:
        try:
            dnt_policy = DntPolicy(dnt_policy).value
        except ValueError:
            raise InvalidInput("dnt_policy must be one of: record, opt_out") from None
    hosts = _hosts(ctx, public_hosts) if public_hosts is not None else None
    if honour_gpc is not None and honour_gpc != tenant.honour_gpc:
        tenant.honour_gpc = honour_gpc
        changed.append("honour_gpc")
    if dnt_policy is not None and dnt_policy != tenant.dnt_policy:
        tenant.dnt_policy = dnt_policy
        changed.append("dnt_policy")
    if changed:
        tenant.signals_updated_at = utcnow()
    if hosts is not None and hosts != list(tenant.public_hosts or []):
        tenant.public_hosts = hosts
        changed.append("public_hosts")
    if changed:
        ctx.session.flush()
        audit.record(
            ctx,
            AuditEvent.SIGNAL_SETTINGS_CHANGED,
            details={
                "changed": changed,
                "honour_gpc": tenant.honour_gpc,
                "dnt_policy": tenant.dnt_policy,
                "public_hosts": list(tenant.public_hosts or []),
            },
        )
    return tenant
