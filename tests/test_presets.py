"""The seeds' presets: a tenant created from each keeps that seed's promises through the real
paths — the gate's answers for its main uses, the access answer's recipients and transfers,
an erasure keeping what the seed keeps, the seed's own deadline — and the CLI creates a
tenant from a preset in one go, or nothing. On both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pledge.consent import intake, privacy_state
from pledge.consent import service as consent
from pledge.consent.intake import ConsentChoice
from pledge.core.clock import frozen
from pledge.core.db import transaction
from pledge.core.errors import NotFound
from pledge.gate import service as gate
from pledge.gate.service import Reason
from pledge.notices import service as notices
from pledge.preferences import service as preferences
from pledge.presets import (
    ONECRM_BILLING_KEPT,
    PRESETS,
    clik,
    create_tenant,
)
from pledge.purposes import service as purposes
from pledge.purposes.models import LawfulBasis
from pledge.rights import bundle, transitions, workflow
from pledge.rights import service as rights
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.models import SubjectStatus
from pledge.subjects.service import FieldInput
from pledge.tenants import service as tenants
from pledge.worker import run_once
from tests.cli.test_cli import run
from tests.conftest import make_tenant
from tests.rights.test_clock_cases import PHONE, at, verified
from tests.rights.test_exempt_classes import _erasure

EMAIL = "pat.preset@example.com"
NO_RECORD: dict[str, Any] = {"fields": [], "interactions": []}


def _create(runtime: Runtime, preset: str, slug: str = "seed") -> None:
    with transaction(runtime.sessions) as session:
        create_tenant(session, runtime.keystore, preset, slug=slug, name="Seed Ltd")


def _transfers(info: dict[str, Any]) -> list[tuple[str, list[str], str]]:
    return [(t["country"], t["recipients"], t["safeguard"]) for t in info["transfers"]]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_creates_a_tenant_whose_notice_and_consent_boxes_are_in_force(
    runtime: Runtime, name: str
) -> None:
    """Created from a preset: the seed's jurisdictions and privacy contact, a privacy notice
    in force, and a wording in force for every consent the tenant asks for."""
    preset = PRESETS[name]
    _create(runtime, name)
    with runtime.tenant_context("seed") as ctx:
        assert ctx.tenant.privacy_contact == preset.privacy_contact
        assert ctx.tenant.jurisdictions == sorted(preset.jurisdictions)
        assert ctx.tenant.region == preset.region
        assert notices.public_notice(ctx) is not None
        listed = purposes.list_purposes(ctx)
        assert listed
        for p in listed:
            if p.lawful_basis == LawfulBasis.CONSENT.value:
                assert p.consent_notice_id is not None, p.slug
                assert notices.current_version(ctx, p.consent_notice_id) is not None, p.slug


def test_one_click_answers_an_erasure_within_a_month_again_from_further_information(
    runtime: Runtime,
) -> None:
    """Seed 000's erasure form: "within one month of (i) our receipt of your written
    request, or (ii) our receipt of any further information we may ask you to provide …
    (whichever is later)" — faster than California's 45 days."""
    _create(runtime, "one-click")
    with runtime.tenant_context("seed") as ctx:
        intake.collect(ctx, "purchase", [FieldInput("email", EMAIL), FieldInput("phone", PHONE)])
    with frozen(at("2026-01-05")), runtime.tenant_context("seed") as ctx:
        request = rights.submit(ctx, RequestInput("erasure", Requester(EMAIL, "Pat"), "US-CA"))
        request_id = str(request.id)
        assert request.due_on is not None and request.due_on.isoformat() == "2026-02-05"
    verified(runtime, "seed", request_id, "2026-01-05")
    with frozen(at("2026-01-10")), runtime.tenant_context("seed") as ctx:
        workflow.ask_for_information(
            ctx, rights.get_request(ctx, request_id), "clarification", "which account?"
        )
    with frozen(at("2026-01-12")), runtime.tenant_context("seed") as ctx:
        transitions.resume(ctx, rights.get_request(ctx, request_id))
    with runtime.tenant_context("seed") as ctx:
        due = rights.get_request(ctx, request_id).due_on
    assert due is not None and due.isoformat() == "2026-02-12"  # a month from the answer


def test_one_click_shares_for_advertising_only_on_consent_and_until_a_ccpa_opt_out(
    runtime: Runtime,
) -> None:
    """Seed 000: personalised advertising on consent; California's opt-out of "sharing"
    stops it; service messages go on after a marketing opt-out ("information about a
    security update")."""
    _create(runtime, "one-click")
    with runtime.tenant_context("seed") as ctx:
        visitor = intake.collect(
            ctx,
            "account",
            [FieldInput("email", EMAIL)],
            [ConsentChoice("marketing", checked=True)],
        ).subject_id
        assert gate.may(ctx, visitor, "advertising", "web").reasons == [Reason.NO_CONSENT]
        intake.collect(
            ctx, "website", [FieldInput("email", EMAIL)], [ConsentChoice("advertising", True)]
        )
        assert gate.may(ctx, visitor, "advertising", "web").allowed
        privacy_state.set_sale_opt_out(ctx, visitor, True, "request")
        assert gate.may(ctx, visitor, "advertising", "web").reasons == [Reason.SALE_OPT_OUT]

        preferences.opt_out(ctx, visitor, "email", "*", "preference_center")
        assert gate.may(ctx, visitor, "marketing", "email").reasons == [Reason.MARKETING_OPT_OUT]
        assert gate.may(ctx, visitor, "service-messages", "email").allowed


def test_onecrm_promotions_on_legitimate_interest_until_an_objection_or_opt_out(
    runtime: Runtime,
) -> None:
    """Seed 001 §3.3, §5.3: promotions on a legitimate interest, with no box to tick; an
    opt-out or an objection stops them, administrative mail goes on."""
    _create(runtime, "onecrm")
    with runtime.tenant_context("seed") as ctx:
        user = intake.collect(ctx, "registration", [FieldInput("email", EMAIL)]).subject_id
        other = intake.collect(
            ctx, "registration", [FieldInput("email", "other@example.com")]
        ).subject_id
        for sid in (user, other):
            assert gate.may(ctx, sid, "promotions", "email").allowed
        consent.record_objection(ctx, user, "promotions")
        preferences.opt_out(ctx, other, "email", "*", "unsubscribe")
        assert gate.may(ctx, user, "promotions", "email").reasons == [Reason.OBJECTED]
        assert gate.may(ctx, other, "promotions", "email").reasons == [Reason.MARKETING_OPT_OUT]
        for sid in (user, other):
            assert gate.may(ctx, sid, "administrative", "email").allowed
        # Signing in through an Integrated Service is on consent: without the box, no.
        signed = intake.collect(
            ctx, "integrated-sign-in", [FieldInput("email", "google@example.com")]
        ).subject_id
        assert gate.may(ctx, signed, "integrated-service").reasons == [Reason.NO_CONSENT]


ERASED_AT = datetime(2027, 3, 8, 9, tzinfo=UTC)  # after the registration (now)


def test_onecrm_erasure_keeps_billing_and_says_why(runtime: Runtime) -> None:
    """Seed 001 §12: "billing information is retained for a period of 7 years"."""
    _create(runtime, "onecrm")
    with runtime.tenant_context("seed") as ctx:
        rita = intake.collect(
            ctx,
            "registration",
            [
                FieldInput("email", "rita@example.com"),
                FieldInput("first_name", "Rita", "user.name.first"),
                FieldInput("card_ref", "VISA-4242", "user.financial", "direct", "billing"),
            ],
        ).subject_id
    with frozen(ERASED_AT):
        _request_id, kept, left = _erasure(runtime, "seed", "rita@example.com")
    assert kept == [
        f"billing: {ONECRM_BILLING_KEPT} (kept for 7 years, then erased on 08 March 2034)"
    ]
    assert left == ["card_ref"]
    # "… for a period of 7 years": then the worker erases it, key and all.
    with frozen(datetime(2034, 3, 7, 9, tzinfo=UTC)):
        assert run_once(runtime).retention_erased == 0
    with frozen(datetime(2034, 3, 8, 9, tzinfo=UTC)):
        assert run_once(runtime).retention_erased == 1
    with runtime.tenant_context("seed") as ctx:
        assert subjects.get_subject_row(ctx, rita).status == SubjectStatus.ERASED.value


def test_onecrm_access_answer_tells_the_dutch_data_centre_as_no_transfer(
    runtime: Runtime,
) -> None:
    """Seed 001 §14: EU customers' databases in the Netherlands (no transfer); the US service
    providers and Google Analytics are, with no safeguard recorded (Privacy Shield is gone)."""
    _create(runtime, "onecrm")
    with runtime.tenant_context("seed") as ctx:
        user = intake.collect(ctx, "registration", [FieldInput("email", EMAIL)]).subject_id
        info = bundle.art15_information(ctx, user, NO_RECORD, "EU")
    assert info["controller"]["contact"] == (
        "privacy@1crm.com (Data Protection Officer: dpo@1crm.com)"
    )
    assert "1CRM EU data centre (Netherlands)" in [r["name"] for r in info["recipients"]]
    assert _transfers(info) == [
        (
            "US",
            ["Google Analytics", "Hosting and service providers in the United States"],
            "no safeguard recorded",
        )
    ]


def test_contact_at_once_uses_a_consumers_data_only_for_the_clients_request(
    runtime: Runtime,
) -> None:
    """Seed 002 [T1]: "limited to the purpose for which the Client has engaged CAO": a
    consumer who chatted gets no Client newsletter; a Client gets it until they opt out. The
    access answer names the e-mail provider; hosted in the US, nothing is transferred."""
    _create(runtime, "contact-at-once")
    with runtime.tenant_context("seed") as ctx:
        consumer = intake.collect(ctx, "chat", [FieldInput("email", EMAIL)]).subject_id
        client = intake.collect(
            ctx, "customer-portal", [FieldInput("email", "dealer@example.com")]
        ).subject_id
        assert gate.may(ctx, consumer, "consumer-requests").allowed
        assert gate.may(ctx, consumer, "client-newsletter", "email").reasons == [Reason.NO_BASIS]
        assert gate.may(ctx, client, "client-newsletter", "email").allowed
        preferences.opt_out(ctx, client, "email", "newsletter", "unsubscribe")
        assert gate.may(ctx, client, "client-newsletter", "email", topic="newsletter").reasons == [
            Reason.TOPIC_OPT_OUT
        ]
        info = bundle.art15_information(ctx, consumer, NO_RECORD, "EU")
    assert "Third-party e-mail service provider" in [r["name"] for r in info["recipients"]]
    assert info["transfers"] == []
    assert "privacy@contactatonce.com" in info["controller"]["contact"]


def test_click_and_resolve_supports_on_consent_only(runtime: Runtime) -> None:
    """Seed 003: "you as the customer give express consent to such treatment": no box
    ticked, no support use; withdrawn, none either. Messages about the request go on."""
    _create(runtime, "click-and-resolve")
    with runtime.tenant_context("seed") as ctx:
        silent = intake.collect(ctx, "support-chat", [FieldInput("email", EMAIL)]).subject_id
        assert gate.may(ctx, silent, "customer-support", "email").reasons == [Reason.NO_CONSENT]
        agreed = intake.collect(
            ctx,
            "support-chat",
            [FieldInput("email", "agreed@example.com")],
            [ConsentChoice("customer-support", checked=True)],
        ).subject_id
        assert gate.may(ctx, agreed, "customer-support", "email").allowed
        assert preferences.withdraw_consent(ctx, agreed, "customer-support")
        assert gate.may(ctx, agreed, "customer-support", "email").reasons == [
            Reason.CONSENT_WITHDRAWN
        ]
        assert gate.may(ctx, agreed, "support-notifications", "email").allowed
        info = bundle.art15_information(ctx, agreed, NO_RECORD, "AU")
    assert info["controller"]["contact"] == "dpo@carecafe24.com"
    assert info["transfers"] == []  # the partners are in Australia, as the company is


def test_clik_access_answer_names_the_live_chat_and_analytics_providers(
    runtime: Runtime,
) -> None:
    """Seed 004 names its recipients: "Hubspot Live Chat", "Zendesk Live Chat" and "Google
    Analytics", all in the US; the notice's safeguard for a country without "comparable
    data protection legislation" is "suitable clauses in our contracts": the UK's IDTA."""
    make_tenant(runtime, "clik", region="UK", jurisdictions=["UK"])
    with runtime.tenant_context("clik") as ctx:
        clik(ctx)
        chatter = intake.collect(
            ctx, "support-chat", [FieldInput("email", "chatter@example.com")]
        ).subject_id
        info = bundle.art15_information(ctx, chatter, NO_RECORD, "UK")
    names = " ".join(r["name"] for r in info["recipients"]).lower()
    assert "zendesk" in names
    assert "hubspot" in names
    assert "google" in names
    assert _transfers(info) == [
        (
            "US",
            ["Google Analytics", "HubSpot (live chat and CRM)", "Zendesk (support live chat)"],
            "the UK International Data Transfer Agreement or Addendum",
        )
    ]


def test_clik_complaints_serve_only_the_complaint(runtime: Runtime) -> None:
    """Seed 004 "Complaints": the complainant's data is used to handle the complaint, not
    for marketing; the Privacy Manager is the contact."""
    _create(runtime, "clik")
    with runtime.tenant_context("seed") as ctx:
        sid = intake.collect(ctx, "complaint", [FieldInput("email", EMAIL)]).subject_id
        assert gate.may(ctx, sid, "complaints", "email").allowed
        assert gate.may(ctx, sid, "product-marketing", "email").reasons == [Reason.NO_BASIS]
        assert "privacy@cliksoftware.com" in ctx.tenant.privacy_contact


def test_tenant_create_with_a_preset_through_the_cli(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run("tenant", "presets")
    assert code == 0, out
    for name in PRESETS:
        assert name in out
    code, out = run("tenant", "create", "crm", "--name", "CRM Ltd", "--preset", "onecrm")
    assert code == 0, out
    code, out = run("tenant", "list")
    assert code == 0 and "crm" in out and "EU, US-CA" in out, out
    assert "crm: billing kept on erasure" in out
    with runtime.tenant_context("crm") as ctx:
        assert purposes.find_purpose(ctx, "promotions") is not None
        assert ctx.tenant.privacy_contact.startswith("privacy@1crm.com")
    # What the operator gives wins over the preset's default.
    code, out = run(
        "tenant", "create", "cro", "--name", "CRO", "--preset", "onecrm", "--region", "UK"
    )
    assert code == 0, out
    with runtime.tenant_context("cro") as ctx:
        assert ctx.tenant.region == "UK"


def test_an_unknown_preset_creates_nothing(runtime: Runtime, cli_env: dict[str, str]) -> None:
    code, out = run("tenant", "create", "crm", "--name", "CRM Ltd", "--preset", "acme-corp")
    assert code != 0
    assert "unknown preset 'acme-corp'" in out and "onecrm" in out, out
    assert "Traceback" not in out
    with transaction(runtime.sessions) as session, pytest.raises(NotFound):
        tenants.get_tenant_by_slug(session, "crm")
