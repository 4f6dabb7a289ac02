"""Console pages of campaigns: the list, a form to create one, and a page to send it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from pledge.access.permissions import Scope
from pledge.campaigns import service
from pledge.core.errors import InvalidInput, NotFound
from pledge.mail import reading as mail_reading
from pledge.preferences import topics
from pledge.purposes import service as purposes
from pledge.web.deps import PageContext, page_context
from pledge.web.templating import render

router = APIRouter(include_in_schema=False)

Sender = Annotated[PageContext, Depends(page_context(Scope.CAMPAIGNS_SEND))]


@router.get("/campaigns")
def campaigns_list(request: Request, page: Sender) -> Response:
    items = [service.detail(page.ctx, c.id) for c in service.list_campaigns(page.ctx)]
    return render(request, "campaigns/list.html", {"items": items})


def _form(
    request: Request, page: PageContext, values: dict[str, str], error: str | None
) -> Response:
    return render(
        request,
        "campaigns/new.html",
        {"topics": topics.list_topics(page.ctx), "values": values, "error": error},
        status_code=422 if error else 200,
    )


@router.get("/campaigns/new")
def campaign_new(request: Request, page: Sender) -> Response:
    return _form(request, page, {}, None)


@router.post("/campaigns")
def campaign_create(
    request: Request,
    page: Sender,
    name: Annotated[str, Form(max_length=200)],
    topic: Annotated[str, Form(max_length=60)],
    subject_line: Annotated[str, Form(max_length=200)],
    body: Annotated[str, Form(max_length=100_000)],
    channel: Annotated[str, Form(max_length=16)] = "email",
) -> Response:
    values = {"name": name, "topic": topic, "subject_line": subject_line, "body": body}
    try:
        found = topics.get_topic(page.ctx, topic)
        purpose = purposes.get_purpose_by_id(page.ctx, found.purpose_id)
        campaign = service.create_campaign(
            page.ctx,
            service.CampaignInput(name, purpose.slug, channel, found.slug, subject_line, body),
        )
    except (InvalidInput, NotFound) as exc:
        return _form(request, page, values, exc.detail)
    return RedirectResponse(f"/campaigns/{campaign.id}", status_code=303)


@router.get("/campaigns/{campaign_id}")
def campaign_detail(request: Request, campaign_id: str, page: Sender) -> Response:
    item = service.detail(page.ctx, campaign_id)
    sent = item.campaign.status == "sent"
    return render(
        request,
        "campaigns/detail.html",
        {
            "item": item,
            "preview": None if sent else service.preview(page.ctx, item),
            "messages": mail_reading.list_messages(page.ctx, campaign_id=item.campaign.id, limit=20)
            if sent
            else [],
        },
    )


@router.post("/campaigns/{campaign_id}/send")
def campaign_send(request: Request, campaign_id: str, page: Sender) -> Response:
    result = service.send_campaign(page.ctx, campaign_id)
    return RedirectResponse(f"/campaigns/{result.campaign_id}", status_code=303)
