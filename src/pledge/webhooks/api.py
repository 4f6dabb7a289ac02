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
    return WebhookOut(
        id=str(endpoint.id), url=endpoint.url, events=endpoint.events, active=True, secret=secret
    )
