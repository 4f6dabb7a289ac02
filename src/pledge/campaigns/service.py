"""Campaigns: one message to everyone the gate allows for a purpose, on a channel, about a
topic — and to nobody else.

Sending asks the gate once for the whole audience (one set-based query, audited with a
digest), decrypts only what the message needs (e-mail and first name), and queues one sealed
message per recipient with its own RFC 8058 unsubscribe URL in the headers and in the body,
and a signed link to the preference center. An unsubscribe takes effect at once, so the next
campaign's audience no longer holds that person.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from string import Formatter

from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.campaigns.models import Campaign, CampaignStatus
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, InvalidInput
from pledge.core.ids import new_id
from pledge.gate import audience as gate_audience
from pledge.mail import service as mail
from pledge.preferences import links, tokens, topics
from pledge.preferences.models import Topic
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, Purpose
from pledge.subjects.models import Subject, SubjectStatus

# What a template may use; anything else is refused when the campaign is created, so a
# typo fails early and a template cannot reach into objects ("{first_name.__class__}").
BODY_FIELDS = frozenset({"first_name", "unsubscribe_url", "preferences_url"})
SUBJECT_FIELDS = frozenset({"first_name"})
# Only e-mail leaves Pledge today (the mail outbox); other channels are the tenant's.
SENDABLE_CHANNELS = frozenset({Channel.EMAIL.value})
NO_NAME = "there"  # "Hello {first_name}" for someone whose first name we do not hold


@dataclass(frozen=True)
class CampaignInput:
    name: str
    purpose: str
    channel: str
    topic: str
    subject_line: str
    body: str


def check_template(text: str, what: str, allowed: frozenset[str]) -> None:
    try:
        parts = list(Formatter().parse(text))
    except ValueError:
        raise InvalidInput(f"{what}: write a literal brace as {{{{ or }}}}") from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            known = ", ".join("{" + f + "}" for f in sorted(allowed))
            raise InvalidInput(f"{what}: unknown placeholder {{{name[:40]}}} (use {known})")


def create_campaign(ctx: TenantContext, data: CampaignInput) -> Campaign:
    purpose = purposes.get_purpose(ctx, data.purpose)
    topic = topics.get_topic(ctx, data.topic)
    if topic.purpose_id != purpose.id:
        raise InvalidInput(f"topic {topic.slug!r} belongs to another purpose")
    if purpose.archived_at is not None:
        raise InvalidInput(f"purpose {purpose.slug!r} is archived")
    if data.channel not in SENDABLE_CHANNELS:
        raise InvalidInput("campaigns are sent by e-mail (channel 'email')")
    if purpose.channels and data.channel not in purpose.channels:
        raise InvalidInput(f"purpose {purpose.slug!r} does not use the {data.channel} channel")
    subject_line = validation.text(data.subject_line, "subject_line", max_chars=200)
    if "\n" in subject_line or "\r" in subject_line:
        raise InvalidInput("subject_line must be one line")
    body = validation.text(data.body, "body", max_chars=100_000)
    check_template(subject_line, "subject_line", SUBJECT_FIELDS)
    check_template(body, "body", BODY_FIELDS)
    campaign = Campaign(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        name=validation.text(data.name, "name", max_chars=200),
        purpose_id=purpose.id,
        channel=data.channel,
        topic_id=topic.id,
        subject_line=subject_line,
        body=body,
        status=CampaignStatus.DRAFT.value,
        created_at=utcnow(),
        sent_count=0,
        denied_count=0,
    )
    ctx.session.add(campaign)
    ctx.session.flush()
    return campaign


def get_campaign(ctx: TenantContext, campaign_id: uuid.UUID | str) -> Campaign:
    return get_in_tenant(ctx.session, Campaign, ctx.tenant_id, campaign_id, what="campaign")


def list_campaigns(ctx: TenantContext, *, limit: int = 100) -> list[Campaign]:
    return list(
        ctx.session.scalars(
            for_tenant(select(Campaign), Campaign, ctx.tenant_id)
            .order_by(Campaign.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class CampaignDetail:
    campaign: Campaign
    purpose: Purpose
    topic: Topic


def detail(ctx: TenantContext, campaign_id: uuid.UUID | str) -> CampaignDetail:
    campaign = get_campaign(ctx, campaign_id)
    topic = get_in_tenant(ctx.session, Topic, ctx.tenant_id, campaign.topic_id, what="topic")
    return CampaignDetail(campaign, purposes.get_purpose_by_id(ctx, campaign.purpose_id), topic)


@dataclass(frozen=True)
class AudiencePreview:
    allowed: int
    candidates: int


def preview(ctx: TenantContext, item: CampaignDetail) -> AudiencePreview:
    """How many subjects the gate allows right now: two counts, no one named (so no audit
    entry; sending builds and audits the audience itself)."""
    conds = gate_audience.audience_conditions(
        ctx.tenant_id, item.purpose, item.campaign.channel, item.topic.slug, utcnow()
    )
    allowed = ctx.session.scalar(select(func.count()).select_from(Subject).where(*conds))
    candidates = ctx.session.scalar(
        for_tenant(select(func.count()).select_from(Subject), Subject, ctx.tenant_id).where(
            Subject.status != SubjectStatus.ERASED.value
        )
    )
    return AudiencePreview(int(allowed or 0), int(candidates or 0))


# ---------------------------------------------------------------------------------------------
# Sending


@dataclass(frozen=True)
class SendResult:
    campaign_id: uuid.UUID
    sent: int
    denied: int
    candidates: int
    digest: str


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _footer(ctx: TenantContext, topic: Topic) -> str:
    """Every campaign ends with the way out: a visible one-click link and the preferences."""
    return (
        "\n\n--\n"
        f"You receive this as a subscriber to {_literal(topic.name)} "
        f"from {_literal(ctx.settings.name)}.\n"
        "Unsubscribe with one click: {unsubscribe_url}\n"
        "Manage your preferences: {preferences_url}\n"
    )


def send_campaign(
    ctx: TenantContext, campaign_id: uuid.UUID | str, *, report: mail.DeliveryReport | None = None
) -> SendResult:
    """Send to the gate's audience now. The messages leave after the transaction commits
    (`report`, if given, is filled in as they do)."""
    item = detail(ctx, campaign_id)
    campaign, purpose, topic = item.campaign, item.purpose, item.topic
    # Locked and read again (PostgreSQL; SQLite's writers take turns): two sends at once — a
    # double click, a client's retry — the second waits, then finds it sent, not a draft.
    ctx.session.refresh(campaign, with_for_update=True)
    if campaign.status != CampaignStatus.DRAFT.value:
        raise Conflict("this campaign was already sent; create a new one for the next issue")
    audience = gate_audience.audience(ctx, purpose.slug, campaign.channel, topic=topic.slug)
    contacts = mail.contacts(ctx, audience.allowed)
    recipients = [sid for sid in audience.allowed if contacts[sid].email]
    urls = tokens.issue_tokens(ctx, recipients, campaign.channel, topic.slug, campaign.id)
    body = campaign.body + _footer(ctx, topic)
    letters: list[mail.Addressed] = []
    for sid in recipients:
        contact = contacts[sid]
        name = contact.greeting_name(NO_NAME)
        values = {
            "first_name": name,
            "unsubscribe_url": urls[sid],
            "preferences_url": links.preference_link(ctx, sid),
        }
        letters.append(
            mail.Addressed(
                mail.letter(
                    contact.email or "",
                    campaign.subject_line.format_map({"first_name": name}),
                    body.format_map(values),
                    tokens.list_unsubscribe_headers(urls[sid]),
                ),
                sid,
            )
        )
    mail.queue_many(
        ctx, letters, kind=mail.MessageKind.CAMPAIGN, campaign_id=campaign.id, report=report
    )
    denied = audience.candidates - len(recipients)
    campaign.status = CampaignStatus.SENT.value
    campaign.sent_at = utcnow()
    campaign.sent_count = len(recipients)
    campaign.denied_count = denied
    campaign.audience_digest = audience.digest
    audit.record(
        ctx,
        AuditEvent.CAMPAIGN_SENT,
        details={
            "campaign_id": str(campaign.id),
            "purpose": purpose.slug,
            "channel": campaign.channel,
            "topic": topic.slug,
            "candidates": audience.candidates,
            "sent": len(recipients),
            "denied": denied,
            "digest": audience.digest,
        },
    )
    return SendResult(campaign.id, len(recipients), denied, audience.candidates, audience.digest)
