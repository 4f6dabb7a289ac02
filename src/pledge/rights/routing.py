"""Processor routing (seed 001 §5.1 and §15, seed 002 "Access").

A request about a client's customer that reaches the operator is passed on to the client's
tenant — the controller — and the requester is told who that is. The operator looks the
person up in every tenant through that tenant's own blind index: no tenant's data is read,
only whether it holds the address.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from pledge.access.context import Actor, ActorKind
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import utcnow
from pledge.core.db import transaction
from pledge.mail import service as mail
from pledge.rights import workflow
from pledge.rights.models import RequestChannel
from pledge.rights.service import RequestInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects.identity import IdentityKind
from pledge.tenants.models import Tenant
from pledge.web.templating import templates

ROUTER = Actor(ActorKind.OPERATOR, "router")


@dataclass(frozen=True)
class Routed:
    controllers: list[str]  # tenant slugs the request went to
    references: list[str]
    letter: str  # what the requester is told


def route(runtime: Runtime, data: RequestInput, *, send_via: str | None = None) -> Routed:
    """Find the controllers holding the requester's address and file the request with each
    (channel "forwarded"); return the letter that tells the requester who they are. With
    `send_via` (a tenant slug, e.g. the operator's own), the letter goes out through that
    tenant's outbox."""
    with transaction(runtime.sessions) as session:
        tenants = list(session.scalars(select(Tenant).order_by(Tenant.slug)))
    found: list[Tenant] = []
    for tenant in tenants:
        with runtime.tenant_context(tenant.slug, ROUTER) as ctx:
            if reading.find_subject_id(ctx, IdentityKind.EMAIL, data.requester.email) is not None:
                found.append(ctx.tenant)
    references = []
    forwarded = RequestInput(
        data.type, data.requester, data.jurisdiction, RequestChannel.FORWARDED.value, data.details
    )
    for tenant in found:
        with runtime.tenant_context(tenant.slug, ROUTER) as ctx:
            received = workflow.receive(ctx, forwarded)
            references.append(received.request.reference)
            audit.record(
                ctx,
                AuditEvent.RIGHTS_ROUTED,
                details={"request_id": str(received.request.id), "at": utcnow().isoformat()},
            )
    letter = templates.env.get_template("letters/routed.txt").render(
        name=data.requester.name,
        type_label=data.type.replace("_", " "),
        controllers=found,
        reference=", ".join(references) or "—",
    )
    if send_via:
        with runtime.tenant_context(send_via, ROUTER) as ctx:
            mail.queue(
                ctx,
                to=data.requester.email,
                subject_line="Your request, passed on to the controller",
                text=letter,
                kind="rights_letter",
            )
    return Routed([t.slug for t in found], references, letter)
