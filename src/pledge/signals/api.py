"""`/.well-known/gpc.json` (public, by Host header or by tenant path) and the tenant's signal
settings (under /api/v1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.core.errors import NotFound
from pledge.signals import service, settings
from pledge.signals.schemas import GpcJson, SignalSettingsIn, SignalSettingsOut
from pledge.tenants.models import Tenant
from pledge.tenants.service import get_tenant_by_slug
from pledge.web.deps import DbSession, api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(tags=["signals"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.PURPOSES_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.PURPOSES_WRITE))]
# Short: a tenant that changes its stance should not be misrepresented for long.
GPC_CACHE = "public, max-age=300"


def _gpc(tenant: Tenant, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = GPC_CACHE
    return service.gpc_json(tenant)


@router.get("/.well-known/gpc.json", response_model=GpcJson, tags=["public"])
def gpc_json_by_host(request: Request, session: DbSession, response: Response) -> dict[str, Any]:
    """The GPC statement of the tenant whose public host this request was sent to (its
    `public_hosts`); 404 when no tenant serves this host."""
    tenant = settings.tenant_for_host(session, request.headers.get("host", ""))
    if tenant is None:
        raise NotFound("no site is configured for this host")
    return _gpc(tenant, response)


@router.get("/p/{tenant_slug}/.well-known/gpc.json", response_model=GpcJson, tags=["public"])
def gpc_json_by_path(tenant_slug: str, session: DbSession, response: Response) -> dict[str, Any]:
    """The GPC statement of a tenant's public pages under `/p/{tenant_slug}/`."""
    return _gpc(get_tenant_by_slug(session, tenant_slug), response)


def settings_out(tenant: Tenant) -> SignalSettingsOut:
    return SignalSettingsOut(
        honour_gpc=tenant.honour_gpc,
        dnt_policy=tenant.dnt_policy,
        public_hosts=list(tenant.public_hosts or []),
        signals_updated_at=tenant.signals_updated_at,
        gpc_json=GpcJson(**service.gpc_json(tenant)),
    )


@router.get("/api/v1/settings/signals", response_model=SignalSettingsOut)
def get_signal_settings(ctx: Read) -> SignalSettingsOut:
    return settings_out(ctx.tenant)


@router.put("/api/v1/settings/signals", response_model=SignalSettingsOut)
def put_signal_settings(body: SignalSettingsIn, ctx: Write) -> SignalSettingsOut:
    """Whether GPC is honoured, what DNT does, and the hosts `/.well-known/gpc.json` answers
    for. A field left out stays as it is. Audited."""
    tenant = settings.update_signal_settings(
        ctx,
        honour_gpc=body.honour_gpc,
        dnt_policy=body.dnt_policy.value if body.dnt_policy else None,
        public_hosts=body.public_hosts,
    )
    return settings_out(tenant)
