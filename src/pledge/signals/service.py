"""Global Privacy Control and Do Not Track: parsed from requests, recorded, and applied.

GPC (`Sec-GPC: 1`) is a valid opt-out of sale and sharing for the browser and, when known,
the person (11 CCR §7025; Colorado's universal opt-out). It is never a deletion request and
never withdraws other consents. DNT is recorded; its effect is the tenant's stated policy.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.consent import service as consent
from pledge.consent.service import Signals
from pledge.core.clock import utcnow
from pledge.signals.models import BrowserSignal
from pledge.tenants.models import Tenant


def parse_gpc(values: Iterable[str]) -> bool:
    """Only the exact value `1` means yes; if several headers arrive, any `1` counts."""
    return any(v.strip() == "1" for v in values)


def parse_dnt(values: Iterable[str]) -> bool | None:
    seen = [v.strip() for v in values]
    if "1" in seen:
        return True
    if "0" in seen:
        return False
    return None


def from_headers(headers: Any, client_ip: str | None) -> Signals:
    """Signals of an HTTP request (a Starlette `Headers`)."""
    return Signals(
        gpc=parse_gpc(headers.getlist("sec-gpc")),
        dnt=parse_dnt(headers.getlist("dnt")),
        ip=client_ip,
        user_agent=headers.get("user-agent"),
    )


# What a GPC signal did to an identified person (the `effects` of a `signal.received` entry,
# and `signal_effects` in the API): opted them out of sale/sharing; found them opted out
# already (nothing changed); or found their explicit opt-in, which a signal never overrides
# (nothing changed: they are NOT opted out). Entries written before these values held
# "sale_opt_out_kept" for either of the last two; the chain keeps them as written.
GPC_OPTED_OUT = "sale_opt_out"
GPC_ALREADY_OPTED_OUT = "sale_opt_out_already"
GPC_OPT_IN_KEPT = "sale_opt_in_kept"
DNT_OPTED_OUT = "dnt_opt_out"  # DNT opted them out (a tenant whose DNT policy is opt-out)


def apply_to_subject(ctx: TenantContext, subject_id: uuid.UUID, signals: Signals) -> list[str]:
    """Honour the signals for an identified subject; returns the effects, audited."""
    effects: list[str] = []
    tenant = ctx.tenant
    if signals.gpc and tenant.honour_gpc:
        before = consent.active_subject(ctx, subject_id).sale_opt_out_at
        subject = privacy_state.set_sale_opt_out(ctx, subject_id, True, "gpc")
        if before is not None:
            effects.append(GPC_ALREADY_OPTED_OUT)
        elif subject.sale_opt_out_at is not None:
            effects.append(GPC_OPTED_OUT)
        else:
            effects.append(GPC_OPT_IN_KEPT)
    if signals.dnt and tenant.dnt_policy == "opt_out":
        # The same precedence as GPC: an explicit opt-in stands; already opted out, nothing
        # changes and nothing is reported.
        before = consent.active_subject(ctx, subject_id).sale_opt_out_at
        subject = privacy_state.set_sale_opt_out(ctx, subject_id, True, "dnt")
        if before is None and subject.sale_opt_out_at is not None:
            effects.append(DNT_OPTED_OUT)
    if signals.gpc or signals.dnt is not None:
        audit.record(
            ctx,
            AuditEvent.SIGNAL_RECEIVED,
            subject_id=subject_id,
            details={"gpc": signals.gpc, "dnt": signals.dnt, "effects": effects},
        )
    return effects


def _browser_index(ctx: TenantContext, browser_id: str) -> bytes:
    key = ctx.keystore.derived_key(ctx.tenant_id, "browser-id")
    return hmac.new(key, browser_id.encode(), hashlib.sha256).digest()


def record_browser(ctx: TenantContext, browser_id: str, signals: Signals) -> BrowserSignal:
    """Remember the signals of a browser known only by its consent-id cookie."""
    index = _browser_index(ctx, browser_id)
    now = utcnow()
    row = ctx.session.get(BrowserSignal, (ctx.tenant_id, index))
    if row is None:
        row = BrowserSignal(tenant_id=ctx.tenant_id, browser_index=index, first_seen=now)
        ctx.session.add(row)
    row.gpc = signals.gpc
    row.dnt = signals.dnt
    row.last_seen = now
    ctx.session.flush()
    return row


def browser_gpc(ctx: TenantContext, browser_id: str) -> bool:
    row = ctx.session.get(BrowserSignal, (ctx.tenant_id, _browser_index(ctx, browser_id)))
    return bool(row and row.gpc)


def gpc_json(tenant: Tenant) -> dict[str, Any]:
    """`/.well-known/gpc.json` (GPC spec §3.4): whether the site honours GPC, and since when."""
    updated: date = (tenant.signals_updated_at or tenant.created_at).date()
    return {"gpc": bool(tenant.honour_gpc), "lastUpdate": updated.isoformat()}
