"""The audience is the single check applied to everyone, and the single check is what it was.

For random small populations in random states (consent given, withdrawn or never asked;
relationships begun, ended or not yet begun; objections, overridden or not; opt-outs of a
topic or of all marketing on a channel; addresses and suppressed addresses; erased,
restricted, children, sale and sensitive-data opt-outs) and random purposes (every lawful
basis, marketing or not, sale or not, sensitive data or not, channels, archived now or later):

* `audience(...)` == [s for s in subjects if may(s).allowed], through every SQL form of the
  rules (`audience_conditions`, `audience_sets`, the list path) — on SQLite and PostgreSQL;
* `may` gives the same reasons, in the same order, as the gate's first implementation (one
  query per table, kept below as the reference), now and at moments in the past.

Each example writes its rows in one transaction of one tenant and rolls it back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from pledge.access.context import OPERATOR, TenantContext
from pledge.access.permissions import ALL_SCOPES
from pledge.consent.models import ConsentRecord, ConsentState, Objection, SubjectPurpose
from pledge.core.clock import frozen
from pledge.core.ids import new_id
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut, Suppression, Topic
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, LawfulBasis, Purpose
from pledge.runtime import Runtime
from pledge.subjects.models import Subject, SubjectIdentity, SubjectStatus
from pledge.tenants.service import get_tenant_by_slug

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LONG_AGO, PAST, SOON = NOW - timedelta(days=400), NOW - timedelta(days=30), NOW + timedelta(days=30)
MOMENTS = [None, NOW - timedelta(days=100), PAST - timedelta(seconds=1), PAST]
NAMED_TOPICS = ["news", "status"]
TOPICS = [None, "", *NAMED_TOPICS, ALL_MARKETING]
CHANNELS = [None, *(c.value for c in Channel)]
KINDS = {"email": "email", "sms": "phone", "phone": "phone"}


def often(value: Any, *others: Any) -> st.SearchStrategy[Any]:
    """Mostly `value`, else one of `others`: many subjects are allowed, so a
    missing or extra rule shows."""
    return st.sampled_from([value] * (6 * len(others)) + list(others))


@dataclass(frozen=True)
class PurposeSpec:
    basis: str
    is_marketing: bool
    is_sale_or_sharing: bool
    sensitive: bool
    channels: list[str]
    archived_at: datetime | None


purpose_specs = st.builds(
    PurposeSpec,
    basis=st.sampled_from([b.value for b in LawfulBasis]),
    is_marketing=st.booleans(),
    is_sale_or_sharing=st.booleans(),
    sensitive=st.booleans(),
    channels=often([], ["email"], ["email", "sms"], ["post"], [c.value for c in Channel]),
    archived_at=often(None, PAST, SOON),
)


@dataclass(frozen=True)
class SubjectSpec:
    status: str
    restricted_at: datetime | None
    sale_opt_out_at: datetime | None
    limit_sensitive_at: datetime | None
    is_child: bool
    parental_consent_at: datetime | None
    emails: int
    phones: int
    suppressed: frozenset[tuple[str, str]]  # (identity kind, channel) of its first address
    # Per purpose (by index): the consent ledger (oldest first), relationship, objection.
    ledger: tuple[tuple[tuple[bool, datetime], ...], ...]
    relationship: tuple[tuple[datetime, datetime | None] | None, ...]
    objection: tuple[tuple[datetime, datetime | None] | None, ...]
    optouts: frozenset[tuple[str, str]]  # (channel, topic)


def subject_specs(n_purposes: int) -> st.SearchStrategy[SubjectSpec]:
    ledger_entry = st.tuples(often(True, False), st.sampled_from([LONG_AGO, PAST, NOW]))
    return st.builds(
        SubjectSpec,
        status=often(SubjectStatus.ACTIVE.value, *(s.value for s in SubjectStatus)),
        restricted_at=often(None, PAST),
        sale_opt_out_at=often(None, PAST),
        limit_sensitive_at=often(None, PAST),
        is_child=often(False, True),
        parental_consent_at=often(None, PAST),
        emails=often(1, 0, 2),
        phones=st.integers(0, 1),
        suppressed=often(
            frozenset(),
            *(frozenset({(kind, channel)}) for kind in ("email", "phone") for channel in KINDS),
        ),
        ledger=st.tuples(
            *[
                st.lists(ledger_entry, min_size=1, max_size=3).map(
                    lambda es: tuple(sorted(es, key=lambda e: e[1]))
                )
                | st.just(())
                for _ in range(n_purposes)
            ]
        ),
        relationship=st.tuples(
            *[
                often((LONG_AGO, None), None, (LONG_AGO, PAST), (PAST, SOON), (SOON, None))
                for _ in range(n_purposes)
            ]
        ),
        objection=st.tuples(
            *[
                often(None, (PAST, None), (PAST, PAST), (SOON, None), (LONG_AGO, PAST))
                for _ in range(n_purposes)
            ]
        ),
        optouts=often(
            frozenset(),
            *(
                frozenset({(channel.value, topic)})
                for channel in Channel
                for topic in (ALL_MARKETING, "news", "status")
            ),
        ),
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[PurposeSpec], list[SubjectSpec]]:
    specs = draw(st.lists(purpose_specs, min_size=1, max_size=3))
    people = draw(st.lists(subject_specs(len(specs)), max_size=12))
    return specs, people


# Purpose (by index, modulo the purposes drawn), channel, topic.
questions = st.tuples(st.integers(0, 2), often("email", *CHANNELS), st.sampled_from(TOPICS))


# ---------------------------------------------------------------------------------------------
# Writing a world: rows straight into the tables the gate reads


def _bidx(i: int, kind: str, n: int) -> bytes:
    return hashlib.sha256(f"{i}:{kind}:{n}".encode()).digest()


def build(ctx: TenantContext, specs: list[PurposeSpec], people: list[SubjectSpec]) -> list[Purpose]:
    session, tid = ctx.session, ctx.tenant_id
    made: list[Purpose] = []
    for n, spec in enumerate(specs):
        purpose = Purpose(
            tenant_id=tid,
            id=new_id(),
            slug=f"p{n}",
            name=f"Purpose {n}",
            description="",
            lawful_basis=spec.basis,
            data_categories=["user.biometric.voice" if spec.sensitive else "user.contact.email"],
            channels=spec.channels,
            is_marketing=spec.is_marketing,
            is_sale_or_sharing=spec.is_sale_or_sharing,
            created_at=LONG_AGO,
            updated_at=LONG_AGO,
            archived_at=spec.archived_at,
        )
        session.add(purpose)
        made.append(purpose)
    session.flush()
    assert purposes.uses_sensitive_data(made[0]) == specs[0].sensitive
    for slug in NAMED_TOPICS:
        # The gate refuses a topic the tenant does not have: the topics asked about exist.
        session.add(
            Topic(
                tenant_id=tid,
                id=new_id(),
                slug=slug,
                name=slug,
                description="",
                purpose_id=made[0].id,
                created_at=LONG_AGO,
            )
        )
    for i, p in enumerate(people):
        sid = new_id()
        session.add(
            Subject(
                tenant_id=tid,
                id=sid,
                status=p.status,
                created_at=LONG_AGO,
                updated_at=LONG_AGO,
                erased_at=PAST if p.status != SubjectStatus.ACTIVE.value else None,
                restricted_at=p.restricted_at,
                sale_opt_out_at=p.sale_opt_out_at,
                limit_sensitive_at=p.limit_sensitive_at,
                is_child=p.is_child,
                parental_consent_at=p.parental_consent_at,
            )
        )
        session.flush()
        for kind, count in (("email", p.emails), ("phone", p.phones)):
            for n in range(count):
                session.add(
                    SubjectIdentity(
                        tenant_id=tid, kind=kind, blind_index=_bidx(i, kind, n), subject_id=sid
                    )
                )
        for kind, channel in p.suppressed:
            # The subject's first address of that kind, held or not (an erased subject's
            # address stays suppressed after its identity is gone).
            session.add(
                Suppression(
                    tenant_id=tid,
                    kind=kind,
                    blind_index=_bidx(i, kind, 0),
                    channel=channel,
                    reason="test",
                    created_at=PAST,
                )
            )
        for purpose, ledger, link, objection in zip(
            made, p.ledger, p.relationship, p.objection, strict=True
        ):
            records: list[ConsentRecord] = []
            for granted, at in ledger:
                record = ConsentRecord(
                    tenant_id=tid,
                    id=new_id(),
                    subject_id=sid,
                    purpose_id=purpose.id,
                    action="grant" if granted else "withdraw",
                    recorded_at=at,
                    method="api",
                    actor_kind="operator",
                )
                session.add(record)
                records.append(record)
            if records:
                # The state follows the ledger's last entry (by time, then id).
                last = max(records, key=lambda r: (r.recorded_at, r.id))
                session.add(
                    ConsentState(
                        tenant_id=tid,
                        subject_id=sid,
                        purpose_id=purpose.id,
                        granted=last.action == "grant",
                        record_id=last.id,
                        updated_at=last.recorded_at,
                    )
                )
            if link is not None:
                session.add(
                    SubjectPurpose(
                        tenant_id=tid,
                        subject_id=sid,
                        purpose_id=purpose.id,
                        since=link[0],
                        until=link[1],
                    )
                )
            if objection is not None:
                session.add(
                    Objection(
                        tenant_id=tid,
                        subject_id=sid,
                        purpose_id=purpose.id,
                        since=objection[0],
                        overridden_at=objection[1],
                    )
                )
        for channel, topic in p.optouts:
            session.add(
                ChannelOptOut(
                    tenant_id=tid,
                    subject_id=sid,
                    channel=channel,
                    topic=topic,
                    source="test",
                    created_at=PAST,
                )
            )
    session.flush()
    return made


def in_rolled_back_transaction(runtime: Runtime, slug: str) -> tuple[Session, TenantContext]:
    session = runtime.sessions()
    ctx = TenantContext(
        session, runtime.keystore, get_tenant_by_slug(session, slug), OPERATOR, ALL_SCOPES
    )
    return session, ctx


# ---------------------------------------------------------------------------------------------
# The audience is the check, for everyone


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds(), question=questions, subset=st.lists(st.integers(0, 11), max_size=8))
def test_the_audience_is_everyone_the_check_allows(
    runtime: Runtime,
    tenant: str,
    world: tuple[list[PurposeSpec], list[SubjectSpec]],
    question: tuple[int, str | None, str | None],
    subset: list[int],
) -> None:
    specs, people = world
    session, ctx = in_rolled_back_transaction(runtime, tenant)
    try:
        with frozen(NOW):
            made = build(ctx, specs, people)
            purpose = made[question[0] % len(made)]
            channel, topic = question[1], question[2]
            ids = list(
                session.scalars(
                    select(Subject.id)
                    .where(Subject.tenant_id == ctx.tenant_id)
                    .order_by(Subject.id)
                )
            )
            expected = [
                sid
                for sid in ids
                if gate.may(ctx, sid, purpose.slug, channel, topic=topic, audited=False).allowed
            ]
            event(f"allowed: {min(len(expected), 3)} or more" if expected else "allowed: none")
            result = gate_audience.audience(ctx, purpose.slug, channel, topic=topic)
            assert result.allowed == expected
            assert result.candidates == sum(p.status != SubjectStatus.ERASED.value for p in people)

            # Both SQL forms, whichever the database's `audience` uses.
            conds = gate_audience.audience_conditions(ctx.tenant_id, purpose, channel, topic, NOW)
            assert list(session.scalars(select(Subject.id).where(*conds).order_by(Subject.id))) == (
                expected
            )
            sets = gate_audience.audience_sets(ctx.tenant_id, purpose, channel, topic, NOW)
            assert (list(session.scalars(sets)) if sets is not None else []) == expected

            # A list of candidates (duplicates and all): the allowed among them, in order.
            listed = [ids[i] for i in subset if i < len(ids)]
            among = gate_audience.audience(
                ctx, purpose.slug, channel, topic=topic, subject_ids=listed
            )
            assert among.allowed == sorted(set(listed) & set(expected))
            assert among.candidates == len(set(listed))
    finally:
        session.rollback()
        session.close()


# ---------------------------------------------------------------------------------------------
# The check is what it was: the first implementation, one query per table


def reference_reasons(
    ctx: TenantContext,
    subject: Subject,
    purpose: Purpose,
    channel: str | None,
    topic: str | None,
    at: datetime,
    now: datetime,
) -> list[Reason]:
    """`gate.evaluate` as first written (commit a82f2d2), kept as the specification — with
    the rules added since: a partially erased subject is erased for every purpose but a legal
    obligation."""
    if subject.status == SubjectStatus.ERASED.value:
        return [Reason.SUBJECT_ERASED]
    if (
        subject.status == SubjectStatus.PARTIALLY_ERASED.value
        and purpose.lawful_basis != LawfulBasis.LEGAL_OBLIGATION.value
    ):
        return [Reason.SUBJECT_ERASED]
    reasons: list[Reason] = []
    basis = purpose.lawful_basis
    s = ctx.session
    key = (ctx.tenant_id, subject.id, purpose.id)
    if purpose.archived_at is not None and purpose.archived_at <= at:
        reasons.append(Reason.PURPOSE_ARCHIVED)
    if channel is not None and purpose.channels and channel not in purpose.channels:
        reasons.append(Reason.CHANNEL_NOT_ALLOWED)
    if subject.restricted_at is not None:
        reasons.append(Reason.RESTRICTED)
    if basis == LawfulBasis.CONSENT.value:
        granted: bool | None
        if at >= now:
            state = s.get(ConsentState, key)
            granted = None if state is None else state.granted
        else:
            action = s.scalar(
                select(ConsentRecord.action)
                .where(
                    ConsentRecord.tenant_id == ctx.tenant_id,
                    ConsentRecord.subject_id == subject.id,
                    ConsentRecord.purpose_id == purpose.id,
                    ConsentRecord.recorded_at <= at,
                )
                .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
                .limit(1)
            )
            granted = None if action is None else action == "grant"
        if granted is None:
            reasons.append(Reason.NO_CONSENT)
        elif not granted:
            reasons.append(Reason.CONSENT_WITHDRAWN)
    elif basis in gate.RELATIONSHIP_BASES:
        link = s.get(SubjectPurpose, key)
        if link is None or link.since > at:
            reasons.append(Reason.NO_BASIS)
        elif link.until is not None and link.until <= at:
            reasons.append(Reason.BASIS_ENDED)
    if basis in gate.OBJECTABLE_BASES or purpose.is_marketing:
        objection = s.get(Objection, key)
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
                s.scalars(
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
        kind = gate.ADDRESS_KIND.get(channel)
        if kind is not None:
            addresses = list(
                s.scalars(
                    select(SubjectIdentity.blind_index).where(
                        SubjectIdentity.tenant_id == ctx.tenant_id,
                        SubjectIdentity.subject_id == subject.id,
                        SubjectIdentity.kind == kind,
                    )
                )
            )
            if not addresses:
                reasons.append(Reason.NO_ADDRESS)
            elif purpose.is_marketing and s.scalar(
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
        and basis not in gate.NECESSARY_BASES
        and purposes.uses_sensitive_data(purpose)
    ):
        reasons.append(Reason.SENSITIVE_LIMITED)
    if (
        subject.is_child
        and subject.parental_consent_at is None
        and (basis == LawfulBasis.CONSENT.value or purpose.is_sale_or_sharing)
    ):
        reasons.append(Reason.CHILD_WITHOUT_PARENTAL_CONSENT)
    return reasons


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds(), question=questions, moment=st.sampled_from(MOMENTS))
def test_the_check_gives_the_reasons_of_the_first_implementation(
    runtime: Runtime,
    tenant: str,
    world: tuple[list[PurposeSpec], list[SubjectSpec]],
    question: tuple[int, str | None, str | None],
    moment: datetime | None,
) -> None:
    specs, people = world
    session, ctx = in_rolled_back_transaction(runtime, tenant)
    try:
        with frozen(NOW):
            made = build(ctx, specs, people)
            purpose = made[question[0] % len(made)]
            channel, topic = question[1], question[2]
            at = moment or NOW
            for subject in session.scalars(
                select(Subject).where(Subject.tenant_id == ctx.tenant_id)
            ):
                want = reference_reasons(ctx, subject, purpose, channel, topic, at, NOW)
                decision = gate.may(ctx, subject.id, purpose.slug, channel, topic=topic, at=moment)
                assert decision.reasons == want
                assert decision.allowed == (not want)
                by_id = gate.may(
                    ctx, str(subject.id), str(purpose.id), channel, topic=topic, at=moment
                )
                assert by_id.reasons == want
                assert gate.evaluate(ctx, subject, purpose, channel, topic, at, now=NOW) == want
    finally:
        session.rollback()
        session.close()


def test_errors_come_in_the_order_the_checks_are_made(runtime: Runtime, tenant: str) -> None:
    """Unknown subject before unknown purpose before unknown channel, as before."""
    from pledge.core.errors import InvalidInput, NotFound

    session, ctx = in_rolled_back_transaction(runtime, tenant)
    try:
        with frozen(NOW):
            made = build(ctx, [PurposeSpec("Consent", True, False, False, [], None)], [])
            real = new_id()
            session.add(Subject(tenant_id=ctx.tenant_id, id=real, created_at=NOW, updated_at=NOW))
            session.flush()
            cases: list[tuple[Any, str, str | None, type[Exception], str]] = [
                (uuid.uuid4(), "nope", "pigeon", NotFound, "no such subject"),
                ("not-a-uuid", made[0].slug, None, NotFound, "no such subject"),
                (uuid.uuid4(), made[0].slug, None, NotFound, "no such subject"),
                (real, "nope", "pigeon", NotFound, "no such purpose"),
                (real, made[0].slug, "pigeon", InvalidInput, "unknown channel"),
            ]
            for subject_id, purpose_slug, channel, error, message in cases:
                with pytest.raises(error, match=message):
                    gate.may(ctx, subject_id, purpose_slug, channel, topic="no-such-topic")
            # Then the topic: one the tenant does not have is refused, by both evaluations.
            for topic in ("no-such-topic", "News", "news "):
                with pytest.raises(InvalidInput, match="unknown topic"):
                    gate.may(ctx, real, made[0].slug, "email", topic=topic)
                with pytest.raises(InvalidInput, match="unknown topic"):
                    gate_audience.audience(ctx, made[0].slug, "email", topic=topic)
            with pytest.raises(InvalidInput, match="time zone"):
                gate.may(ctx, real, made[0].slug, at=datetime(2026, 1, 1))
    finally:
        session.rollback()
        session.close()
