"""The suppression list: addresses that must not receive marketing, even after the person
they belonged to was erased (docs/decisions/0008-suppression-after-erasure.md).

An entry is the tenant-keyed blind index of the address's normal form (the same hash the
vault looks identities up by), the channel, a reason and a date: no value, no subject id.
A later import or API create of the same address gets the same blind index, and the gate
denies marketing to it (Reason.SUPPRESSED); service messages still pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import ConsentState, Objection
from pledge.core.clock import utcnow
from pledge.core.db import insert_new
from pledge.core.errors import InvalidInput
from pledge.preferences.models import ChannelOptOut, Suppression
from pledge.purposes.models import Channel, Purpose
from pledge.subjects.identity import IdentityKind, InvalidIdentity, normalise
from pledge.subjects.models import SubjectIdentity
from pledge.subjects.vault import IdentityIndexer

# Which channels an identity reaches.
CHANNELS_OF: dict[str, tuple[str, ...]] = {
    IdentityKind.EMAIL.value: (Channel.EMAIL.value,),
    IdentityKind.PHONE.value: (Channel.SMS.value, Channel.PHONE.value),
}
AFTER_ERASURE = "opted_out_then_erased"
MANUAL = "manual"


def _insert(
    ctx: TenantContext, entries: Sequence[tuple[str, bytes, str]], reason: str
) -> list[tuple[str, bytes, str]]:
    """Add (kind, blind index, channel) entries not yet listed; returns those added."""
    added = []
    now = utcnow()
    # One statement each, not a check then an insert: two transactions adding the same entry
    # at once (an erasure and a manual entry) would otherwise both insert, and the second fail
    # on the primary key. Only the one that inserted counts it (and audits it).
    for kind, bidx, channel in dict.fromkeys(entries):
        inserted = ctx.session.execute(
            insert_new(
                ctx.session,
                Suppression,
                tenant_id=ctx.tenant_id,
                kind=kind,
                blind_index=bidx,
                channel=channel,
                reason=reason[:32],
                created_at=now,
            ).returning(Suppression.channel)
        ).first()
        if inserted is not None:
            added.append((kind, bidx, channel))
    return added


def _stopped_channels(ctx: TenantContext, subject_id: uuid.UUID) -> set[str]:
    """The channels on which the subject said no to marketing: an opt-out there, or a
    withdrawn marketing consent or an objection to a marketing purpose (on its channels)."""
    channels = set(
        ctx.session.scalars(
            for_tenant(select(ChannelOptOut.channel), ChannelOptOut, ctx.tenant_id).where(
                ChannelOptOut.subject_id == subject_id
            )
        )
    )
    said_no = [
        *ctx.session.scalars(
            for_tenant(select(Purpose), Purpose, ctx.tenant_id)
            .join(
                ConsentState,
                (ConsentState.tenant_id == Purpose.tenant_id)
                & (ConsentState.purpose_id == Purpose.id),
            )
            .where(
                ConsentState.subject_id == subject_id,
                ConsentState.granted.is_(False),
                Purpose.is_marketing.is_(True),
            )
        ),
        *ctx.session.scalars(
            for_tenant(select(Purpose), Purpose, ctx.tenant_id)
            .join(
                Objection,
                (Objection.tenant_id == Purpose.tenant_id) & (Objection.purpose_id == Purpose.id),
            )
            .where(Objection.subject_id == subject_id, Purpose.is_marketing.is_(True))
        ),
    ]
    for purpose in said_no:
        channels |= set(purpose.channels) if purpose.channels else set(Channel)
    return {str(c) for c in channels}


def preserve_suppressions(ctx: TenantContext, subject_id: uuid.UUID) -> int:
    """Called by the erasure before the identities go: keep the keyed hashes of the e-mail
    and phone of a person who said no to marketing, so that erasing them does not put them
    back on the lists (1CRM promises to erase "any reference to you" *and* to stop
    commercial mail; a keyed hash cannot be reversed without the tenant key)."""
    channels = _stopped_channels(ctx, subject_id)
    if not channels:
        return 0
    identities = ctx.session.execute(
        for_tenant(
            select(SubjectIdentity.kind, SubjectIdentity.blind_index),
            SubjectIdentity,
            ctx.tenant_id,
        ).where(SubjectIdentity.subject_id == subject_id)
    ).all()
    entries = [
        (kind, bidx, channel)
        for kind, bidx in identities
        for channel in CHANNELS_OF.get(kind, ())
        if channel in channels
    ]
    added = _insert(ctx, entries, AFTER_ERASURE)
    if added:
        audit.record(
            ctx,
            AuditEvent.SUPPRESSION_ADDED,
            subject_id=subject_id,
            details={
                "via": "erasure",
                "entries": len(added),
                "channels": sorted({c for _k, _b, c in added}),
                "reason": AFTER_ERASURE,
            },
        )
    return len(added)


# ---------------------------------------------------------------------------------------------
# Manual entries (API, CLI)


def _index(ctx: TenantContext, kind: str, value: str) -> tuple[str, bytes]:
    if kind not in CHANNELS_OF:
        raise InvalidInput("a suppression is of an e-mail address or a phone number")
    identity = IdentityKind(kind)
    try:
        normal = normalise(identity, value, ctx.settings.phone_region)
    except InvalidIdentity as exc:
        raise InvalidInput(f"{kind}: {exc}") from None
    return kind, IdentityIndexer(ctx.keystore, ctx.tenant_id).index(identity, normal)


def _channels(kind: str, channels: Sequence[str] | None) -> list[str]:
    allowed = CHANNELS_OF[kind]
    chosen = list(dict.fromkeys(channels)) if channels else list(allowed)
    bad = [c for c in chosen if c not in allowed]
    if bad:
        raise InvalidInput(f"an {kind} suppression applies to: {', '.join(allowed)}")
    return chosen


def add_suppression(
    ctx: TenantContext,
    kind: str,
    value: str,
    *,
    channels: Sequence[str] | None = None,
    reason: str = MANUAL,
) -> int:
    """Suppress an address for marketing on its channels; returns how many entries were new."""
    kind, bidx = _index(ctx, kind, value)
    label = reason.strip()[:32] or MANUAL
    added = _insert(ctx, [(kind, bidx, c) for c in _channels(kind, channels)], label)
    if added:
        audit.record(
            ctx,
            AuditEvent.SUPPRESSION_ADDED,
            details={
                "via": "manual",
                "kind": kind,
                "entries": len(added),
                "channels": sorted({c for _k, _b, c in added}),
                "reason": label,
            },
        )
    return len(added)


def remove_suppression(
    ctx: TenantContext, kind: str, value: str, *, channels: Sequence[str] | None = None
) -> int:
    """Lift a suppression (e.g. the person asked to be mailed again); returns entries removed."""
    kind, bidx = _index(ctx, kind, value)
    chosen = _channels(kind, channels)
    removed = int(
        ctx.session.execute(
            delete(Suppression).where(
                Suppression.tenant_id == ctx.tenant_id,
                Suppression.kind == kind,
                Suppression.blind_index == bidx,
                Suppression.channel.in_(chosen),
            )
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
    if removed:
        audit.record(
            ctx,
            AuditEvent.SUPPRESSION_REMOVED,
            details={"kind": kind, "entries": removed, "channels": chosen},
        )
    return removed


def suppressed_channels(ctx: TenantContext, kind: str, value: str) -> list[str]:
    """The channels on which this address is suppressed (none: an empty list)."""
    kind, bidx = _index(ctx, kind, value)
    return sorted(
        ctx.session.scalars(
            for_tenant(select(Suppression.channel), Suppression, ctx.tenant_id).where(
                Suppression.kind == kind, Suppression.blind_index == bidx
            )
        )
    )


@dataclass(frozen=True)
class SuppressionEntry:
    kind: str
    channel: str
    reason: str
    created_at: datetime
    ref: str  # the first hex digits of the keyed hash: tells entries apart, reveals nothing


def list_suppressions(ctx: TenantContext, *, limit: int = 100) -> list[SuppressionEntry]:
    rows = ctx.session.scalars(
        for_tenant(select(Suppression), Suppression, ctx.tenant_id)
        .order_by(Suppression.created_at.desc(), Suppression.blind_index)
        .limit(limit)
    )
    return [
        SuppressionEntry(r.kind, r.channel, r.reason, r.created_at, r.blind_index.hex()[:12])
        for r in rows
    ]
