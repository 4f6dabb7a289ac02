"""Topics: what a message is about. Each belongs to a purpose, which says whether it is
marketing (opt-out-able as a whole) or a service message."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.core import validation
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict, NotFound
from pledge.core.ids import new_id, parse_id
from pledge.preferences.models import ALL_MARKETING, Topic
from pledge.purposes import service as purposes
from pledge.purposes.models import Purpose


def create_topic(
    ctx: TenantContext, *, slug: str, name: str, purpose: str, description: str = ""
) -> Topic:
    validation.slug(slug, "slug")
    if slug == ALL_MARKETING or find_topic(ctx, slug) is not None:
        raise Conflict(f"topic {slug!r} already exists")
    topic = Topic(
        tenant_id=ctx.tenant_id,
        id=new_id(),
        slug=slug,
        name=validation.text(name, "name", max_chars=200),
        description=validation.text(description, "description", max_chars=2000, required=False),
        purpose_id=purposes.get_purpose(ctx, purpose).id,
        created_at=utcnow(),
    )
    ctx.session.add(topic)
    ctx.session.flush()
    return topic


def find_topic(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Topic | None:
    stmt = for_tenant(select(Topic), Topic, ctx.tenant_id)
    as_id = slug_or_id if isinstance(slug_or_id, uuid.UUID) else parse_id(slug_or_id)
    stmt = stmt.where(Topic.id == as_id) if as_id else stmt.where(Topic.slug == slug_or_id)
    return ctx.session.scalar(stmt)


def get_topic(ctx: TenantContext, slug_or_id: str | uuid.UUID) -> Topic:
    topic = find_topic(ctx, slug_or_id)
    if topic is None:
        raise NotFound("no such topic")
    return topic


def list_topics(ctx: TenantContext) -> list[tuple[Topic, Purpose]]:
    rows = ctx.session.execute(
        for_tenant(select(Topic, Purpose), Topic, ctx.tenant_id)
        .join(Purpose, (Purpose.tenant_id == Topic.tenant_id) & (Purpose.id == Topic.purpose_id))
        .order_by(Topic.slug)
    ).all()
    return [(t, p) for t, p in rows]
