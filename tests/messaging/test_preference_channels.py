"""The preference center's boxes are one channel of one topic each, while a consent covers
every channel of its purpose: ticking e-mail alone must not start texts, unticking texts must
not stop e-mails; and what the page shows is what the gate answers."""

from __future__ import annotations

import uuid

from pledge.access.context import TenantContext
from pledge.consent import service as consent
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.notices import service as notices
from pledge.preferences import service as preferences
from pledge.preferences import topics
from pledge.purposes import service as purposes
from pledge.purposes.service import PurposeInput
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput, create_subject

CHANNELS = ("email", "sms")


def _offers(ctx: TenantContext) -> uuid.UUID:
    """A consent-based marketing purpose sent by e-mail and SMS, and a person with both."""
    notices.create_notice(ctx, slug="offers-consent", kind="consent_wording", title="Offers")
    notices.publish_version(ctx, "offers-consent", text="Yes, send me offers.")
    purposes.create_purpose(
        ctx,
        PurposeInput(
            slug="offers",
            name="Offers",
            lawful_basis="Consent",
            data_categories=["user.contact"],
            channels=list(CHANNELS),
            is_marketing=True,
            consent_notice="offers-consent",
        ),
    )
    topics.create_topic(ctx, slug="offers", name="Offers", purpose="offers")
    return create_subject(
        ctx, [FieldInput("email", "q@example.com"), FieldInput("phone", "+447700900123")]
    )


def _save(ctx: TenantContext, sid: uuid.UUID, *channels: str) -> list[str]:
    ticked = frozenset((c, "offers") for c in channels)
    return preferences.apply_choices(
        ctx, sid, preferences.Choices(ticked, False, False), source="preference_center"
    )


def _shown(ctx: TenantContext, sid: uuid.UUID) -> dict[str, bool]:
    return {
        t.channel: t.subscribed
        for t in preferences.preference_view(ctx, sid).topics
        if t.topic == "offers"
    }


def _allowed(ctx: TenantContext, sid: uuid.UUID) -> dict[str, bool]:
    return {c: gate.may(ctx, sid, "offers", c, topic="offers").allowed for c in CHANNELS}


def test_each_channel_box_is_independent(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        sid = _offers(ctx)
        assert _shown(ctx, sid) == {"email": False, "sms": False}

        # E-mail ticked, SMS left off: the consent is given, texts stay off.
        assert _save(ctx, sid, "email") == ["subscribed to Offers by email"]
        assert _shown(ctx, sid) == {"email": True, "sms": False}
        assert _allowed(ctx, sid) == {"email": True, "sms": False}
        assert gate.may(ctx, sid, "offers", "sms", topic="offers").reasons == [Reason.TOPIC_OPT_OUT]
        assert sid not in gate_audience.audience(ctx, "offers", "sms", topic="offers").allowed

        # SMS ticked too, then e-mail unticked: texts go on, e-mails stop, the consent stays.
        _save(ctx, sid, "email", "sms")
        assert _allowed(ctx, sid) == {"email": True, "sms": True}
        assert _save(ctx, sid, "sms") == ["unsubscribed from Offers by email"]
        assert _shown(ctx, sid) == {"email": False, "sms": True}
        assert _allowed(ctx, sid) == {"email": False, "sms": True}
        offers = purposes.get_purpose(ctx, "offers").id
        assert consent.consent_states(ctx, sid)[offers] is True

        # Every box off: now the consent is withdrawn.
        assert _save(ctx, sid) == ["unsubscribed from Offers"]
        assert consent.consent_states(ctx, sid)[offers] is False
        assert _allowed(ctx, sid) == {"email": False, "sms": False}

        # Given again by SMS alone: e-mail (opted out before) stays off.
        _save(ctx, sid, "sms")
        assert _shown(ctx, sid) == {"email": False, "sms": True}
        assert _allowed(ctx, sid) == {"email": False, "sms": True}


def test_an_objection_shows_as_off_and_a_fresh_consent_here_lifts_it(
    runtime: Runtime, tenant: str
) -> None:
    from sqlalchemy import select

    from pledge.audit.models import AuditEntry
    from pledge.consent.models import ConsentRecord

    with runtime.tenant_context(tenant) as ctx:
        sid = _offers(ctx)
        purposes.create_purpose(
            ctx,
            PurposeInput(
                slug="tips",
                name="Tips",
                lawful_basis="LegitimateInterest",
                data_categories=["user.contact"],
                channels=["email"],
                is_marketing=True,
                legitimate_interest_note="to send tips about what you bought",
            ),
        )
        topics.create_topic(ctx, slug="tips", name="Tips", purpose="tips")
        consent.add_relationship(ctx, sid, "tips")  # a customer
        every = frozenset({("email", "offers"), ("sms", "offers"), ("email", "tips")})
        preferences.apply_choices(
            ctx, sid, preferences.Choices(every, False, False), source="preference_center"
        )
        assert gate.may(ctx, sid, "tips", "email", topic="tips").allowed
        # The person objects to both (Art. 21(3)): the gate stops them, the page says so.
        consent.record_objection(ctx, sid, "offers")
        consent.record_objection(ctx, sid, "tips")
        assert gate.may(ctx, sid, "tips", "email", topic="tips").reasons == [Reason.OBJECTED]
        view = preferences.preference_view(ctx, sid)
        assert {(t.topic, t.channel): t.subscribed for t in view.topics} == {
            ("offers", "email"): False,
            ("offers", "sms"): False,
            ("tips", "email"): False,
        }
        assert all(t.objected for t in view.topics)

    with runtime.tenant_context(tenant) as ctx:
        # Ticking the legitimate-interest topic gives nothing to lift the objection with.
        ticked = frozenset({("email", "offers"), ("email", "tips")})
        changes = preferences.apply_choices(
            ctx, sid, preferences.Choices(ticked, False, False), source="preference_center"
        )
        # Giving the consent again, by e-mail only, lifts the objection to that purpose.
        assert changes == ["subscribed to Offers by email"]
        assert _shown(ctx, sid) == {"email": True, "sms": False}
        assert _allowed(ctx, sid) == {"email": True, "sms": False}
        assert gate.may(ctx, sid, "tips", "email", topic="tips").reasons == [Reason.OBJECTED]
        offers = purposes.get_purpose(ctx, "offers").id
        last = ctx.session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.subject_id == sid, ConsentRecord.purpose_id == offers)
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        ).first()
        assert last is not None
        assert (last.action, last.method) == ("grant", "preference_center")
        lifted = [
            e.details
            for e in ctx.session.scalars(
                select(AuditEntry).where(AuditEntry.event == "preference.changed")
            )
            if e.details.get("change") == "objection_lifted"
        ]
        assert len(lifted) == 1 and lifted[0]["purpose"] == "offers"
        assert lifted[0]["consent_record_id"] == str(last.id)
