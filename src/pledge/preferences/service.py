"""A subject's preferences: opt-outs per channel and topic (or every marketing topic)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import service as consent
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.preferences import topics
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut
from pledge.purposes.models import Channel


def _check(ctx: TenantContext, channel: str, topic: str) -> None:
    if channel not in Channel._value2member_map_:
        raise InvalidInput(f"unknown channel {channel[:20]!r}")
    if topic != ALL_MARKETING:
        topics.get_topic(ctx, topic)


def opt_out(
    ctx: TenantContext, subject_id: uuid.UUID | str, channel: str, topic: str, source: str
) -> bool:
    """Stop `topic` (or, with `*`, every marketing topic) on `channel`. Effective at once:
    the next gate check denies. Returns False when it was already so."""
    subject = consent.active_subject(ctx, subject_id)
    _check(ctx, channel, topic)
    if ctx.session.get(ChannelOptOut, (ctx.tenant_id, subject.id, channel, topic)) is not None:
        return False
    ctx.session.add(
        ChannelOptOut(
            tenant_id=ctx.tenant_id,
            subject_id=subject.id,
            channel=channel,
            topic=topic,
            source=source[:24],
            created_at=utcnow(),
        )
    )
    ctx.session.flush()
    audit.record(
        ctx,
        AuditEvent.PREFERENCE_CHANGED,
        subject_id=subject.id,
        details={"channel": channel, "topic": topic, "change": "opted_out", "source": source[:24]},
    )
    return True


def opt_in(
    ctx: TenantContext, subject_id: uuid.UUID | str, channel: str, topic: str, source: str
) -> bool:
    """Lift an opt-out. (For a consent-based topic the person must also give consent.)"""
    subject = consent.active_subject(ctx, subject_id)
    _check(ctx, channel, topic)
    deleted = ctx.session.execute(
        delete(ChannelOptOut).where(
            ChannelOptOut.tenant_id == ctx.tenant_id,
            ChannelOptOut.subject_id == subject.id,
            ChannelOptOut.channel == channel,
            ChannelOptOut.topic == topic,
        )
    ).rowcount  # type: ignore[attr-defined]
    if deleted:
        audit.record(
            ctx,
            AuditEvent.PREFERENCE_CHANGED,
            subject_id=subject.id,
            details={
                "channel": channel,
                "topic": topic,
                "change": "opted_in",
                "source": source[:24],
            },
        )
    return bool(deleted)


@dataclass(frozen=True)
class OptOut:
    channel: str
    topic: str
    source: str


def opt_outs(ctx: TenantContext, subject_id: uuid.UUID) -> list[OptOut]:
    rows = ctx.session.scalars(
        for_tenant(select(ChannelOptOut), ChannelOptOut, ctx.tenant_id)
        .where(ChannelOptOut.subject_id == subject_id)
        .order_by(ChannelOptOut.channel, ChannelOptOut.topic)
    )
    return [OptOut(r.channel, r.topic, r.source) for r in rows]
