"""The lawful basis of a purpose relied on stays put; consent state writes that race keep to
the ledger; an opt-out of sale is never a reason to erase."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from pledge.access.context import TenantContext
from pledge.consent import intake
from pledge.consent import service as consent
from pledge.consent.intake import ConsentChoice
from pledge.consent.models import ConsentAction, ConsentMethod
from pledge.consent.service import ConsentInput
from pledge.core.errors import Conflict, InvalidInput
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.purposes.models import Purpose
from pledge.purposes.service import PurposeInput
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput


@pytest.fixture
def clik_tenant(runtime: Runtime, tenant: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    return tenant


def _person(email: str) -> list[FieldInput]:
    return [FieldInput("email", email), FieldInput("first_name", "Sam", "user.name.first")]


def _as_input(p: Purpose, **changes: object) -> PurposeInput:
    fields: dict[str, object] = {
        "slug": p.slug,
        "name": p.name,
        "lawful_basis": p.lawful_basis,
        "data_categories": p.data_categories,
        "channels": p.channels,
        "is_marketing": p.is_marketing,
        "is_sale_or_sharing": p.is_sale_or_sharing,
        "legitimate_interest_note": p.legitimate_interest_note,
    }
    return PurposeInput(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("new_basis", ["LegalObligation", "PublicInterest", "VitalInterest"])
def test_a_purpose_relied_on_keeps_its_basis_so_a_withdrawal_stands(
    runtime: Runtime, clik_tenant: str, new_basis: str
) -> None:
    """EDPB 05/2020 §121-123: a controller may not swap consent for another basis after the
    fact; a person who withdrew must not be mailed again because an admin edited the basis."""
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(
            ctx, "newsletter", _person("w@example.com"), [ConsentChoice("newsletter", True)]
        ).subject_id
    with runtime.tenant_context(clik_tenant) as ctx:
        consent.record_consent(
            ctx,
            sid,
            ConsentInput("newsletter", ConsentAction.WITHDRAW.value, ConsentMethod.API.value),
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "newsletter")
        with pytest.raises(Conflict, match="create a new purpose"):
            purposes.update_purpose(
                ctx, "newsletter", _as_input(p, lawful_basis=new_basis, is_marketing=False)
            )
    with runtime.tenant_context(clik_tenant) as ctx:
        assert purposes.get_purpose(ctx, "newsletter").lawful_basis == "Consent"
        assert not gate.may(ctx, sid, "newsletter", "email").allowed
        assert sid not in gate_audience.audience(ctx, "newsletter", "email").allowed


@pytest.mark.parametrize("held_by", ["relationship", "objection"])
def test_a_relationship_or_objection_also_fixes_the_basis(
    runtime: Runtime, clik_tenant: str, held_by: str
) -> None:
    """An objection to a legitimate-interest purpose must not vanish into a new basis either."""
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(ctx, "status-page", _person("o@example.com")).subject_id
        consent.add_relationship(ctx, sid, "status-updates")
        if held_by == "objection":
            consent.end_relationship(ctx, sid, "status-updates")
            consent.record_objection(ctx, sid, "status-updates")
    with runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "status-updates")
        with pytest.raises(Conflict, match="create a new purpose"):
            purposes.update_purpose(ctx, p.slug, _as_input(p, lawful_basis="PublicInterest"))
        # Other changes to the purpose are still fine.
        renamed = purposes.update_purpose(ctx, p.slug, _as_input(p, name="Status e-mails"))
        assert renamed.name == "Status e-mails" and renamed.lawful_basis == p.lawful_basis


@pytest.mark.parametrize(
    "basis",
    ["LegalObligation", "VitalInterest", "PublicInterest", "OfficialAuthorityOfController"],
)
def test_marketing_cannot_rest_on_a_basis_that_needs_no_consent_or_interest(
    runtime: Runtime, clik_tenant: str, basis: str
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        with pytest.raises(InvalidInput, match="marketing"):
            purposes.create_purpose(
                ctx, PurposeInput(slug="promo", name="Promo", lawful_basis=basis, is_marketing=True)
            )
        p = purposes.get_purpose(ctx, "status-updates")
        with pytest.raises(InvalidInput, match="marketing"):
            purposes.update_purpose(
                ctx, p.slug, _as_input(p, is_marketing=True, lawful_basis=basis)
            )
        assert purposes.find_purpose(ctx, "promo") is None


def test_the_api_answers_a_change_of_a_relied_on_basis_with_409(
    runtime: Runtime, clik_tenant: str, client: TestClient
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        intake.collect(
            ctx, "newsletter", _person("a@example.com"), [ConsentChoice("newsletter", True)]
        )
    body = {
        "name": "Newsletter",
        "lawful_basis": "LegitimateInterest",
        "legitimate_interest_note": "we like mailing",
        "data_categories": ["user.contact.email"],
        "channels": ["email"],
        "is_marketing": True,
    }
    response = client.put("/api/v1/purposes/newsletter", json=body)
    assert response.status_code == 409, response.text
    assert "create a new purpose" in response.json()["detail"]
    listed = client.get("/api/v1/purposes/newsletter").json()
    assert listed["lawful_basis"] == "Consent"


def _grant(slug: str, sid: uuid.UUID) -> Callable[[TenantContext], int]:
    def step(ctx: TenantContext) -> int:
        from pledge.consent import recording

        version = recording.wording_in_force(ctx, "newsletter")
        assert version is not None
        consent.record_consent(
            ctx, sid, ConsentInput("newsletter", "grant", "web_form", version.id)
        )
        return 1

    return step


def test_a_double_submitted_first_consent_is_recorded_not_a_500(
    runtime: Runtime, clik_tenant: str
) -> None:
    """Two grants at once for a person with no consent state yet (a double click on the
    form): the second must not fail on the state row's primary key."""
    from pledge.core.clock import utcnow
    from tests.conftest import Second

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("a race between two writers: PostgreSQL")
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(ctx, "status-page", _person("r@example.com")).subject_id
    with runtime.tenant_context(clik_tenant) as ctx:
        _grant(clik_tenant, sid)(ctx)
        second = Second(runtime, utcnow(), clik_tenant, _grant(clik_tenant, sid))
    assert second.result() == 1
    with runtime.tenant_context(clik_tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email").allowed


def test_the_consent_state_follows_the_ledger_when_a_grant_and_a_withdrawal_race(
    runtime: Runtime, clik_tenant: str
) -> None:
    """A grant stamped at t1 that writes the state after a withdrawal stamped at t2 > t1:
    the ledger's last word is the withdrawal, so the state (what the gate reads now) must
    say withdrawn too — not a live consent the ledger cannot show."""
    from datetime import timedelta

    from pledge.consent.models import ConsentState
    from pledge.core.clock import frozen, utcnow
    from tests.conftest import Second

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("a race between two writers: PostgreSQL")
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(
            ctx, "newsletter", _person("q@example.com"), [ConsentChoice("newsletter", True)]
        ).subject_id
        consent.record_consent(ctx, sid, ConsentInput("newsletter", "withdraw", "api"))
    t1 = utcnow() + timedelta(seconds=1)
    t2 = t1 + timedelta(seconds=1)
    with frozen(t2), runtime.tenant_context(clik_tenant) as ctx:
        consent.record_consent(ctx, sid, ConsentInput("newsletter", "withdraw", "api"))
        ctx.session.flush()
        second = Second(runtime, t1, clik_tenant, _grant(clik_tenant, sid))
    second.result()
    with frozen(t2 + timedelta(seconds=5)), runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "newsletter")
        state = ctx.session.get(ConsentState, (ctx.tenant_id, sid, p.id))
        assert state is not None
        now = gate.may(ctx, sid, "newsletter", "email")
        just_before = gate.may(ctx, sid, "newsletter", "email", at=t2 + timedelta(seconds=4))
        assert now.allowed == just_before.allowed, (now.reasons, just_before.reasons)
        assert not state.granted


def test_a_gpc_opt_out_does_not_put_the_person_on_the_erasure_list(
    runtime: Runtime, clik_tenant: str
) -> None:
    """GPC is an opt-out of sale/sharing, never a deletion request (STANDARDS.md): a person
    who consented to an ad-sharing purpose and then browsed with GPC still holds that consent
    (and the opt-out must be kept to be honoured); the hygiene report must not offer them up
    for erasure as 'held with no lawful basis'."""
    from pledge.consent import privacy_state
    from pledge.gate import hygiene

    with runtime.tenant_context(clik_tenant) as ctx:
        purposes.create_purpose(
            ctx,
            PurposeInput(
                slug="ad-sharing",
                name="Share with ad partners",
                lawful_basis="Consent",
                data_categories=["user.contact.email"],
                is_sale_or_sharing=True,
                consent_notice="newsletter-consent",
            ),
        )
        purposes.save_collection_point(
            ctx,
            purposes.CollectionPointInput(
                slug="ads",
                name="Ads",
                kind="web_form",
                purposes=[purposes.CollectsFor("ad-sharing")],
            ),
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(
            ctx, "ads", _person("g@example.com"), [ConsentChoice("ad-sharing", True)]
        ).subject_id
    with runtime.tenant_context(clik_tenant) as ctx:
        assert sid not in hygiene.report(ctx).subject_ids
        privacy_state.set_sale_opt_out(ctx, sid, True, "gpc")
    with runtime.tenant_context(clik_tenant) as ctx:
        assert sid not in hygiene.report(ctx).subject_ids
