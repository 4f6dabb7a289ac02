"""REST routes of preferences, unsubscribe links and the suppression list (under /api/v1).
Addresses travel in request bodies, never in URLs (access logs, proxies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from pledge.access.context import TenantContext
from pledge.access.permissions import Scope
from pledge.core.errors import InvalidInput
from pledge.preferences import links, suppression, tokens
from pledge.preferences import service as preferences
from pledge.preferences.schemas import (
    AddressIn,
    Changed,
    ConsentInForceOut,
    PreferenceLinkOut,
    PreferencesOut,
    SuppressionCheck,
    SuppressionCount,
    SuppressionIn,
    SuppressionOut,
    Target,
    TopicStateOut,
    UnsubscribeLinkOut,
)
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.web.deps import api_context
from pledge.web.problems import PROBLEMS

router = APIRouter(prefix="/api/v1", tags=["preferences"], responses=PROBLEMS)

Read = Annotated[TenantContext, Depends(api_context(Scope.PREFERENCES_READ))]
Write = Annotated[TenantContext, Depends(api_context(Scope.PREFERENCES_WRITE))]
SUBJECT = "/subjects/{subject_id}"


@router.get(SUBJECT + "/preferences", response_model=PreferencesOut)
def get_preferences(subject_id: str, ctx: Read) -> PreferencesOut:
    """Every topic on every channel it uses, subscribed or not, and the consents in force."""
    view = preferences.read_preferences(ctx, subject_id)
    return PreferencesOut(
        subject_id=str(view.subject_id),
        topics=[
            TopicStateOut(
                topic=t.topic,
                name=t.name,
                purpose=t.purpose,
                channel=t.channel,
                marketing=t.marketing,
                consent_based=t.consent_based,
                subscribed=t.subscribed,
            )
            for t in view.topics
        ],
        marketing_off=view.marketing_off,
        sale_opt_out=view.sale_opt_out,
        consents=[ConsentInForceOut(**vars(c)) for c in view.consents],
    )


@router.post(SUBJECT + "/preferences/opt-out", response_model=Changed)
def opt_out(subject_id: str, body: Target, ctx: Write) -> Changed:
    """Stop a topic (or with `*` every marketing topic) on a channel, at once."""
    return Changed(changed=preferences.opt_out(ctx, subject_id, body.channel, body.topic, "api"))


@router.post(SUBJECT + "/preferences/opt-in", response_model=Changed)
def opt_in(subject_id: str, body: Target, ctx: Write) -> Changed:
    """Lift an opt-out (a consent-based topic also needs the person's consent)."""
    return Changed(changed=preferences.opt_in(ctx, subject_id, body.channel, body.topic, "api"))


@router.post(
    SUBJECT + "/unsubscribe-links",
    status_code=status.HTTP_201_CREATED,
    response_model=UnsubscribeLinkOut,
)
def unsubscribe_link(subject_id: str, body: Target, ctx: Write) -> UnsubscribeLinkOut:
    """A one-click unsubscribe URL and its RFC 8058 headers, for mail an integrator sends."""
    url = tokens.issue_token(ctx, subject_id, body.channel, body.topic)
    return UnsubscribeLinkOut(url=url, headers=tokens.list_unsubscribe_headers(url))


@router.post(SUBJECT + "/preference-link", response_model=PreferenceLinkOut)
def preference_link(subject_id: str, ctx: Write) -> PreferenceLinkOut:
    """A signed link to the subject's preference center."""
    subject = subjects.get_subject_row(ctx, subject_id)
    return PreferenceLinkOut(url=links.preference_link(ctx, subject.id))


# ---------------------------------------------------------------------------------------------
# Suppression list


def _address(body: AddressIn) -> tuple[str, str]:
    given = [
        (k.value, v)
        for k, v in ((IdentityKind.EMAIL, body.email), (IdentityKind.PHONE, body.phone))
        if v
    ]
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone")
    return given[0]


@router.get("/suppressions", response_model=list[SuppressionOut])
def list_suppressions(
    ctx: Read, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[SuppressionOut]:
    """The newest entries. No address is kept: only a keyed hash, the channel and why."""
    return [SuppressionOut(**vars(e)) for e in suppression.list_suppressions(ctx, limit=limit)]


@router.post("/suppressions", status_code=status.HTTP_201_CREATED, response_model=SuppressionCount)
def add_suppression(body: SuppressionIn, ctx: Write) -> SuppressionCount:
    """Never send marketing to this address on its channels, whoever holds it later."""
    kind, value = _address(body)
    added = suppression.add_suppression(
        ctx, kind, value, channels=body.channels, reason=body.reason
    )
    return SuppressionCount(entries=added)


@router.post("/suppressions/remove", response_model=SuppressionCount)
def remove_suppression(body: AddressIn, ctx: Write) -> SuppressionCount:
    kind, value = _address(body)
    return SuppressionCount(
        entries=suppression.remove_suppression(ctx, kind, value, channels=body.channels)
    )


@router.post("/suppressions/check", response_model=SuppressionCheck)
def check_suppression(body: AddressIn, ctx: Read) -> SuppressionCheck:
    kind, value = _address(body)
    channels = suppression.suppressed_channels(ctx, kind, value)
    return SuppressionCheck(suppressed=bool(channels), channels=channels)
