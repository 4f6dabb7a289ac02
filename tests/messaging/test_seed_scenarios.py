"""The seeds' promises about unsubscribing and marketing, kept end to end: the link in the
message, the gate's next answer, and what must go on regardless."""

from __future__ import annotations

import uuid

from pledge.access.context import TenantContext
from pledge.consent import service as consent
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.mail.backends import MemoryBackend
from pledge.preferences import service as preferences
from pledge.preferences import tokens, topics
from pledge.purposes import service as purposes
from pledge.purposes.service import PurposeInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from tests.conftest import api_client, make_api_token
from tests.messaging.conftest import anonymous, follow_status, person, subscribe, unsubscribe_url


def _one_click(runtime: Runtime, url: str) -> None:
    r = anonymous(runtime).post(url, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200


def _link(runtime: Runtime, tenant: str, subject_id: uuid.UUID, topic: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        return tokens.issue_token(ctx, subject_id, "email", topic)


def test_clik_newsletter_consent_ends_with_the_unsubscribe_link(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    """Seed 004: "your consent which may be withdrawn at any time by unsubscribing from the
    newsletter" — the link at the bottom of the newsletter."""
    sid = subscribe(runtime, clik_tenant, "reader@example.com")
    client = api_client(runtime, make_api_token(runtime, clik_tenant))
    campaign = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Newsletter",
            "purpose": "newsletter",
            "topic": "newsletter",
            "subject_line": "News",
            "body": "News.",
        },
    ).json()
    assert client.post(f"/api/v1/campaigns/{campaign['id']}/send").json()["sent"] == 1
    (message,) = mailbox.sent
    assert unsubscribe_url(message) in message.get_content()  # at the bottom of the newsletter
    _one_click(runtime, unsubscribe_url(message))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email").reasons == [Reason.CONSENT_WITHDRAWN]
        methods = [e.record.method for e in consent.timeline(ctx, sid)]
        assert methods == ["web_form", "unsubscribe"]


def test_clik_status_updates_stop_by_unsubscribing(runtime: Runtime, clik_tenant: str) -> None:
    """Seed 004: status updates rest on a legitimate interest "which may be withdrawn at any
    time by unsubscribing from the status updates"."""
    sid = follow_status(runtime, clik_tenant, "ops@example.com")
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").allowed
    _one_click(runtime, _link(runtime, clik_tenant, sid, "status"))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "status-updates", "email", topic="status").reasons == [
            Reason.TOPIC_OPT_OUT
        ]
        assert consent.timeline(ctx, sid) == []  # nothing to withdraw: it was never consent


def test_clik_marketing_preferences_are_still_recorded_after_the_opt_out(
    runtime: Runtime, clik_tenant: str
) -> None:
    """Seed 004: "for our legal obligation to record your marketing preferences" — opting out
    of marketing does not stop that purpose: the opt-out itself is what is recorded."""
    with runtime.tenant_context(clik_tenant) as ctx:
        buyer = subjects.create_subject(ctx, person("buyer@example.com"))
        consent.add_relationship(ctx, buyer, "product-marketing")
    _one_click(runtime, _link(runtime, clik_tenant, buyer, "*"))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, buyer, "product-marketing", "email").reasons == [
            Reason.MARKETING_OPT_OUT
        ]
        # A legal obligation: no relationship needed, no opt-out applies.
        assert gate.may(ctx, buyer, "marketing-preferences").allowed
        assert [(o.channel, o.topic) for o in preferences.opt_outs(ctx, buyer)] == [("email", "*")]
        # Post is another channel: the e-mail link stopped e-mail only (seed 004 lists post
        # separately: "telling us to no longer send you marketing by post").
        assert gate.may(ctx, buyer, "product-marketing", "post").allowed


def _one_crm(ctx: TenantContext) -> None:
    """1CRM (seed 001): promotions on a legitimate interest, and business-essential mail."""
    purposes.create_purpose(
        ctx,
        PurposeInput(
            slug="promotions",
            name="Updates on promotions and events",
            lawful_basis="LegitimateInterest",
            channels=["email"],
            is_marketing=True,
            legitimate_interest_note="to tell users about our products and events",
        ),
    )
    purposes.create_purpose(
        ctx,
        PurposeInput(
            slug="administrative",
            name="Business-essential and administrative messages about the Service",
            lawful_basis="Contract",
            channels=["email"],
        ),
    )
    topics.create_topic(ctx, slug="promotions", name="Promotions", purpose="promotions")
    topics.create_topic(ctx, slug="service", name="Service messages", purpose="administrative")


def test_one_crm_commercial_opt_out_leaves_business_essential_messages(
    runtime: Runtime, tenant: str, public_origin: str, mailbox: MemoryBackend
) -> None:
    """Seed 001 §5.3: "even after you opt-out from receiving commercial messages from us, you
    will continue to receive business-essential and administrative messages"; and where the
    seed allows ten business days, the opt-out applies at once."""
    with runtime.tenant_context(tenant) as ctx:
        _one_crm(ctx)
        user = subjects.create_subject(ctx, person("user@example.com"))
        consent.add_relationship(ctx, user, "promotions")
        consent.add_relationship(ctx, user, "administrative")
    _one_click(runtime, _link(runtime, tenant, user, "*"))
    client = api_client(runtime, make_api_token(runtime, tenant))
    sent = {}
    for purpose, topic in (("promotions", "promotions"), ("administrative", "service")):
        campaign = client.post(
            "/api/v1/campaigns",
            json={
                "name": topic,
                "purpose": purpose,
                "topic": topic,
                "subject_line": topic,
                "body": "Text.",
            },
        ).json()
        sent[topic] = client.post(f"/api/v1/campaigns/{campaign['id']}/send").json()["sent"]
    assert sent == {"promotions": 0, "service": 1}
    assert [m["Subject"] for m in mailbox.sent] == ["service"]
