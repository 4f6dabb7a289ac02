"""Scenarios from the seeds, through the gate."""

from __future__ import annotations

import pytest

from pledge.consent import intake
from pledge.consent.intake import ConsentChoice
from pledge.core.errors import InvalidInput
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.preferences import service as preferences
from pledge.presets import clik
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput


@pytest.fixture
def clik_tenant(runtime: Runtime, tenant: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    return tenant


def _person(email: str) -> list[FieldInput]:
    return [FieldInput("email", email), FieldInput("first_name", "Sam", "user.name.first")]


def test_clik_newsletter_needs_consent_and_stops_on_withdrawal(
    runtime: Runtime, clik_tenant: str
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        unticked = intake.collect(
            ctx, "newsletter", _person("a@example.com"), [ConsentChoice("newsletter", False)]
        )
        ticked = intake.collect(
            ctx, "newsletter", _person("b@example.com"), [ConsentChoice("newsletter", True)]
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, unticked.subject_id, "newsletter", "email").reasons == [
            Reason.NO_CONSENT
        ]
        assert gate.may(ctx, ticked.subject_id, "newsletter", "email").allowed
        assert gate_audience.audience(ctx, "newsletter", "email").allowed == [ticked.subject_id]
        preferences.opt_out(ctx, ticked.subject_id, "email", "newsletter", "unsubscribe_link")
        # The very next audience, in the same transaction, leaves the reader out.
        assert gate_audience.audience(ctx, "newsletter", "email", topic="newsletter").allowed == []
        decision = gate.may(ctx, ticked.subject_id, "newsletter", "email", topic="newsletter")
        assert Reason.TOPIC_OPT_OUT in decision.reasons


def test_a_prechecked_box_is_refused_and_nothing_is_written(
    runtime: Runtime, clik_tenant: str
) -> None:
    with (
        pytest.raises(InvalidInput, match="pre-checked"),
        runtime.tenant_context(clik_tenant) as ctx,
    ):
        intake.collect(
            ctx,
            "newsletter",
            _person("c@example.com"),
            [ConsentChoice("newsletter", True, prechecked=True)],
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        from pledge.subjects import reading

        assert reading.count_subjects(ctx) == {}


def test_clik_status_updates_rest_on_legitimate_interest_and_stop_by_unsubscribe(
    runtime: Runtime, clik_tenant: str
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        sub = intake.collect(ctx, "status-page", _person("d@example.com")).subject_id
        stranger = intake.collect(ctx, "newsletter", _person("e@example.com")).subject_id
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sub, "status-updates", "email", topic="status").allowed
        assert gate.may(ctx, stranger, "status-updates", "email").reasons == [Reason.NO_BASIS]
        preferences.opt_out(ctx, sub, "email", "status", "unsubscribe_link")
        assert gate.may(ctx, sub, "status-updates", "email", topic="status").reasons == [
            Reason.TOPIC_OPT_OUT
        ]
        assert gate_audience.audience(ctx, "status-updates", "email", topic="status").allowed == []


def test_a_partially_erased_subject_is_used_only_under_a_legal_obligation(
    runtime: Runtime, clik_tenant: str
) -> None:
    """An erasure that keeps the invoices (billing, a legal duty) leaves the consents and the
    relationships in place: the gate must treat the person as erased for everything else."""
    from pledge.subjects import erasure

    with runtime.tenant_context(clik_tenant) as ctx:
        fields = [
            *_person("p@example.com"),
            FieldInput("invoice", "INV-1", "user.financial", retention_class="billing"),
        ]
        sid = intake.collect(
            ctx, "newsletter", fields, [ConsentChoice("newsletter", True)]
        ).subject_id
        intake.collect(ctx, "purchase", _person("p@example.com"))
        intake.collect(ctx, "product-interest", _person("p@example.com"))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert erasure.erase_subject(ctx, sid, keep_classes=["billing"]).status == (
            "partially_erased"
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        for purpose, channel in [
            ("newsletter", None),
            ("product-marketing", "post"),
            ("product-marketing", None),
            ("record-keeping", "post"),
            ("provide-service", None),
        ]:
            decision = gate.may(ctx, sid, purpose, channel)
            assert decision.reasons == [Reason.SUBJECT_ERASED], (purpose, channel)
            assert sid not in gate_audience.audience(ctx, purpose, channel).allowed, (
                purpose,
                channel,
            )
            listed = gate_audience.audience(ctx, purpose, channel, subject_ids=[sid])
            assert listed.allowed == [], (purpose, channel)
        # What was kept, was kept under a legal duty: that use still passes.
        assert gate.may(ctx, sid, "marketing-preferences").allowed
        assert gate_audience.audience(ctx, "marketing-preferences").allowed == [sid]
