"""What a request's transaction remembers (its pauses, the subject's data key) lasts exactly
that transaction: through every flush, and no further than a commit, a rollback or a
savepoint rolled back — else a due date could be computed from pauses that no longer exist."""

from __future__ import annotations

from sqlalchemy import select

from pledge.rights import service as rights
from pledge.rights import transitions
from pledge.rights.models import RequestState
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery


def test_memo_survives_flushes_and_ends_with_the_transaction(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester("m@example.com"), "EU"))
        ctx.session.flush()
        assert ("pauses", request.id) in rights.tx_memo(ctx)
        request_id = request.id
    with runtime.tenant_context(tenant) as ctx:
        assert ("pauses", request_id) not in rights.tx_memo(ctx)


def test_a_pause_rolled_back_with_its_savepoint_is_not_remembered(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester("p@example.com"), "EU"))
        transitions.transition(ctx, request, RequestState.VERIFIED, "verified")
        transitions.transition(ctx, request, RequestState.IN_PROGRESS, "started")
        savepoint = ctx.session.begin_nested()
        transitions.pause(ctx, request, "waiting on the requester")
        assert len(rights.pauses_of(ctx, request)) == 1
        savepoint.rollback()
        ctx.session.refresh(request)
        assert request.state == "in_progress"
        assert rights.pauses_of(ctx, request) == []


def test_an_endpoint_added_midway_gets_the_next_event(runtime: Runtime, tenant: str) -> None:
    """The endpoints are remembered for the transaction, and adding one refreshes them."""
    with runtime.tenant_context(tenant) as ctx:
        request = rights.submit(ctx, RequestInput("access", Requester("w@example.com"), "EU"))
        endpoint, _secret = webhooks.add_endpoint(ctx, "https://hooks.example.com/a", ["*"])
        transitions.transition(ctx, request, RequestState.VERIFIED, "verified")
        ctx.session.flush()
        events = ctx.session.scalars(
            select(WebhookDelivery.event).where(
                WebhookDelivery.tenant_id == ctx.tenant_id,
                WebhookDelivery.target_id == endpoint.id,
            )
        ).all()
        assert events == ["request.state_changed"]
        ctx.session.rollback()  # nothing is sent: the deliveries go after a commit
