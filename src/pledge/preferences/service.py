"""A subject's preferences: opt-outs per channel and topic (or every marketing topic), and
what the preference center shows and changes.

Marketing or service follows from a topic's purpose. An opt-out of all marketing on a channel
is the topic `*`: it stops every marketing purpose there, while service messages (a contract,
a legal obligation, status updates on a legitimate interest) still go — seed 001 §5.3:
"business-essential and administrative messages" continue; seed 000 likewise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from pledge.access.context import TenantContext
from pledge.access.scoping import for_tenant
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import privacy_state
from pledge.consent import service as consent
from pledge.consent.models import ConsentAction, ConsentMethod, ConsentState
from pledge.core.clock import utcnow
from pledge.core.db import insert_new
from pledge.core.errors import InvalidInput
from pledge.notices import service as notices
from pledge.preferences import topics
from pledge.preferences.models import ALL_MARKETING, ChannelOptOut
from pledge.purposes import service as purposes
from pledge.purposes.models import Channel, LawfulBasis, Purpose


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
    # One statement, not a check then an insert: two opt-outs at once (the mail provider's
    # one-click POST and the person's own click) would otherwise both insert, and the second
    # fail on the primary key. The one that inserted audits; the other finds it already so.
    inserted = ctx.session.execute(
        insert_new(
            ctx.session,
            ChannelOptOut,
            tenant_id=ctx.tenant_id,
            subject_id=subject.id,
            channel=channel,
            topic=topic,
            source=source[:24],
            created_at=utcnow(),
        ).returning(ChannelOptOut.topic)
    ).first()
    if inserted is None:
        return False
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


# ---------------------------------------------------------------------------------------------
# Channels × topics: what a person receives, and changing it from the preference center

# The channels a message can go out on (web is personalisation, not messages).
MESSAGING_CHANNELS: tuple[str, ...] = (
    Channel.EMAIL.value,
    Channel.SMS.value,
    Channel.PHONE.value,
    Channel.POST.value,
)


def topic_channels(purpose: Purpose) -> list[str]:
    """The channels a topic's messages may use: its purpose's, or all when it names none."""
    if not purpose.channels:
        return list(MESSAGING_CHANNELS)
    return [c for c in MESSAGING_CHANNELS if c in purpose.channels]


@dataclass(frozen=True)
class TopicState:
    topic: str
    name: str
    description: str
    purpose: str
    channel: str
    marketing: bool
    consent_based: bool
    subscribed: bool
    # The consent wording in force, shown next to a consent-based topic: turning it on is
    # giving that consent.
    wording: str | None
    # The person objected to the purpose (GDPR Art. 21): off, whatever else holds. Giving a
    # consent-based topic's consent again here lifts the objection.
    objected: bool = False


@dataclass(frozen=True)
class ConsentInForce:
    purpose: str
    name: str
    since: datetime


@dataclass(frozen=True)
class PreferenceView:
    subject_id: uuid.UUID
    topics: list[TopicState]
    marketing_off: dict[str, bool]  # channel → every marketing topic stopped (`*`)
    sale_opt_out: bool
    sale_opt_out_source: str | None
    consents: list[ConsentInForce]

    @property
    def all_marketing_off(self) -> bool:
        return all(self.marketing_off.values())

    def by_channel(self) -> dict[str, list[TopicState]]:
        out: dict[str, list[TopicState]] = {}
        for state in self.topics:
            out.setdefault(state.channel, []).append(state)
        return out


def preference_view(ctx: TenantContext, subject_id: uuid.UUID | str) -> PreferenceView:
    """Every topic on every channel it uses, on or off for this subject, with the reasons
    that decide it: an opt-out of the topic, of all marketing on the channel (`*`), an
    objection to its purpose, or, for a consent-based topic, the consent in force — the
    person's own choices (not the gate's other reasons: a restriction, a suppression…)."""
    subject = consent.active_subject(ctx, subject_id)
    outs = {(o.channel, o.topic) for o in opt_outs(ctx, subject.id)}
    granted = {pid for pid, g in consent.consent_states(ctx, subject.id).items() if g}
    objected = consent.objected_purposes(ctx, subject.id)
    states: list[TopicState] = []
    wordings: dict[uuid.UUID, str | None] = {}
    for topic, purpose in topics.list_topics(ctx):
        if purpose.archived_at is not None:
            continue
        consent_based = purpose.lawful_basis == LawfulBasis.CONSENT.value
        if consent_based and purpose.id not in wordings:
            wordings[purpose.id] = _wording_text(ctx, purpose)
        for channel in topic_channels(purpose):
            off = (channel, topic.slug) in outs or (
                purpose.is_marketing and (channel, ALL_MARKETING) in outs
            )
            if (consent_based and purpose.id not in granted) or purpose.id in objected:
                off = True
            states.append(
                TopicState(
                    topic.slug,
                    topic.name,
                    topic.description,
                    purpose.slug,
                    channel,
                    purpose.is_marketing,
                    consent_based,
                    not off,
                    wordings.get(purpose.id) if consent_based else None,
                    purpose.id in objected,
                )
            )
    in_force = ctx.session.execute(
        for_tenant(select(Purpose, ConsentState.updated_at), Purpose, ctx.tenant_id)
        .join(
            ConsentState,
            (ConsentState.tenant_id == Purpose.tenant_id) & (ConsentState.purpose_id == Purpose.id),
        )
        .where(ConsentState.subject_id == subject.id, ConsentState.granted.is_(True))
        .order_by(Purpose.name)
    ).all()
    return PreferenceView(
        subject.id,
        states,
        {c: (c, ALL_MARKETING) in outs for c in MESSAGING_CHANNELS},
        subject.sale_opt_out_at is not None,
        subject.sale_opt_out_source,
        [ConsentInForce(p.slug, p.name, since) for p, since in in_force],
    )


def read_preferences(ctx: TenantContext, subject_id: uuid.UUID | str) -> PreferenceView:
    """The preference view for a reader (the API, the CLI, the person's own preference
    center): a read of the subject's data, audited as the consent timeline is."""
    view = preference_view(ctx, subject_id)
    audit.record(
        ctx,
        AuditEvent.SUBJECT_VIEWED,
        subject_id=view.subject_id,
        details={
            "part": "preferences",
            "topics": len(view.topics),
            "consents": len(view.consents),
        },
    )
    return view


def _wording_text(ctx: TenantContext, purpose: Purpose) -> str | None:
    if purpose.consent_notice_id is None:
        return None
    version = notices.current_version(ctx, purpose.consent_notice_id)
    return version.text if version else None


@dataclass(frozen=True)
class Choices:
    """What the person left switched on in the preference center."""

    topics_on: frozenset[tuple[str, str]]  # (channel, topic)
    all_marketing_off: bool
    sale_opt_out: bool


def apply_choices(
    ctx: TenantContext, subject_id: uuid.UUID | str, choices: Choices, *, source: str
) -> list[str]:
    """Make the subject's preferences what the form shows, changing only what differs.
    Returns what changed, in words for the page. Each change writes its own audit entry.

    The person is held first (`privacy_state.hold_person`): a change audited (an opt-out
    lifted) comes before one that writes their row (the opt-out of sale) or a row referring
    to it, and the lock order on PostgreSQL is the person's row, then the audit chain's head
    — a change of the privacy state holds them, then audits, and the two waited for each
    other (a deadlock)."""
    privacy_state.hold_person(ctx, subject_id)
    subject = consent.active_subject(ctx, subject_id)
    changes: list[str] = []
    view = preference_view(ctx, subject.id)
    if choices.all_marketing_off and not view.all_marketing_off:
        for channel, off in view.marketing_off.items():
            if not off:
                opt_out(ctx, subject.id, channel, ALL_MARKETING, source)
        changes.append("stopped all marketing")
    elif not choices.all_marketing_off:
        # Lift `*` where it is on everywhere (the switch was turned off), or on a channel
        # where the person switched a marketing topic on; the topics left off get their own
        # opt-out below, so nothing starts that the form showed as off.
        marketing = {(s.channel, s.topic) for s in view.topics if s.marketing}
        wanted = {channel for channel, _topic in choices.topics_on & marketing}
        lifted = [
            c
            for c, off in view.marketing_off.items()
            if off and (view.all_marketing_off or c in wanted)
        ]
        for channel in lifted:
            opt_in(ctx, subject.id, channel, ALL_MARKETING, source)
        if lifted:
            changes.append("marketing no longer stopped as a whole")
            view = preference_view(ctx, subject.id)
    # The switch for all marketing decides the marketing topics when it is on.
    decided = [s for s in view.topics if not (s.marketing and choices.all_marketing_off)]
    # A consent covers every channel of its purpose, a box is one channel of one topic: the
    # consent is given when any box of the purpose is ticked and withdrawn only when none is;
    # a box left off under a consent given is an opt-out of that topic on that channel.
    consented = {
        s.purpose for s in decided if s.consent_based and (s.channel, s.topic) in choices.topics_on
    }
    for state in decided:
        if (state.channel, state.topic) in choices.topics_on and not state.subscribed:
            if state.objected and not state.consent_based:
                continue  # no consent to give here: the objection stands (staff can lift it)
            _switch_on(ctx, subject.id, state, source)
            changes.append(f"subscribed to {state.name} by {state.channel}")
    withdrawn: set[str] = set()
    for state in decided:
        if (state.channel, state.topic) in choices.topics_on:
            continue
        if state.consent_based and state.purpose not in consented:
            if state.subscribed and state.purpose not in withdrawn:
                _withdraw(ctx, subject.id, state.purpose)
                withdrawn.add(state.purpose)
                changes.append(f"unsubscribed from {state.name}")
            continue
        if not state.subscribed and not state.consent_based:
            continue  # off, and stays off
        # On, or off only for want of the consent just given: an opt-out of its own.
        if state.marketing and view.marketing_off[state.channel]:
            continue  # off on this channel as a whole, and it stays so
        if opt_out(ctx, subject.id, state.channel, state.topic, source) and state.subscribed:
            changes.append(f"unsubscribed from {state.name} by {state.channel}")
    if choices.sale_opt_out != view.sale_opt_out:
        privacy_state.set_sale_opt_out(ctx, subject.id, choices.sale_opt_out, source)
        changes.append(
            "opted out of sale and sharing" if choices.sale_opt_out else "allowed sale and sharing"
        )
    return changes


def _switch_on(ctx: TenantContext, subject_id: uuid.UUID, state: TopicState, source: str) -> None:
    opt_in(ctx, subject_id, state.channel, state.topic, source)
    if not state.consent_based:
        return
    purpose = purposes.get_purpose(ctx, state.purpose)
    objected = purpose.id in consent.objected_purposes(ctx, subject_id)
    if consent.consent_states(ctx, subject_id).get(purpose.id) and not objected:
        return
    version = (
        notices.current_version(ctx, purpose.consent_notice_id)
        if purpose.consent_notice_id
        else None
    )
    if version is None:
        raise InvalidInput(f"there is no consent wording in force for {state.name!r}")
    # The wording was shown next to the switch: ticking it is giving this consent — afresh,
    # and it lifts the person's objection to the purpose (their later, explicit choice).
    record = consent.record_consent(
        ctx,
        subject_id,
        consent.ConsentInput(
            purpose.slug,
            ConsentAction.GRANT.value,
            ConsentMethod.PREFERENCE_CENTER.value,
            version.id,
        ),
    )
    if objected:
        consent.lift_objection_by_consent(ctx, subject_id, record, source)


def _withdraw(ctx: TenantContext, subject_id: uuid.UUID, purpose_slug: str) -> None:
    consent.record_consent(
        ctx,
        subject_id,
        consent.ConsentInput(
            purpose_slug, ConsentAction.WITHDRAW.value, ConsentMethod.PREFERENCE_CENTER.value
        ),
    )


def withdraw_consent(ctx: TenantContext, subject_id: uuid.UUID | str, purpose_slug: str) -> bool:
    """One-click withdrawal of a consent in force (GDPR Art. 7(3)). False if none was."""
    subject = consent.active_subject(ctx, subject_id)
    purpose = purposes.get_purpose(ctx, purpose_slug)
    if not consent.consent_states(ctx, subject.id).get(purpose.id):
        return False
    _withdraw(ctx, subject.id, purpose.slug)
    return True
