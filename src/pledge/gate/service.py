"""The gate: *may I use this subject's data for this purpose on this channel now?*

`may` answers for one subject with every reason that applies, audited as one entry. It reads
the consent state, the relationships, objections, opt-outs, suppressions and the subject's
privacy flags; `gate.audience` applies the same rules to a list or a whole tenant in one
set-based query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    literal,
    select,
)

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent.models import (
    ConsentAction,
    ConsentRecord,
    ConsentState,
    Objection,
    SubjectPurpose,
)
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput, NotFound
from pledge.core.ids import parse_id
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut, Suppression, Topic
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, LawfulBasis, Purpose
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectIdentity, SubjectStatus
from pledge.tenants.models import ChildrenPolicy


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
# What a child's data serves without a parent's consent under a tenant's stricter children's
# policy: what the law itself needs. A legal obligation (records a law makes the tenant keep)
# and a vital interest (GDPR Art. 6(1)(d): protecting the child's life cannot wait for a
# parent). A contract, a legitimate interest or a public task is a use the policy forbids.
CHILD_WITHOUT_PARENT_BASES = {
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


class _PurposeRules(Protocol):
    """What the rules read of a purpose: a `Purpose`, or `_PurposeRow`."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def slug(self) -> str: ...
    @property
    def lawful_basis(self) -> str: ...
    @property
    def data_categories(self) -> list[str]: ...
    @property
    def channels(self) -> list[str]: ...
    @property
    def is_marketing(self) -> bool: ...
    @property
    def is_sale_or_sharing(self) -> bool: ...
    @property
    def archived_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class _PurposeRow:
    """The purpose's columns the rules read, without loading the ORM entity."""

    id: uuid.UUID
    slug: str
    lawful_basis: str
    data_categories: list[str]
    channels: list[str]
    is_marketing: bool
    is_sale_or_sharing: bool
    archived_at: datetime | None


_PURPOSE_COLUMNS = (
    Purpose.id,
    Purpose.slug,
    Purpose.lawful_basis,
    Purpose.data_categories,
    Purpose.channels,
    Purpose.is_marketing,
    Purpose.is_sale_or_sharing,
    Purpose.archived_at,
)


def _uses_sensitive_data(purpose: _PurposeRules) -> bool:
    """`purposes.uses_sensitive_data`, for a row too (the rule stays there: it reads only the
    categories, so a transient `Purpose` holding them is enough)."""
    if not isinstance(purpose, Purpose):
        purpose = Purpose(data_categories=list(purpose.data_categories))
    return purposes.uses_sensitive_data(purpose)


def _topic_known(topic: Any) -> ColumnElement[bool]:
    """SQL: the tenant has a topic of this slug."""
    return exists().where(Topic.tenant_id == _T, Topic.slug == topic)


def _suppressed(
    identity: type[SubjectIdentity], tenant_id: Any, channel: Any
) -> ColumnElement[bool]:
    """SQL: this identity's address is suppressed on the channel (probed by primary key)."""
    z = Suppression
    return exists().where(
        z.tenant_id == tenant_id,
        z.kind == identity.kind,
        z.blind_index == identity.blind_index,
        z.channel == channel,
    )


def _topic(ctx: TenantContext, topic: str | None) -> str | None:
    """The topic asked about: none (None or empty), every marketing topic (`*`) or one of the
    tenant's topics by slug — an unknown one is refused, not taken as a topic nobody opted out
    of (a typo would otherwise pass every topic opt-out)."""
    if topic and topic != ALL_MARKETING:
        known = ctx.session.scalar(select(_topic_known(topic)), {"tenant_id": ctx.tenant_id})
        if not known:
            raise InvalidInput(f"unknown topic {topic[:60]!r}")
    return topic


def _channel(purpose: Purpose, channel: str | None) -> str | None:
    if channel is None:
        return None
    if channel not in Channel._value2member_map_:
        raise InvalidInput(f"unknown channel {channel[:20]!r}")
    return channel


# ---------------------------------------------------------------------------------------------
# One check: everything the rules read about the subject, in one query
#
# A check is on the hot path of every send, so the statements are built once per shape (which
# facts a purpose needs) and reused with bound values: building and hashing a statement costs
# more than SQLite takes to run it.


@dataclass(frozen=True)
class _Needs:
    """Which facts the rules read for a purpose, channel and topic."""

    consent: str | None  # "state" (now), "ledger" (at a past moment) or None
    relationship: bool
    objection: bool
    optout_all: bool
    optout_topic: bool
    address: bool
    suppression: bool


def _needs(purpose: _PurposeRules, channel: str | None, topic: str | None, past: bool) -> _Needs:
    basis = purpose.lawful_basis
    optout_all = optout_topic = address = False
    if channel is not None:
        # The opt-outs `evaluate` looks at: every marketing topic (`*`) for a marketing
        # purpose, and the topic asked about.
        optout_all = purpose.is_marketing or topic == ALL_MARKETING
        optout_topic = bool(topic)
        address = channel in ADDRESS_KIND
    return _Needs(
        consent=("ledger" if past else "state") if basis == LawfulBasis.CONSENT.value else None,
        relationship=basis in RELATIONSHIP_BASES,
        objection=basis in OBJECTABLE_BASES or purpose.is_marketing,
        optout_all=optout_all,
        optout_topic=optout_topic,
        address=address,
        suppression=address and purpose.is_marketing,
    )


_T: BindParameter[Any] = bindparam("tenant_id")
_S: BindParameter[Any] = bindparam("subject_id")
_P: BindParameter[Any] = bindparam("purpose_id")


def _fact_columns(needs: _Needs, purpose_id: ColumnElement[Any] = _P) -> list[ColumnElement[Any]]:
    """Scalar subqueries on the bound tenant and subject and on `purpose_id` (bound, or the
    purpose row of the enclosing query), in `_Facts` order."""
    cols: list[ColumnElement[Any]] = []

    def keyed(model: Any) -> list[ColumnElement[bool]]:
        return [model.tenant_id == _T, model.subject_id == _S, model.purpose_id == purpose_id]

    if needs.consent == "state":
        cols.append(select(ConsentState.granted).where(*keyed(ConsentState)).scalar_subquery())
    elif needs.consent == "ledger":
        # The consent in force at `at`: the last ledger entry at or before it.
        cols.append(
            select(ConsentRecord.action == ConsentAction.GRANT.value)
            .where(*keyed(ConsentRecord), ConsentRecord.recorded_at <= bindparam("at"))
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    if needs.relationship:
        cols.append(select(SubjectPurpose.since).where(*keyed(SubjectPurpose)).scalar_subquery())
        cols.append(select(SubjectPurpose.until).where(*keyed(SubjectPurpose)).scalar_subquery())
    if needs.objection:
        cols.append(select(Objection.since).where(*keyed(Objection)).scalar_subquery())
        cols.append(select(Objection.overridden_at).where(*keyed(Objection)).scalar_subquery())

    def opted_out(topic: ColumnElement[Any]) -> ColumnElement[bool]:
        o = ChannelOptOut
        return exists().where(
            o.tenant_id == _T,
            o.subject_id == _S,
            o.channel == bindparam("channel"),
            o.topic == topic,
        )

    if needs.optout_all:
        cols.append(opted_out(literal(ALL_MARKETING)))
    if needs.optout_topic:
        cols.append(opted_out(bindparam("topic")))
    if needs.address:
        i = SubjectIdentity
        mine = [i.tenant_id == _T, i.subject_id == _S, i.kind == bindparam("kind")]
        cols.append(exists().where(*mine))
        if needs.suppression:
            cols.append(exists().where(*mine, _suppressed(i, _T, bindparam("channel"))))
    return cols


@dataclass(frozen=True)
class _Facts:
    granted: bool | None = None  # the consent in force (None: never given nor withdrawn)
    since: datetime | None = None  # the relationship
    until: datetime | None = None
    objected_since: datetime | None = None
    overridden_at: datetime | None = None
    opted_out_all: bool = False
    opted_out_topic: bool = False
    has_address: bool = False
    suppressed: bool = False

    @classmethod
    def from_row(cls, needs: _Needs, row: Sequence[Any]) -> _Facts:
        values = iter(row)
        return cls(
            granted=_bool(next(values)) if needs.consent else None,
            since=next(values) if needs.relationship else None,
            until=next(values) if needs.relationship else None,
            objected_since=next(values) if needs.objection else None,
            overridden_at=next(values) if needs.objection else None,
            opted_out_all=bool(next(values)) if needs.optout_all else False,
            opted_out_topic=bool(next(values)) if needs.optout_topic else False,
            has_address=bool(next(values)) if needs.address else False,
            suppressed=bool(next(values)) if needs.suppression else False,
        )

    def masked(self, needs: _Needs) -> _Facts:
        """Only the facts `needs` names; the others as if not read."""
        return _Facts(
            granted=self.granted if needs.consent else None,
            since=self.since if needs.relationship else None,
            until=self.until if needs.relationship else None,
            objected_since=self.objected_since if needs.objection else None,
            overridden_at=self.overridden_at if needs.objection else None,
            opted_out_all=self.opted_out_all and needs.optout_all,
            opted_out_topic=self.opted_out_topic and needs.optout_topic,
            has_address=self.has_address and needs.address,
            suppressed=self.suppressed and needs.suppression,
        )


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class _SubjectState(Protocol):
    """What the rules read of the subject's own row: a `Subject`, or `_SubjectRow`."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def restricted_at(self) -> datetime | None: ...
    @property
    def sale_opt_out_at(self) -> datetime | None: ...
    @property
    def limit_sensitive_at(self) -> datetime | None: ...
    @property
    def is_child(self) -> bool: ...
    @property
    def parental_consent_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class _SubjectRow:
    """The subject's columns the rules read, without loading the ORM entity."""

    id: uuid.UUID
    status: str
    restricted_at: datetime | None
    sale_opt_out_at: datetime | None
    limit_sensitive_at: datetime | None
    is_child: bool
    parental_consent_at: datetime | None


_SUBJECT_COLUMNS = (
    Subject.id,
    Subject.status,
    Subject.restricted_at,
    Subject.sale_opt_out_at,
    Subject.limit_sensitive_at,
    Subject.is_child,
    Subject.parental_consent_at,
)
_N_SUBJECT = len(_SUBJECT_COLUMNS)

_FACTS: dict[_Needs, Select[Any]] = {}


def _facts_statement(needs: _Needs) -> Select[Any]:
    """The statement of one shape, built once (a statement is immutable: sharing it between
    threads and databases is safe; each engine compiles and caches it for its dialect)."""
    stmt = _FACTS.get(needs)
    if stmt is None:
        stmt = _FACTS[needs] = select(*_fact_columns(needs))
    return stmt


def _run(ctx: TenantContext, stmt: Select[Any], params: dict[str, Any]) -> Row[Any] | None:
    """Run a prebuilt read on the session's connection, past the ORM's per-statement work
    (the statement loads no entity). Pending changes are flushed first, as `Session.execute`
    would autoflush them."""
    session = ctx.session
    if session.autoflush:
        session.flush()
    return session.connection().execute(stmt, params).one_or_none()


def _params(
    ctx: TenantContext,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: str | None,
    topic: str | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "tenant_id": ctx.tenant_id,
        "subject_id": subject_id,
        "purpose_id": purpose.id,
        "at": at,
        "channel": channel,
        "topic": topic,
        "kind": ADDRESS_KIND.get(channel or ""),
    }


def _facts(
    ctx: TenantContext,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: str | None,
    topic: str | None,
    at: datetime,
    needs: _Needs,
) -> _Facts:
    if not _fact_columns_needed(needs):
        return _Facts()
    row = _run(
        ctx,
        _facts_statement(needs),
        _params(ctx, subject_id, purpose, channel, topic, at),
    )
    assert row is not None  # scalar subqueries only: always one row
    return _Facts.from_row(needs, row)


def _fact_columns_needed(needs: _Needs) -> bool:
    return bool(
        needs.consent
        or needs.relationship
        or needs.objection
        or needs.optout_all
        or needs.optout_topic
        or needs.address
    )


def _erased_for(status: str, basis: str) -> bool:
    """The subject is erased for a purpose of this basis: erased, or partially erased and the
    purpose is not a legal obligation (what a partial erasure keeps, it keeps under a legal
    duty — invoices, tax records — and for nothing else: not the consents, relationships or
    addresses it left in place)."""
    return status == SubjectStatus.ERASED.value or (
        status == SubjectStatus.PARTIALLY_ERASED.value
        and basis != LawfulBasis.LEGAL_OBLIGATION.value
    )


def child_denied(policy: str, basis: str, is_sale_or_sharing: bool) -> bool:
    """A child without a parent's consent is refused a purpose of this basis under the
    tenant's children's policy (`audience._flags_deny` says the same in SQL)."""
    if basis == LawfulBasis.CONSENT.value or is_sale_or_sharing:
        # GDPR Art. 8; CCPA 1798.120(c): a child's consent or sale needs a parent.
        return True
    # Seeds 000, 001 §10, 003: no use at all but what the law needs.
    return (
        policy != ChildrenPolicy.CONSENT_NEEDS_PARENT.value
        and basis not in CHILD_WITHOUT_PARENT_BASES
    )


def _children_policy(ctx: TenantContext, subject: _SubjectState) -> str:
    """The tenant's children's policy where it can matter — a child without a parent's
    consent — else the default: the check reads the tenant's row only for such a child (a
    check is one query; the tenant's row is not among them)."""
    if subject.is_child and subject.parental_consent_at is None:
        return ctx.settings.children_policy
    return ChildrenPolicy.CONSENT_NEEDS_PARENT.value


def _reasons(
    subject: _SubjectState,
    purpose: _PurposeRules,
    channel: str | None,
    topic: str | None,
    at: datetime,
    facts: _Facts,
    children_policy: str,
) -> list[Reason]:
    """The rules, on the facts read (the order of the reasons is part of the answer)."""
    if _erased_for(subject.status, purpose.lawful_basis):
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
        if facts.granted is None:
            reasons.append(Reason.NO_CONSENT)
        elif not facts.granted:
            reasons.append(Reason.CONSENT_WITHDRAWN)
    elif basis in RELATIONSHIP_BASES:
        if facts.since is None or facts.since > at:
            reasons.append(Reason.NO_BASIS)
        elif facts.until is not None and facts.until <= at:
            reasons.append(Reason.BASIS_ENDED)
    # An objection to direct marketing cannot be overridden (Art. 21(3)).
    if (
        (basis in OBJECTABLE_BASES or purpose.is_marketing)
        and facts.objected_since is not None
        and facts.objected_since <= at
        and (facts.overridden_at is None or purpose.is_marketing)
    ):
        reasons.append(Reason.OBJECTED)
    if channel is not None:
        if facts.opted_out_all:
            reasons.append(Reason.MARKETING_OPT_OUT)
        if topic and facts.opted_out_topic:
            reasons.append(Reason.TOPIC_OPT_OUT)
        if channel in ADDRESS_KIND:
            if not facts.has_address:
                reasons.append(Reason.NO_ADDRESS)
            elif purpose.is_marketing and facts.suppressed:
                reasons.append(Reason.SUPPRESSED)
    if purpose.is_sale_or_sharing and subject.sale_opt_out_at is not None:
        reasons.append(Reason.SALE_OPT_OUT)
    if (
        subject.limit_sensitive_at is not None
        and basis not in NECESSARY_BASES
        and _uses_sensitive_data(purpose)
    ):
        reasons.append(Reason.SENSITIVE_LIMITED)
    if (
        subject.is_child
        and subject.parental_consent_at is None
        and child_denied(children_policy, basis, purpose.is_sale_or_sharing)
    ):
        reasons.append(Reason.CHILD_WITHOUT_PARENTAL_CONSENT)
    return reasons


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
    if _erased_for(subject.status, purpose.lawful_basis):
        return [Reason.SUBJECT_ERASED]
    needs = _needs(purpose, channel, topic, past=at < now)
    facts = _facts(ctx, subject.id, purpose, channel, topic, at, needs)
    return _reasons(subject, purpose, channel, topic, at, facts, _children_policy(ctx, subject))


# Every fact any purpose's rules read: a check reads them all with the purpose, in one
# query, and keeps those the purpose needs (`_Facts.masked`).
_ALL_FACTS = {
    past: _Needs(
        consent="ledger" if past else "state",
        relationship=True,
        objection=True,
        optout_all=True,
        optout_topic=True,
        address=True,
        suppression=True,
    )
    for past in (False, True)
}
_CHECKS: dict[tuple[bool, bool], Select[Any]] = {}


def _check_statement(past: bool, by_id: bool) -> Select[Any]:
    """One check's one query: the purpose (by id or slug), the subject's row (NULLs when
    there is no such subject), every fact, as scalar subqueries on the purpose row, and last
    whether the topic asked about exists."""
    key = (past, by_id)
    stmt = _CHECKS.get(key)
    if stmt is None:
        purpose_key = Purpose.id if by_id else Purpose.slug
        stmt = (
            select(
                *_PURPOSE_COLUMNS,
                *_SUBJECT_COLUMNS,
                *_fact_columns(_ALL_FACTS[past], purpose_id=Purpose.__table__.c.id),
                _topic_known(bindparam("topic")),
            )
            .select_from(Purpose)
            .outerjoin(Subject, and_(Subject.tenant_id == _T, Subject.id == _S))
            .where(Purpose.tenant_id == _T, purpose_key == bindparam("key"))
        )
        _CHECKS[key] = stmt
    return stmt


_N_PURPOSE = len(_PURPOSE_COLUMNS)


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
    """One question, one answer with its reasons, one audit entry.

    One query: the purpose, the subject and every fact the rules read (the purpose is looked
    up as `purposes.find_purpose` does: by id when the key parses as one, else by slug)."""
    now = utcnow()
    when = at or now
    if when.tzinfo is None:
        raise InvalidInput("`at` needs a time zone")
    sid = parse_id(subject_id) if isinstance(subject_id, str) else subject_id
    row = None
    if sid is not None and (channel is None or channel in Channel._value2member_map_):
        as_id = purpose_slug if isinstance(purpose_slug, uuid.UUID) else parse_id(purpose_slug)
        params = {
            "tenant_id": ctx.tenant_id,
            "subject_id": sid,
            "key": as_id or purpose_slug,
            "at": when,
            "channel": channel,
            "topic": topic,
            "kind": ADDRESS_KIND.get(channel or ""),
        }
        row = _run(ctx, _check_statement(when < now, as_id is not None), params)
    if row is None or row[_N_PURPOSE] is None:
        # The errors, in the order the checks are made: subject, purpose, channel.
        subjects.get_subject_row(ctx, subject_id)
        checked = purposes.get_purpose(ctx, purpose_slug)
        _channel(checked, channel)
        raise NotFound("no such subject")
    purpose = _PurposeRow(*row[:_N_PURPOSE])
    subject = _SubjectRow(*row[_N_PURPOSE : _N_PURPOSE + _N_SUBJECT])
    needs = _needs(purpose, channel, topic, past=when < now)
    if topic and topic != ALL_MARKETING and not row[-1]:
        raise InvalidInput(f"unknown topic {topic[:60]!r}")
    facts = _Facts.from_row(_ALL_FACTS[when < now], row[_N_PURPOSE + _N_SUBJECT : -1])
    facts = facts.masked(needs)
    reasons = _reasons(
        subject, purpose, channel, topic, when, facts, _children_policy(ctx, subject)
    )
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
