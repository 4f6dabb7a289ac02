"""REST routes for webhook endpoints (scope `webhooks:manage`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.rights.schemas import WebhookIn, WebhookOut
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS
from pledge.webhooks import service
from pledge.webhooks.models import WebhookEndpoint

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=PROBLEMS)

Manage = Annotated[TenantContext, Depends(api_context(Scope.WEBHOOKS_MANAGE))]


@router.get("", response_model=list[WebhookOut])
def list_endpoints(ctx: Manage) -> list[WebhookOut]:
    return [
        WebhookOut(id=str(e.id), url=e.url, events=e.events, active=e.active)
        for e in service.list_endpoints(ctx)
    ]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookOut)
def add_endpoint(body: WebhookIn, ctx: Manage) -> WebhookOut:
    """Subscribe a URL to events (`request.state_changed`, `subject.erasure_requested`,
    `subject.rectified`, or `*`). The signing secret is in the answer, once."""
    endpoint, secret = service.add_endpoint(ctx, body.url, body.events)
    return _out(endpoint, secret)


@router.post("/{endpoint_id}/deactivate", response_model=WebhookOut)
def deactivate_endpoint(endpoint_id: str, ctx: Manage) -> WebhookOut:
    """Switch an endpoint off: no event goes to it any more, and the deliveries waiting for
    it (a first post or a retry) fail for good now, with `last_error` "endpoint
    deactivated". Switching it on again does not resend them."""
    return _out(service.deactivate_endpoint(ctx, endpoint_id))


@router.post("/{endpoint_id}/activate", response_model=WebhookOut)
def activate_endpoint(endpoint_id: str, ctx: Manage) -> WebhookOut:
    """Switch an endpoint on again: the events from now on are sent to it."""
    return _out(service.activate_endpoint(ctx, endpoint_id))


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookOut)
def rotate_secret(endpoint_id: str, ctx: Manage) -> WebhookOut:
    """Replace the endpoint's signing secret, e.g. after a leak. The new secret is in the
    answer, once; every post from now on — retries of earlier events included — is signed
    with it, and the old one no longer verifies."""
    endpoint, secret = service.rotate_secret(ctx, endpoint_id)
    return _out(endpoint, secret)


def _out(endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=str(endpoint.id),
        url=endpoint.url,
        events=endpoint.events,
        active=endpoint.active,
        secret=secret,
    )
