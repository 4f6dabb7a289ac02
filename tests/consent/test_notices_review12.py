"""Notices, purposes and receipts (review 12): a relied-on purpose keeps its marketing and sale
flags, a material change is one letter per person in their language, the public notice and
the receipt's link work in any language, version references are ASCII digits, receipts carry
the controller's contact, the third parties and the notice version shown."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.consent import intake
from pledge.consent import service as consent
from pledge.consent.intake import ConsentChoice
from pledge.consent.models import ConsentAction, ConsentMethod, ConsentRecord
from pledge.consent.service import ConsentInput
from pledge.core.config import reset_settings_cache
from pledge.core.errors import Conflict, NotFound
from pledge.gate import service as gate
from pledge.mail import backends
from pledge.mail.backends import MemoryBackend
from pledge.notices import announcements
from pledge.notices import service as notices
from pledge.preferences import service as preferences
from pledge.presets import clik
from pledge.purposes import service as purposes
from pledge.purposes.service import PurposeInput
from pledge.rights import recipients
from pledge.runtime import Runtime
from pledge.subjects.service import FieldInput
from tests.conftest import api_client, make_tenant
from tests.consent.test_basis_and_races import _as_input

HTML = {"accept": "text/html"}


@pytest.fixture
def clik_tenant(runtime: Runtime, tenant: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    return tenant


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryBackend]:
    monkeypatch.setenv("PLEDGE_BASE_URL", "https://privacy.clik.test")
    reset_settings_cache()
    with backends.override(MemoryBackend()) as memory:
        yield memory
    reset_settings_cache()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _body(message: Any) -> str:
    text: str = message.get_body(("plain",)).get_content()
    return text


def _publish_german(runtime: Runtime, tenant: str) -> None:
    """The newsletter's consent wording and the privacy notice, in German too."""
    with runtime.tenant_context(tenant) as ctx:
        notices.publish_version(
            ctx, "newsletter-consent", text="Ja, schickt mir den Newsletter.", language="de"
        )
        notices.publish_version(ctx, "privacy", text="Datenschutzhinweis.", language="de")


# ---------------------------------------------------------------------------------------------
# 1. A relied-on purpose keeps its marketing and sale flags


def test_a_relied_on_purpose_cannot_stop_being_marketing_so_a_no_marketing_opt_out_stands(
    runtime: Runtime, clik_tenant: str
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(
            ctx, "product-interest", [FieldInput("email", "ada@example.com")]
        ).subject_id
        preferences.opt_out(ctx, sid, "email", "*", "test")
    with runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "product-marketing")
        with pytest.raises(Conflict, match="marketing"):
            purposes.update_purpose(ctx, p.slug, _as_input(p, is_marketing=False))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert purposes.get_purpose(ctx, "product-marketing").is_marketing
        # Ada said "no marketing e-mail": the same mailing is still denied to her.
        assert not gate.may(ctx, sid, "product-marketing", "email").allowed
        # A purpose nobody was held under yet may still be corrected.
        p = purposes.get_purpose(ctx, "status-updates")
        purposes.update_purpose(ctx, p.slug, _as_input(p, is_marketing=True))
        p = purposes.update_purpose(ctx, p.slug, _as_input(p, is_marketing=False))
        assert not p.is_marketing


def test_a_relied_on_purpose_may_become_a_sale_but_not_stop_being_one(
    runtime: Runtime, clik_tenant: str
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        intake.collect(ctx, "website", [FieldInput("email", "bo@example.com")])
    with runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "site-analytics")
        # Stricter is fine: GPC and "do not sell" now apply to it.
        purposes.update_purpose(ctx, p.slug, _as_input(p, is_sale_or_sharing=True))
    with runtime.tenant_context(clik_tenant) as ctx:
        p = purposes.get_purpose(ctx, "site-analytics")
        assert p.is_sale_or_sharing
        with pytest.raises(Conflict, match="sale or sharing"):
            purposes.update_purpose(ctx, p.slug, _as_input(p, is_sale_or_sharing=False))
    with runtime.tenant_context(clik_tenant) as ctx:
        assert purposes.get_purpose(ctx, "site-analytics").is_sale_or_sharing
        changed = [
            e.details
            for e in audit.list_entries(ctx, limit=500)
            if e.event == AuditEvent.PURPOSE_CHANGED.value
            and e.details.get("purpose") == "site-analytics"
            and e.details.get("change") == "updated"
        ]
    # The audit trail says what changed in the promise, not only the basis.
    assert changed[-1]["is_sale_or_sharing"] is True
    assert changed[-1]["previous_is_sale_or_sharing"] is False
    assert changed[-1]["is_marketing"] is False
    assert changed[-1]["previous_is_marketing"] is False


# ---------------------------------------------------------------------------------------------
# 2. A material change in several languages: one letter per person, in their language


def test_a_material_change_in_two_languages_is_one_letter_per_person_in_their_language(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    _publish_german(runtime, clik_tenant)
    with runtime.tenant_context(clik_tenant) as ctx:
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [ConsentChoice("newsletter", True)],
            language="de",
        )
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "bob@example.com")],
            [ConsentChoice("newsletter", True)],
        )
        # No consent at all, held through a collection point: English, published.
        intake.collect(ctx, "contact-email", [FieldInput("email", "cy@example.com")])
    with runtime.tenant_context(clik_tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="v2", summary="We moved.", material=True)
        notices.publish_version(
            ctx,
            "privacy",
            text="v2 de",
            language="de",
            summary="Wir sind umgezogen.",
            material=True,
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        sent = announcements.send_due(ctx)
    assert sum(a.recipients for a in sent) == 3
    letters: dict[str, list[str]] = {}
    for m in mailbox.sent:
        letters.setdefault(str(m["To"]), []).append(_body(m))
    assert sorted(letters) == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert all(len(bodies) == 1 for bodies in letters.values()), letters
    assert "Wir sind umgezogen." in letters["ada@example.com"][0]
    assert "We moved." not in letters["ada@example.com"][0]
    assert "We moved." in letters["bob@example.com"][0]
    assert "We moved." in letters["cy@example.com"][0]
    # Nothing is left to send twice at the next cycle.
    with runtime.tenant_context(clik_tenant) as ctx:
        assert announcements.send_due(ctx) == []
    assert len(mailbox.sent) == 3


def test_a_first_translation_published_with_a_change_is_not_a_second_letter(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [ConsentChoice("newsletter", True)],
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        # English moves to version 2; German starts, at version 1, with the same change.
        notices.publish_version(ctx, "privacy", text="v2", summary="Change", material=True)
        notices.publish_version(
            ctx, "privacy", text="v2 de", language="de", summary="Änderung", material=True
        )
    with runtime.tenant_context(clik_tenant) as ctx:
        announcements.send_due(ctx)
    to_ada = [m for m in mailbox.sent if m["To"] == "ada@example.com"]
    assert len(to_ada) == 1, [str(m["Subject"]) for m in to_ada]
    assert "Change" in _body(to_ada[0])


def test_a_later_material_change_in_german_is_announced_though_english_used_its_number(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    """Numbers count per language: German's version 2 is not English's. English moved to 2
    (announced, sent; German was not published, so its readers were told in English); months
    later German, which started at 1, makes its own material change, also numbered 2: its
    readers are told of it."""
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
        notices.publish_version(
            ctx, "newsletter-consent", text="Ja, schickt mir den Newsletter.", language="de"
        )
    with runtime.tenant_context(tenant) as ctx:
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [ConsentChoice("newsletter", True)],
            language="de",
        )
    with runtime.tenant_context(tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="v2", summary="We moved.", material=True)
    with runtime.tenant_context(tenant) as ctx:
        announcements.send_due(ctx)
    before = len(mailbox.sent)
    assert [str(m["To"]) for m in mailbox.sent].count("ada@example.com") == 1
    with runtime.tenant_context(tenant) as ctx:
        # German starts (version 1), then changes materially (version 2): a new change.
        notices.publish_version(ctx, "privacy", text="Datenschutz v1", language="de")
        notices.publish_version(
            ctx,
            "privacy",
            text="Datenschutz v2: wir verkaufen Daten",
            language="de",
            summary="Wir geben Ihre Daten jetzt an Werbepartner weiter.",
            material=True,
        )
    with runtime.tenant_context(tenant) as ctx:
        announcements.send_due(ctx)
    new = [_body(m) for m in mailbox.sent[before:] if str(m["To"]) == "ada@example.com"]
    assert any("Werbepartner" in b for b in new), "the German material change was never told"


def test_without_english_a_change_is_told_in_the_first_language_published(
    runtime: Runtime, tenant: str, mailbox: MemoryBackend
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Datenschutz")
        notices.publish_version(ctx, "privacy", text="v1 de", language="de")
        notices.publish_version(ctx, "privacy", text="v1 fr", language="fr")
        purposes.create_purpose(
            ctx, PurposeInput(slug="service", name="Service", lawful_basis="Contract")
        )
        purposes.save_collection_point(
            ctx,
            purposes.CollectionPointInput(
                slug="shop",
                name="Shop",
                kind="purchase",
                purposes=[purposes.CollectsFor("service")],
                privacy_notice="privacy",
            ),
        )
        intake.collect(ctx, "shop", [FieldInput("email", "dora@example.com")])
    with runtime.tenant_context(tenant) as ctx:
        notices.publish_version(
            ctx, "privacy", text="v2 de", language="de", summary="Neu.", material=True
        )
        notices.publish_version(
            ctx, "privacy", text="v2 fr", language="fr", summary="Nouveau.", material=True
        )
    with runtime.tenant_context(tenant) as ctx:
        announcements.send_due(ctx)
    assert [str(m["To"]) for m in mailbox.sent] == ["dora@example.com"]
    assert "Neu." in _body(mailbox.sent[0])


# ---------------------------------------------------------------------------------------------
# 3. The public notice and the receipt's link in any language


def test_the_public_privacy_notice_falls_back_to_any_language_in_force(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Datenschutz")
        notices.publish_version(ctx, "privacy", text="Datenschutzhinweis.", language="de")
    client = TestClient(api_client(runtime).app, headers=HTML)
    for url in (f"/p/{tenant}/privacy", f"/p/{tenant}/privacy?lang=fr"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "Datenschutzhinweis." in page.text


def test_a_receipt_of_a_consent_in_german_links_the_german_notice(
    runtime: Runtime, clik_tenant: str
) -> None:
    _publish_german(runtime, clik_tenant)
    with runtime.tenant_context(clik_tenant) as ctx:
        intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [ConsentChoice("newsletter", True)],
            language="de",
        )
        token = ctx.session.scalars(select(ConsentRecord.receipt_jws)).one()
    assert token is not None
    url = urlsplit(_claims(token)["policyUrl"])
    assert parse_qs(url.query) == {"lang": ["de"]}
    page = TestClient(api_client(runtime).app, headers=HTML).get(f"{url.path}?{url.query}")
    assert page.status_code == 200 and "Datenschutzhinweis." in page.text


# ---------------------------------------------------------------------------------------------
# 4. Clik's call recordings


def test_a_german_consent_given_by_api_records_the_german_privacy_notice(
    runtime: Runtime, clik_tenant: str
) -> None:
    """Given by API (no collection point) on the German wording: the receipt links the German
    notice and names the German version as the one in force, not the English one."""
    _publish_german(runtime, clik_tenant)
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(ctx, "newsletter", [FieldInput("email", "ada@example.com")]).subject_id
        notice = notices.get_notice(ctx, "newsletter-consent")
        wording = notices.current_version(ctx, notice.id, "de")
        assert wording is not None and wording.language == "de"
        consent.record_consent(
            ctx,
            sid,
            ConsentInput(
                "newsletter", ConsentAction.GRANT.value, ConsentMethod.API.value, wording.id
            ),
        )
        token = ctx.session.scalars(
            select(ConsentRecord.receipt_jws).where(ConsentRecord.receipt_jws.is_not(None))
        ).one()
    assert token is not None
    claims = _claims(token)
    assert claims["policyUrl"].endswith("?lang=de")
    assert claims["privacyNotice"]["language"] == "de", claims["privacyNotice"]


def test_the_clik_call_recordings_are_not_special_category_data(
    client: TestClient, clik_tenant: str
) -> None:
    purpose = client.get("/api/v1/purposes/call-training").json()
    # Seed 004 records calls for training and disputes; it never identifies anyone by voice
    # (Art. 9 biometric data), which a legitimate interest could not justify.
    assert purpose["sensitive"] is False
    assert not any(c.startswith("user.biometric") for c in purpose["data_categories"])


# ---------------------------------------------------------------------------------------------
# 5. Version references are ASCII digits


@pytest.mark.parametrize("ref", ["\u00b2", "\u0661", "\uff12"])
def test_a_version_number_in_other_digits_is_not_found_not_a_500(
    runtime: Runtime, tenant: str, client: TestClient, ref: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        notices.create_notice(ctx, slug="privacy", kind="privacy_notice", title="Privacy")
        notices.publish_version(ctx, "privacy", text="one")
        notices.publish_version(ctx, "privacy", text="two")
    response = client.get("/api/v1/notices/privacy/diff", params={"from": ref})
    assert response.status_code == 404, response.text[:200]
    assert client.get("/api/v1/notices/privacy/diff", params={"from": "1"}).status_code == 200
    with runtime.tenant_context(tenant) as ctx:
        notice = notices.get_notice(ctx, "privacy")
        with pytest.raises(NotFound):
            notices.resolve_version(ctx, notice, ref)


# ---------------------------------------------------------------------------------------------
# 6. Kantara v1.1 receipt fields


def test_a_receipt_names_the_controllers_contact_the_third_parties_and_the_notice_shown(
    runtime: Runtime,
) -> None:
    make_tenant(runtime, "shop", privacy_contact="privacy@shop.example")
    with runtime.tenant_context("shop") as ctx:
        clik(ctx)
        recipients.add_recipient(
            ctx, slug="adco", name="AdCo Ltd", kind="recipient", country="GB", webhook_url=None
        )
        recipients.add_recipient(
            ctx,
            slug="host",
            name="Hosting Inc",
            kind="sub_processor",
            country="IE",
            webhook_url=None,
        )
        purposes.create_purpose(
            ctx,
            PurposeInput(
                slug="partner-offers",
                name="Offers from our partners",
                lawful_basis="Consent",
                data_categories=["user.contact.email"],
                channels=["email"],
                is_marketing=True,
                is_sale_or_sharing=True,
                consent_notice="newsletter-consent",
            ),
        )
    with runtime.tenant_context("shop") as ctx:
        sid = intake.collect(
            ctx,
            "newsletter",
            [FieldInput("email", "ada@example.com")],
            [ConsentChoice("newsletter", True)],
        ).subject_id
        wording = notices.current_version(ctx, notices.get_notice(ctx, "newsletter-consent").id)
        assert wording is not None
        shared = consent.record_consent(
            ctx,
            sid,
            ConsentInput(
                "partner-offers", ConsentAction.GRANT.value, ConsentMethod.API.value, wording.id
            ),
        )
        records = {r.purpose_id: r for r in ctx.session.scalars(select(ConsentRecord))}
        newsletter = records[purposes.get_purpose(ctx, "newsletter").id]
        privacy_v1 = notices.current_version(ctx, notices.get_notice(ctx, "privacy").id)
        assert privacy_v1 is not None and newsletter.receipt_jws and shared.receipt_jws
        newsletter_claims = _claims(newsletter.receipt_jws)
        shared_claims = _claims(shared.receipt_jws)
        # Both still verify against the tenant's published key.
        assert consent.verify_receipt(ctx, newsletter.receipt_jws).valid
        assert consent.verify_receipt(ctx, shared.receipt_jws).valid

    (controller,) = newsletter_claims["piiControllers"]
    assert controller["piiController"] == "Shop Ltd"
    assert controller["contact"] == "privacy@shop.example"
    assert controller["email"] == "privacy@shop.example"
    # The notice version shown where she consented, not whatever is in force later.
    assert newsletter_claims["privacyNotice"] == {
        "versionId": str(privacy_v1.id),
        "version": 1,
        "language": "en",
        "sha256": privacy_v1.sha256,
    }
    # Given by API, at no collection point: the tenant's public notice was the one in force.
    assert shared_claims["privacyNotice"] == newsletter_claims["privacyNotice"]
    (item,) = newsletter_claims["services"][0]["purposes"]
    assert item["thirdPartyDisclosure"] is False and item["thirdPartyName"] == ""
    (item,) = shared_claims["services"][0]["purposes"]
    # A disclosure names who receives the data; a processor is not a third party.
    assert item["thirdPartyDisclosure"] is True and item["thirdPartyName"] == "AdCo Ltd"


# ---------------------------------------------------------------------------------------------
# 7. Consents and relationships recorded without a collection point


def test_a_consent_given_without_a_collection_point_is_told_of_a_privacy_notice_change(
    runtime: Runtime, clik_tenant: str, mailbox: MemoryBackend
) -> None:
    with runtime.tenant_context(clik_tenant) as ctx:
        sid = intake.collect(ctx, "newsletter", [FieldInput("email", "eve@example.com")]).subject_id
        wording = notices.current_version(ctx, notices.get_notice(ctx, "newsletter-consent").id)
        assert wording is not None
        # Recorded through the API, with no collection point.
        consent.record_consent(
            ctx,
            sid,
            ConsentInput(
                "newsletter", ConsentAction.GRANT.value, ConsentMethod.API.value, wording.id
            ),
        )
        fay = intake.collect(ctx, "newsletter", [FieldInput("email", "fay@example.com")])
        consent.add_relationship(ctx, fay.subject_id, "status-updates")
    with runtime.tenant_context(clik_tenant) as ctx:
        notices.publish_version(ctx, "privacy", text="v2", summary="Changed.", material=True)
    with runtime.tenant_context(clik_tenant) as ctx:
        announcements.send_due(ctx)
    assert sorted(str(m["To"]) for m in mailbox.sent) == ["eve@example.com", "fay@example.com"]
