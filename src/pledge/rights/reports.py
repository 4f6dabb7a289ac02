"""Service levels of the rights queue: what is open, what is due, what is late."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.core.clock import utcnow
from pledge.rights import service as rights
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
    # Open requests by their cached due date, but a paused one by its live date: while a
    # pause stops the clock its due date moves every day (the worker's refresh may be behind).
    base = for_tenant(
        select(func.count()).select_from(RightsRequest), RightsRequest, ctx.tenant_id
    ).where(
        RightsRequest.state.in_([s.value for s in OPEN_STATES]),
        RightsRequest.state != RequestState.PAUSED.value,
    )
    week = today + timedelta(days=7)
    overdue = int(ctx.session.scalar(base.where(RightsRequest.due_on < today)) or 0)
    due_week = int(
        ctx.session.scalar(base.where(RightsRequest.due_on >= today, RightsRequest.due_on <= week))
        or 0
    )
    for request in ctx.session.scalars(
        for_tenant(select(RightsRequest), RightsRequest, ctx.tenant_id).where(
            RightsRequest.state == RequestState.PAUSED.value
        )
    ).all():
        due = rights.deadlines(ctx, request).due
        overdue += due < today
        due_week += today <= due <= week
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
