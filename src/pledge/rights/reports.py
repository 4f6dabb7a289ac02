"""Service levels of the rights queue: what is open, what is due, what is late."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.core.clock import utcnow
from pledge.rights.models import OPEN_STATES, RequestState, RightsRequest


@dataclass(frozen=True)
class Sla:
    open_by_state: dict[str, int]
    due_this_week: int
    overdue: int
    median_days_to_close: float | None
    closed_last_90_days: int


def sla(ctx: TenantContext) -> Sla:
    today = utcnow().date()
    rows = ctx.session.execute(
        for_tenant(select(RightsRequest.state, func.count()), RightsRequest, ctx.tenant_id)
        .where(RightsRequest.state.in_([s.value for s in OPEN_STATES]))
        .group_by(RightsRequest.state)
    ).all()
    open_by_state = {state: int(n) for state, n in rows}
    base = for_tenant(
        select(func.count()).select_from(RightsRequest), RightsRequest, ctx.tenant_id
    ).where(RightsRequest.state.in_([s.value for s in OPEN_STATES]))
    overdue = int(ctx.session.scalar(base.where(RightsRequest.due_on < today)) or 0)
    due_week = int(
        ctx.session.scalar(
            base.where(
                RightsRequest.due_on >= today, RightsRequest.due_on <= today + timedelta(days=7)
            )
        )
        or 0
    )
    since = utcnow() - timedelta(days=90)
    closed = ctx.session.execute(
        for_tenant(
            select(RightsRequest.received_at, RightsRequest.closed_at), RightsRequest, ctx.tenant_id
        ).where(
            RightsRequest.closed_at.is_not(None),
            RightsRequest.closed_at >= since,
            RightsRequest.state != RequestState.WITHDRAWN.value,
        )
    ).all()
    days = [(c - r).total_seconds() / 86400 for r, c in closed if c is not None]
    return Sla(
        open_by_state,
        due_week,
        overdue,
        round(statistics.median(days), 1) if days else None,
        len(days),
    )
