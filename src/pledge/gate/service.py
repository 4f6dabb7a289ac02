"""The gate: *may I use this subject's data for this purpose on this channel now?*

`may` answers for one subject with every reason that applies; `audience` answers for a list
or a whole tenant in one set-based query. Both read the same state — the consent state, the
relationships, objections, opt-outs, suppressions and the subject's privacy flags — and
both are audited: a check as one entry, an audience as one entry with counts and a digest.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import ConsentRecord, ConsentState, Objection, SubjectPurpose
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut, Suppression
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, LawfulBasis, Purpose
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectIdentity, SubjectStatus


class Reason(StrEnum):
    SUBJECT_ERASED = "subject_erased"
    PURPOSE_ARCHIVED = "purpose_archived"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"
    RESTRICTED = "restricted"
    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_BASIS = "no_basis"
    BASIS_ENDED = "basis_ended"
    OBJECTED = "objected"
    MARKETING_OPT_OUT = "marketing_opt_out"
    TOPIC_OPT_OUT = "topic_opt_out"
    SUPPRESSED = "suppressed"
    SALE_OPT_OUT = "sale_opt_out"
    SENSITIVE_LIMITED = "sensitive_limited"
    CHILD_WITHOUT_PARENTAL_CONSENT = "child_without_parental_consent"
    NO_ADDRESS = "no_address"


# Bases that hold only for subjects we have the relationship with (a contract, the channel
# they came through); a legal obligation or vital interest holds for anyone we hold.
RELATIONSHIP_BASES = {LawfulBasis.CONTRACT.value, LawfulBasis.LEGITIMATE_INTEREST.value}
OBJECTABLE_BASES = {
    LawfulBasis.LEGITIMATE_INTEREST.value,
    LawfulBasis.PUBLIC_INTEREST.value,
    LawfulBasis.OFFICIAL_AUTHORITY.value,
}
# CPRA "limit the use of sensitive PI" leaves uses necessary for the service itself.
NECESSARY_BASES = {
    LawfulBasis.CONTRACT.value,
    LawfulBasis.LEGAL_OBLIGATION.value,
    LawfulBasis.VITAL_INTEREST.value,
}
ADDRESS_KIND = {
    Channel.EMAIL.value: IdentityKind.EMAIL.value,
    Channel.SMS.value: IdentityKind.PHONE.value,
    Channel.PHONE.value: IdentityKind.PHONE.value,
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    subject_id: uuid.UUID
    purpose: str
    basis: str
    channel: str | None
    topic: str | None
    at: datetime
    reasons: list[Reason] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "subject_id": str(self.subject_id),
            "purpose": self.purpose,
            "lawful_basis": self.basis,
            "channel": self.channel,
            "topic": self.topic,
            "at": self.at.isoformat(),
            "reasons": [r.value for r in self.reasons],
        }


def _channel(purpose: Purpose, channel: str | None) -> str | None:
    if channel is None:
        return None
    if channel not in Channel._value2member_map_:
        raise InvalidInput(f"unknown channel {channel[:20]!r}")
    return channel


def _consent_at(
    ctx: TenantContext, subject_id: uuid.UUID, purpose_id: uuid.UUID, at: datetime
) -> bool | None:
    """The consent in force at `at`: the last ledger entry at or before it (None: never)."""
    action = ctx.session.scalar(
        select(ConsentRecord.action)
        .where(
            ConsentRecord.tenant_id == ctx.tenant_id,
            ConsentRecord.subject_id == subject_id,
            ConsentRecord.purpose_id == purpose_id,
            ConsentRecord.recorded_at <= at,
        )
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    )
    return None if action is None else action == "grant"


def evaluate(
    ctx: TenantContext,
    subject: Subject,
    purpose: Purpose,
    channel: str | None,
    topic: str | None,
    at: datetime,
    *,
    now: datetime,
) -> list[Reason]:
    """Every reason that forbids this use; empty means allowed."""
    if subject.status == SubjectStatus.ERASED.value:
        return [Reason.SUBJECT_ERASED]
    reasons: list[Reason] = []
    basis = purpose.lawful_basis
    if purpose.archived_at is not None and purpose.archived_at <= at:
        reasons.append(Reason.PURPOSE_ARCHIVED)
    if channel is not None and purpose.channels and channel not in purpose.channels:
        reasons.append(Reason.CHANNEL_NOT_ALLOWED)
    if subject.restricted_at is not None:
        reasons.append(Reason.RESTRICTED)  # GDPR Art. 18(2): nothing but storage
    if basis == LawfulBasis.CONSENT.value:
        if at >= now:
            state = ctx.session.get(ConsentState, (ctx.tenant_id, subject.id, purpose.id))
            granted = None if state is None else state.granted
        else:
            granted = _consent_at(ctx, subject.id, purpose.id, at)
        if granted is None:
            reasons.append(Reason.NO_CONSENT)
        elif not granted:
            reasons.append(Reason.CONSENT_WITHDRAWN)
    elif basis in RELATIONSHIP_BASES:
        link = ctx.session.get(SubjectPurpose, (ctx.tenant_id, subject.id, purpose.id))
        if link is None or link.since > at:
            reasons.append(Reason.NO_BASIS)
        elif link.until is not None and link.until <= at:
            reasons.append(Reason.BASIS_ENDED)
    if basis in OBJECTABLE_BASES or purpose.is_marketing:
        objection = ctx.session.get(Objection, (ctx.tenant_id, subject.id, purpose.id))
        # An objection to direct marketing cannot be overridden (Art. 21(3)).
        if (
            objection is not None
            and objection.since <= at
            and (objection.overridden_at is None or purpose.is_marketing)
        ):
            reasons.append(Reason.OBJECTED)
    if channel is not None:
        topics = [ALL_MARKETING] if purpose.is_marketing else []
        if topic:
            topics.append(topic)
        if topics:
            optouts = set(
                ctx.session.scalars(
                    select(ChannelOptOut.topic).where(
                        ChannelOptOut.tenant_id == ctx.tenant_id,
                        ChannelOptOut.subject_id == subject.id,
                        ChannelOptOut.channel == channel,
                        ChannelOptOut.topic.in_(topics),
                    )
                )
            )
            if ALL_MARKETING in optouts:
                reasons.append(Reason.MARKETING_OPT_OUT)
            if topic and topic in optouts:
                reasons.append(Reason.TOPIC_OPT_OUT)
        kind = ADDRESS_KIND.get(channel)
        if kind is not None:
            addresses = list(
                ctx.session.scalars(
                    select(SubjectIdentity.blind_index).where(
                        SubjectIdentity.tenant_id == ctx.tenant_id,
                        SubjectIdentity.subject_id == subject.id,
                        SubjectIdentity.kind == kind,
                    )
                )
            )
            if not addresses:
                reasons.append(Reason.NO_ADDRESS)
            elif purpose.is_marketing and ctx.session.scalar(
                select(Suppression.blind_index)
                .where(
                    Suppression.tenant_id == ctx.tenant_id,
                    Suppression.kind == kind,
                    Suppression.channel == channel,
                    Suppression.blind_index.in_(addresses),
                )
                .limit(1)
            ):
                reasons.append(Reason.SUPPRESSED)
    if purpose.is_sale_or_sharing and subject.sale_opt_out_at is not None:
        reasons.append(Reason.SALE_OPT_OUT)
    if (
        subject.limit_sensitive_at is not None
        and basis not in NECESSARY_BASES
        and purposes.uses_sensitive_data(purpose)
    ):
        reasons.append(Reason.SENSITIVE_LIMITED)
    if (
        subject.is_child
        and subject.parental_consent_at is None
        and (basis == LawfulBasis.CONSENT.value or purpose.is_sale_or_sharing)
    ):
        # GDPR Art. 8; CCPA 1798.120(c): a child's consent or sale needs a parent.
        reasons.append(Reason.CHILD_WITHOUT_PARENTAL_CONSENT)
    return reasons


def may(
    ctx: TenantContext,
    subject_id: uuid.UUID | str,
    purpose_slug: str,
    channel: str | None = None,
    *,
    topic: str | None = None,
    at: datetime | None = None,
    audited: bool = True,
) -> Decision:
    """One question, one answer with its reasons, one audit entry."""
    now = utcnow()
    when = at or now
    if when.tzinfo is None:
        raise InvalidInput("`at` needs a time zone")
    subject = subjects.get_subject_row(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    channel = _channel(purpose, channel)
    reasons = evaluate(ctx, subject, purpose, channel, topic, when, now=now)
    decision = Decision(
        not reasons, subject.id, purpose.slug, purpose.lawful_basis, channel, topic, when, reasons
    )
    if audited:
        audit.record(
            ctx,
            AuditEvent.GATE_CHECKED,
            subject_id=subject.id,
            details={
                "purpose": purpose.slug,
                "channel": channel,
                "topic": topic,
                "allowed": decision.allowed,
                "reasons": [r.value for r in reasons],
                "at": when.isoformat(),
            },
        )
    return decision


# ---------------------------------------------------------------------------------------------
# Audience: the same rules as one query


@dataclass(frozen=True)
class Audience:
    purpose: str
    channel: str | None
    topic: str | None
    candidates: int
    allowed: list[uuid.UUID]
    digest: str

    @property
    def denied(self) -> int:
        return self.candidates - len(self.allowed)


def audience_conditions(
    tenant_id: uuid.UUID, purpose: Purpose, channel: str | None, topic: str | None, now: datetime
) -> list[ColumnElement[bool]]:
    """`evaluate` as SQL over `subjects`: the WHERE clause of an audience."""
    s = Subject
    basis = purpose.lawful_basis
    conds: list[ColumnElement[bool]] = [
        s.tenant_id == tenant_id,
        s.status != SubjectStatus.ERASED.value,
        s.restricted_at.is_(None),
    ]
    if purpose.archived_at is not None or (
        channel is not None and purpose.channels and channel not in purpose.channels
    ):
        conds.append(s.id.is_(None))  # nobody
    if basis == LawfulBasis.CONSENT.value:
        conds.append(
            exists().where(
                and_(
                    ConsentState.tenant_id == s.tenant_id,
                    ConsentState.subject_id == s.id,
                    ConsentState.purpose_id == purpose.id,
                    ConsentState.granted.is_(True),
                )
            )
        )
    elif basis in RELATIONSHIP_BASES:
        conds.append(
            exists().where(
                and_(
                    SubjectPurpose.tenant_id == s.tenant_id,
                    SubjectPurpose.subject_id == s.id,
                    SubjectPurpose.purpose_id == purpose.id,
                    SubjectPurpose.since <= now,
                    or_(SubjectPurpose.until.is_(None), SubjectPurpose.until > now),
                )
            )
        )
    if basis in OBJECTABLE_BASES or purpose.is_marketing:
        # Marketing: every objection blocks; otherwise only those not overridden.
        blocking = (
            Objection.since.is_not(None)
            if purpose.is_marketing
            else Objection.overridden_at.is_(None)
        )
        conds.append(
            not_(
                exists().where(
                    and_(
                        Objection.tenant_id == s.tenant_id,
                        Objection.subject_id == s.id,
                        Objection.purpose_id == purpose.id,
                        blocking,
                    )
                )
            )
        )
    if channel is not None:
        topics = ([ALL_MARKETING] if purpose.is_marketing else []) + ([topic] if topic else [])
        if topics:
            conds.append(
                not_(
                    exists().where(
                        and_(
                            ChannelOptOut.tenant_id == s.tenant_id,
                            ChannelOptOut.subject_id == s.id,
                            ChannelOptOut.channel == channel,
                            ChannelOptOut.topic.in_(topics),
                        )
                    )
                )
            )
        kind = ADDRESS_KIND.get(channel)
        if kind is not None:
            conds.append(
                exists().where(
                    and_(
                        SubjectIdentity.tenant_id == s.tenant_id,
                        SubjectIdentity.subject_id == s.id,
                        SubjectIdentity.kind == kind,
                    )
                )
            )
            if purpose.is_marketing:
                conds.append(
                    not_(
                        exists().where(
                            and_(
                                SubjectIdentity.tenant_id == s.tenant_id,
                                SubjectIdentity.subject_id == s.id,
                                SubjectIdentity.kind == kind,
                                Suppression.tenant_id == s.tenant_id,
                                Suppression.kind == kind,
                                Suppression.channel == channel,
                                Suppression.blind_index == SubjectIdentity.blind_index,
                            )
                        )
                    )
                )
    if purpose.is_sale_or_sharing:
        conds.append(s.sale_opt_out_at.is_(None))
    if basis not in NECESSARY_BASES and purposes.uses_sensitive_data(purpose):
        conds.append(s.limit_sensitive_at.is_(None))
    if basis == LawfulBasis.CONSENT.value or purpose.is_sale_or_sharing:
        conds.append(or_(s.is_child.is_(False), s.parental_consent_at.is_not(None)))
    return conds


def audience(
    ctx: TenantContext,
    purpose_slug: str,
    channel: str | None = None,
    *,
    topic: str | None = None,
    subject_ids: Sequence[uuid.UUID] | None = None,
) -> Audience:
    """Everyone the gate allows, among `subject_ids` or the whole tenant, in one query (per
    chunk of 10,000 ids when a list is given). One audit entry with counts and a digest."""
    purpose = purposes.get_purpose(ctx, purpose_slug)
    channel = _channel(purpose, channel)
    conds = audience_conditions(ctx.tenant_id, purpose, channel, topic, utcnow())
    allowed: list[uuid.UUID] = []
    if subject_ids is None:
        allowed = list(ctx.session.scalars(select(Subject.id).where(*conds).order_by(Subject.id)))
        candidates = int(
            ctx.session.scalar(
                select(func.count()).where(
                    Subject.tenant_id == ctx.tenant_id, Subject.status != SubjectStatus.ERASED.value
                )
            )
            or 0
        )
    else:
        unique = list(dict.fromkeys(subject_ids))
        candidates = len(unique)
        for start in range(0, len(unique), 10_000):
            chunk = unique[start : start + 10_000]
            allowed += ctx.session.scalars(select(Subject.id).where(*conds, Subject.id.in_(chunk)))
        allowed.sort()
    digest = hashlib.sha256(b"".join(i.bytes for i in allowed)).hexdigest()
    audit.record(
        ctx,
        AuditEvent.AUDIENCE_BUILT,
        details={
            "purpose": purpose.slug,
            "channel": channel,
            "topic": topic,
            "candidates": candidates,
            "allowed": len(allowed),
            "denied": candidates - len(allowed),
            "digest": digest,
        },
    )
    return Audience(purpose.slug, channel, topic, candidates, allowed, digest)
