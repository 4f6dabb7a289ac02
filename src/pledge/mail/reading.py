"""Reading the outbox, as the console's Mail outbox shows it: listings and counts with nothing
decrypted, and one message opened (audited).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant, get_in_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.mail.models import OutboxMessage
from pledge.mail.service import Letter, _open, _readable_keys


def list_messages(
    ctx: TenantContext,
    *,
    before: uuid.UUID | None = None,
    limit: int = 50,
    campaign_id: uuid.UUID | None = None,
) -> list[OutboxMessage]:
    """Newest first; status, kind and times only — nothing is decrypted."""
    stmt = for_tenant(select(OutboxMessage), OutboxMessage, ctx.tenant_id)
    if before is not None:
        stmt = stmt.where(OutboxMessage.id < before)
    if campaign_id is not None:
        stmt = stmt.where(OutboxMessage.campaign_id == campaign_id)
    return list(ctx.session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit)))


@dataclass(frozen=True)
class MessageView:
    id: uuid.UUID
    kind: str
    status: str
    subject_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    letter: Letter | None  # None: the subject was erased, the message cannot be read

    @property
    def erased(self) -> bool:
        return self.letter is None


def read_message(ctx: TenantContext, message_id: uuid.UUID | str) -> MessageView:
    """Open one message (decrypts it; audited)."""
    row = get_in_tenant(ctx.session, OutboxMessage, ctx.tenant_id, message_id, what="message")
    opened = _open(ctx, row, _readable_keys(ctx, [row]))
    audit.record(
        ctx,
        AuditEvent.MAIL_READ,
        subject_id=row.subject_id,
        details={"message_id": str(row.id), "kind": row.kind, "readable": opened is not None},
    )
    return MessageView(
        row.id,
        row.kind,
        row.status,
        row.subject_id,
        row.campaign_id,
        row.attempts,
        row.last_error,
        row.created_at,
        row.sent_at,
        opened,
    )


def count_by_status(ctx: TenantContext) -> dict[str, int]:
    rows = ctx.session.execute(
        for_tenant(
            select(OutboxMessage.status, func.count()), OutboxMessage, ctx.tenant_id
        ).group_by(OutboxMessage.status)
    ).all()
    return {status: int(n) for status, n in rows}
