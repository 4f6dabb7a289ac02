"""A tenant's children's rules (LAW.md "Children"; seeds 000, 001 §10, 003): the age under
which a person is a child, read from a date of birth wherever one is stored, and what the gate
refuses a child without a parent's consent — their consent and a sale (the default), every use
but what the law needs, or that and erasure at once. The audience applies the same rule as the
single check under every policy — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake, privacy_state
from pledge.consent import service as consent
from pledge.core.clock import frozen
from pledge.core.errors import InvalidInput
from pledge.gate import audience as gate_audience
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.presets import click_and_resolve, clik
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis
from pledge.purposes.service import PurposeInput
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.models import Subject, SubjectStatus
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from pledge.tenants.models import ChildrenPolicy
from tests.cli.test_cli import run
from tests.conftest import api_client, make_api_token, make_tenant
from tests.consent.test_gate_equivalence import (
    NOW,
    PurposeSpec,
    SubjectSpec,
    build,
    in_rolled_back_transaction,
    questions,
    worlds,
)

DOB = "user.demographic.date_of_birth"
TAX = "Tax law: billing information kept 7 years"


def _purpose(ctx: Any, slug: str, basis: str, **kw: Any) -> None:
    if basis == LawfulBasis.LEGITIMATE_INTEREST.value:
        kw.setdefault("legitimate_interest_note", "to tell users about our products and events")
    purposes.create_purpose(
        ctx,
        PurposeInput(slug=slug, name=slug.title(), lawful_basis=basis, channels=["email"], **kw),
    )


def _child(ctx: Any, email: str, *purpose_slugs: str, **fields: str) -> Any:
    """A subject in a relationship with each purpose, then learnt to be a child without a
    parent's consent."""
    extra = [FieldInput(n, v, "user.financial" if n == "iban" else DOB) for n, v in fields.items()]
    sid = subjects.create_subject(ctx, [FieldInput("email", email), *extra])
    for slug in purpose_slugs:
        consent.add_relationship(ctx, sid, slug)
    privacy_state.set_child(ctx, sid, is_child=True, parental_consent=False)
    return sid


def _changes(ctx: Any, sid: Any) -> list[tuple[str, str]]:
    return [
        (e.details["change"], e.details["source"])
        for e in audit.list_entries(ctx, subject_id=sid, limit=100)
        if e.event == AuditEvent.PRIVACY_STATE_CHANGED.value
    ]


# ---------------------------------------------------------------------------------------------
# The age, from a date of birth


def test_a_person_under_16_by_their_date_of_birth_is_not_mailed_on_their_own_consent(
    runtime: Runtime, tenant: str
) -> None:
    """Seed 000, Information From Children: "OneClickSystem does not intentionally collect
    or use information from children under the age of 16." The date of birth given on the
    sign-up form makes the person a child: their own tick is no consent."""
    with frozen(datetime(2026, 3, 1, 9, tzinfo=UTC)), runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        collected = intake.collect(
            ctx,
            "newsletter",
            [
                FieldInput("email", "kid@example.com"),
                FieldInput("date_of_birth", "2013-01-15", DOB),
            ],
            [intake.ConsentChoice("newsletter", True)],
        )
        decision = gate.may(ctx, collected.subject_id, "newsletter", "email", topic="newsletter")
        assert _changes(ctx, collected.subject_id) == [("child", "date_of_birth")]
    assert not decision.allowed
    assert Reason.CHILD_WITHOUT_PARENTAL_CONSENT in decision.reasons


def test_the_age_is_the_tenants_and_a_date_of_birth_only_ever_marks_a_child(
    runtime: Runtime, tenant: str
) -> None:
    with frozen(datetime(2026, 3, 1, 9, tzinfo=UTC)), runtime.tenant_context(tenant) as ctx:
        # Sixteen today: not a child under GDPR Art. 8's 16.
        sixteen = subjects.create_subject(
            ctx, [FieldInput("email", "a@example.com"), FieldInput("born", "2010-03-01", DOB)]
        )
        # A date the vault cannot read as one is stored as given, and decides nothing.
        unread = subjects.create_subject(
            ctx, [FieldInput("email", "b@example.com"), FieldInput("born", "15/01/2013", DOB)]
        )
        assert not subjects.get_subject_row(ctx, sixteen).is_child
        assert not subjects.get_subject_row(ctx, unread).is_child
        assert {f.value for f in reading.read_subject(ctx, unread, audited=False).fields} >= {
            "15/01/2013"
        }
        tenants.set_children_rules(ctx, child_age=18)
        # A rectified date under the tenant's 18 marks them; the parent's consent staff
        # record then stays through a later rectification.
        subjects.rectify_field(ctx, sixteen, FieldInput("born", "2010-03-01", DOB))
        assert subjects.get_subject_row(ctx, sixteen).is_child
        privacy_state.update_privacy_state(ctx, sixteen, parental_consent=True)
        subjects.rectify_field(ctx, sixteen, FieldInput("born", "2010-03-02", DOB))
        row = subjects.get_subject_row(ctx, sixteen)
        assert row.is_child and row.parental_consent_at is not None
        # A date showing an adult lifts nothing: staff lift the flag they know to be wrong.
        subjects.rectify_field(ctx, sixteen, FieldInput("born", "1990-01-01", DOB))
        assert subjects.get_subject_row(ctx, sixteen).is_child
        assert _changes(ctx, sixteen) == [
            ("child", "date_of_birth"),
            ("child", "parental_consent"),
        ]


def _adult_subscriber(ctx: Any, point: str, purpose: str) -> Any:
    """An adult who signed up on the form and ticked the box; no date of birth held."""
    return intake.collect(
        ctx,
        point,
        [FieldInput("email", "adult@example.com")],
        [intake.ConsentChoice(purpose, True)],
    ).subject_id


def _stranger_submits_a_child_s_date(ctx: Any, point: str, purpose: str) -> None:
    """The public form submitted by anyone who knows the adult's address: a child's date of
    birth, no box ticked."""
    intake.collect(
        ctx,
        point,
        [
            FieldInput("email", "adult@example.com"),
            FieldInput("date_of_birth", "2015-01-01", DOB),
        ],
        [intake.ConsentChoice(purpose, False)],
    )


def test_a_stranger_s_form_submission_cannot_erase_a_known_adult(runtime: Runtime) -> None:
    """A collection form is public, unauthenticated: a date of birth it adds to a known
    person's record is stored, but marks nobody a child — under `erase_on_discovery` it
    would let a stranger erase a customer's whole record with no check."""
    make_tenant(runtime, "carecafe", jurisdictions=["AU"])
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with frozen(now), runtime.tenant_context("carecafe") as ctx:
        click_and_resolve(ctx)
        tenants.set_children_rules(ctx, child_age=18, policy="erase_on_discovery")
        sid = _adult_subscriber(ctx, "product-news", "product-news")
    with frozen(now), runtime.tenant_context("carecafe") as ctx:
        _stranger_submits_a_child_s_date(ctx, "product-news", "product-news")
    with frozen(now), runtime.tenant_context("carecafe") as ctx:
        row = subjects.get_subject_row(ctx, sid)
        assert row.status == SubjectStatus.ACTIVE.value and not row.is_child
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "adult@example.com") == sid
        # Stored as any field the record lacked (staff can see it, and rectify it: that
        # marks them, as an authenticated correction).
        held = {f.name: f.value for f in reading.read_subject(ctx, sid, audited=False).fields}
        assert held["date_of_birth"] == "2015-01-01"
        assert _changes(ctx, sid) == []
        subjects.rectify_field(ctx, sid, FieldInput("date_of_birth", "2015-01-01", DOB))
        assert subjects.get_subject_row(ctx, sid).status == SubjectStatus.ERASED.value


def test_a_stranger_s_form_submission_cannot_stop_a_known_adult_s_newsletter(
    runtime: Runtime, tenant: str
) -> None:
    """The same under the default policy: the adult's own consent keeps counting."""
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with frozen(now), runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        sid = _adult_subscriber(ctx, "newsletter", "newsletter")
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed
    with frozen(now), runtime.tenant_context(tenant) as ctx:
        _stranger_submits_a_child_s_date(ctx, "newsletter", "newsletter")
    with frozen(now), runtime.tenant_context(tenant) as ctx:
        assert gate.may(ctx, sid, "newsletter", "email", topic="newsletter").allowed
        assert not subjects.get_subject_row(ctx, sid).is_child


# ---------------------------------------------------------------------------------------------
# The policies


def test_by_default_a_child_needs_a_parent_for_consent_and_sale_only(
    runtime: Runtime, tenant: str
) -> None:
    """GDPR Art. 8, CCPA 1798.120(c): as before, and nobody is erased."""
    with runtime.tenant_context(tenant) as ctx:
        assert (ctx.tenant.child_age, ctx.tenant.children_policy) == (16, "consent_needs_parent")
        _purpose(ctx, "promotions", "LegitimateInterest", is_marketing=True)
        _purpose(ctx, "news", "Consent", is_marketing=True)
        _purpose(ctx, "ad-sharing", "LegitimateInterest", is_sale_or_sharing=True)
        sid = _child(ctx, "kid@example.com", "promotions", "ad-sharing")
        assert gate.may(ctx, sid, "promotions", "email").allowed
        assert gate.may(ctx, sid, "news", "email").reasons == [
            Reason.NO_CONSENT,
            Reason.CHILD_WITHOUT_PARENTAL_CONSENT,
        ]
        assert gate.may(ctx, sid, "ad-sharing", "email").reasons == [
            Reason.CHILD_WITHOUT_PARENTAL_CONSENT
        ]
        assert subjects.get_subject_row(ctx, sid).status == SubjectStatus.ACTIVE.value


def test_a_child_without_parental_consent_gets_no_promotions(runtime: Runtime) -> None:
    """Seed 001 §10: "we do not knowingly collect Personal Data from children under the age
    of 18 without obtaining parental consent". 1CRM's promotions run on a legitimate
    interest (§3.3): a known child without a parent's consent is not mailed; what the law
    needs (a legal obligation) still uses their data, and a parent's consent opens the rest."""
    make_tenant(runtime, "onecrm")
    with runtime.tenant_context("onecrm") as ctx:
        tenants.set_children_rules(ctx, child_age=18, policy="no_use_without_parent")
        _purpose(ctx, "promotions", "LegitimateInterest", is_marketing=True)
        _purpose(ctx, "tax-records", "LegalObligation")
        child = _child(ctx, "kid@example.com", "promotions", "tax-records")
        decision = gate.may(ctx, child, "promotions", "email")
        assert not decision.allowed
        assert decision.reasons == [gate.Reason.CHILD_WITHOUT_PARENTAL_CONSENT]
        assert gate.may(ctx, child, "tax-records").allowed
        assert gate_audience.audience(ctx, "promotions", "email").allowed == []
        assert subjects.get_subject_row(ctx, child).status == SubjectStatus.ACTIVE.value
        privacy_state.update_privacy_state(ctx, child, parental_consent=True)
        assert gate.may(ctx, child, "promotions", "email").allowed


def test_click_and_resolve_deletes_what_it_learns_it_holds_of_a_child(runtime: Runtime) -> None:
    """Seed 003 "Children's Privacy": "In the event that we learn that we have personal
    information of someone under 18 without parental consent, we will delete all the
    personal information as quickly as possible." Marking the child erases them in the same
    transaction, the reason in the audit trail."""
    make_tenant(runtime, "carecafe", jurisdictions=["AU"])
    with runtime.tenant_context("carecafe") as ctx:
        tenants.set_children_rules(ctx, child_age=18, policy="erase_on_discovery")
        _purpose(ctx, "customer-support", "LegitimateInterest")
        child = _child(ctx, "kid@example.com", "customer-support")
        assert subjects.get_subject_row(ctx, child).status == SubjectStatus.ERASED.value
        assert _changes(ctx, child) == [
            ("child", ""),
            ("erased_as_child", "children_policy:erase_on_discovery"),
        ]
        assert [e.event for e in audit.list_entries(ctx, subject_id=child, limit=100)][-1] == (
            AuditEvent.SUBJECT_ERASED.value
        )
        # A parent's consent known from the start: nothing to erase.
        with_parent = subjects.create_subject(ctx, [FieldInput("email", "teen@example.com")])
        privacy_state.set_child(ctx, with_parent, is_child=True, parental_consent=True)
        assert subjects.get_subject_row(ctx, with_parent).status == SubjectStatus.ACTIVE.value
    with runtime.tenant_context("carecafe") as ctx:
        assert subjects.get_subject_row(ctx, child).status == SubjectStatus.ERASED.value
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "kid@example.com") is None


def test_a_tenant_that_keeps_no_childrens_data_refuses_a_child_s_record_at_the_door(
    runtime: Runtime,
) -> None:
    """Seed 003: "not allowed for anyone under the age of 18 to provide any personal
    information". A new record whose date of birth is a child's is refused with the reason,
    nothing stored — not stored and erased at once, which would leave an erased subject per
    child who filled in a form. The API answers 422 and the vault holds no trace of them."""
    make_tenant(runtime, "carecafe", jurisdictions=["AU"])
    with runtime.tenant_context("carecafe") as ctx:
        tenants.set_children_rules(ctx, child_age=18, policy="erase_on_discovery")
    token = make_api_token(runtime, "carecafe")
    client = api_client(runtime, token)
    with frozen(datetime(2026, 3, 1, 9, tzinfo=UTC)):
        r = client.post(
            "/api/v1/subjects",
            json={
                "fields": [
                    {"name": "email", "value": "kid@example.com"},
                    {"name": "born", "value": "2010-06-30", "category": DOB},
                ]
            },
        )
        assert r.status_code == 422, r.text
        assert "keeps no personal data of children under 18" in r.json()["detail"]
        # An adult's date of birth is stored as any field.
        r = client.post(
            "/api/v1/subjects",
            json={
                "fields": [
                    {"name": "email", "value": "grown@example.com"},
                    {"name": "born", "value": "2000-06-30", "category": DOB},
                ]
            },
        )
        assert r.status_code == 201, r.text
    with runtime.tenant_context("carecafe") as ctx:
        assert reading.find_subject_id(ctx, IdentityKind.EMAIL, "kid@example.com") is None
        assert ctx.session.scalar(select(func.count()).select_from(Subject)) == 1


def test_erased_on_discovery_by_date_of_birth_keeps_the_class_a_law_keeps(
    runtime: Runtime,
) -> None:
    """The erasure is every erasure: billing records a tax law keeps (seed 001 §12) stay."""
    make_tenant(
        runtime,
        "onecrm",
        retention_classes={"billing": "Billing information"},
        exempt_on_erasure={"billing": TAX},
    )
    with frozen(datetime(2026, 3, 1, 9, tzinfo=UTC)), runtime.tenant_context("onecrm") as ctx:
        tenants.set_children_rules(ctx, child_age=18, policy="erase_on_discovery")
        sid = subjects.create_subject(
            ctx,
            [
                FieldInput("email", "kid@example.com"),
                FieldInput(
                    "iban", "GB33BUKB20201555555555", "user.financial", retention_class="billing"
                ),
            ],
        )
        assert subjects.get_subject_row(ctx, sid).status == SubjectStatus.ACTIVE.value
        subjects.rectify_field(ctx, sid, FieldInput("born", "2010-06-30", DOB))
        assert subjects.get_subject_row(ctx, sid).status == SubjectStatus.PARTIALLY_ERASED.value
        kept = reading.read_subject(ctx, sid, audited=False).fields
        assert [(f.name, f.value) for f in kept] == [("iban", "GB33BUKB20201555555555")]


# ---------------------------------------------------------------------------------------------
# The audience is the check, under every policy


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    world=worlds(),
    question=questions,
    policy=st.sampled_from([p.value for p in ChildrenPolicy]),
)
def test_the_audience_is_everyone_the_check_allows_under_each_policy(
    runtime: Runtime,
    tenant: str,
    world: tuple[list[PurposeSpec], list[SubjectSpec]],
    question: tuple[int, str | None, str | None],
    policy: str,
) -> None:
    specs, people = world
    session, ctx = in_rolled_back_transaction(runtime, tenant)
    try:
        with frozen(NOW):
            ctx.tenant.children_policy = policy
            made = build(ctx, specs, people)
            purpose = made[question[0] % len(made)]
            channel, topic = question[1], question[2]
            subjects_ = list(
                session.scalars(
                    select(Subject).where(Subject.tenant_id == ctx.tenant_id).order_by(Subject.id)
                )
            )
            expected = []
            for s in subjects_:
                decision = gate.may(ctx, s.id, purpose.slug, channel, topic=topic, audited=False)
                if decision.allowed:
                    expected.append(s.id)
                # The rule itself: refused a child without a parent's consent exactly when
                # the policy says so (an erased subject is refused for that alone).
                child_rule = (
                    s.is_child
                    and s.parental_consent_at is None
                    and (
                        purpose.lawful_basis == "Consent"
                        or purpose.is_sale_or_sharing
                        or (
                            policy != "consent_needs_parent"
                            and purpose.lawful_basis not in ("LegalObligation", "VitalInterest")
                        )
                    )
                )
                if Reason.SUBJECT_ERASED not in decision.reasons:
                    assert (Reason.CHILD_WITHOUT_PARENTAL_CONSENT in decision.reasons) == (
                        child_rule
                    )
            result = gate_audience.audience(ctx, purpose.slug, channel, topic=topic)
            assert result.allowed == expected
            conds = gate_audience.audience_conditions(ctx.tenant_id, purpose, channel, topic, NOW)
            assert list(session.scalars(select(Subject.id).where(*conds).order_by(Subject.id))) == (
                expected
            )
            sets = gate_audience.audience_sets(ctx.tenant_id, purpose, channel, topic, NOW)
            assert (list(session.scalars(sets)) if sets is not None else []) == expected
    finally:
        session.rollback()
        session.close()


# ---------------------------------------------------------------------------------------------
# Setting the rules


def test_the_rules_through_the_cli(runtime: Runtime, tenant: str, cli_env: dict[str, str]) -> None:
    code, out = run("tenant", "children", "-t", tenant)
    assert code == 0 and "Children at acme: under 16; consent_needs_parent" in out, out
    code, out = run("tenant", "list")
    assert code == 0 and "children under" not in out, out

    code, out = run(
        "tenant", "children", "-t", tenant, "--age", "18", "--policy", "erase_on_discovery"
    )
    assert code == 0, out
    assert "Children at acme: under 18; erase_on_discovery" in out
    assert "Changed: child_age, children_policy." in out
    code, out = run("tenant", "list")
    assert code == 0 and "acme: children under 18, erase_on_discovery" in out, out

    # Bad input: a clear error, nothing written.
    for args, message in [
        (("--age", "12"), "a child's age is between 13 and 18"),
        (("--age", "19", "--policy", "no_use_without_parent"), "between 13 and 18"),
        (("--policy", "erase"), "unknown children's policy 'erase'"),
        (("--age", "sixteen"), "as an integer"),
    ]:
        code, out = run("tenant", "children", "-t", tenant, *args)
        assert code != 0 and message in out, (args, out)
    with runtime.tenant_context(tenant) as ctx:
        assert (ctx.tenant.child_age, ctx.tenant.children_policy) == (18, "erase_on_discovery")
        assert audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok
        changes = [
            e.details
            for e in audit.list_entries(ctx, limit=100)
            if e.event == AuditEvent.TENANT_CHILDREN_RULES_SET.value
        ]
    assert changes == [
        {
            "changed": ["child_age", "children_policy"],
            "child_age": 18,
            "children_policy": "erase_on_discovery",
        }
    ]


def test_the_service_refuses_what_the_cli_refuses(runtime: Runtime, tenant: str) -> None:
    with runtime.tenant_context(tenant) as ctx:
        for age, policy in [(12, None), (19, None), (None, "ERASE_ON_DISCOVERY"), (None, "")]:
            with pytest.raises(InvalidInput):
                tenants.set_children_rules(ctx, age, policy)
        assert tenants.set_children_rules(ctx, 13) == ["child_age"]
        assert tenants.set_children_rules(ctx, 13, "consent_needs_parent") == []
