"""REST routes of campaigns (under /api/v1): thin — parse, call the service, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.campaigns import service
from pledge.campaigns.schemas import CampaignIn, CampaignOut, SendOut
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"], responses=PROBLEMS)

Sender = Annotated[TenantContext, Depends(api_context(Scope.CAMPAIGNS_SEND))]


def campaign_out(item: service.CampaignDetail) -> CampaignOut:
    c = item.campaign
    return CampaignOut(
        id=str(c.id),
        name=c.name,
        purpose=item.purpose.slug,
        channel=c.channel,
        topic=item.topic.slug,
        subject_line=c.subject_line,
        body=c.body,
        status=c.status,
        created_at=c.created_at,
        sent_at=c.sent_at,
        sent_count=c.sent_count,
        denied_count=c.denied_count,
        audience_digest=c.audience_digest,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CampaignOut)
def create_campaign(body: CampaignIn, ctx: Sender) -> CampaignOut:
    campaign = service.create_campaign(ctx, service.CampaignInput(**body.model_dump()))
    return campaign_out(service.detail(ctx, campaign.id))


@router.get("", response_model=list[CampaignOut])
def list_campaigns(
    ctx: Sender, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[CampaignOut]:
    return [
        campaign_out(service.detail(ctx, c.id)) for c in service.list_campaigns(ctx, limit=limit)
    ]


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: str, ctx: Sender) -> CampaignOut:
    return campaign_out(service.detail(ctx, campaign_id))


@router.post("/{campaign_id}/send", response_model=SendOut)
def send_campaign(campaign_id: str, ctx: Sender) -> SendOut:
    """Send to everyone the gate allows now; the messages leave after the commit."""
    result = service.send_campaign(ctx, campaign_id)
    return SendOut(
        campaign_id=str(result.campaign_id),
        sent=result.sent,
        denied=result.denied,
        candidates=result.candidates,
        digest=result.digest,
    )
