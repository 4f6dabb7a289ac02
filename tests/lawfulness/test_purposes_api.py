"""Purposes, collection points and topics through the API; Clik Limited's channels (seed 004)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pledge.access.permissions import Scope
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token
from tests.lawfulness.conftest import audit_events, collect, ok, problem

NEWSLETTER = {
    "slug": "newsletter",
    "name": "The newsletter",
    "lawful_basis": "Consent",
    "data_categories": ["user.contact.email"],
    "channels": ["email"],
    "is_marketing": True,
    "consent_notice": "newsletter-consent",
}
STATUS = {
    "slug": "status-updates",
    "name": "Service status e-mails",
    "lawful_basis": "LegitimateInterest",
    "data_categories": ["user.contact.email"],
    "channels": ["email"],
    "legitimate_interest_note": "to tell you when the service is down",
}


def _wording(client: TestClient, slug: str = "newsletter-consent") -> None:
    ok(
        client.post(
            "/api/v1/notices",
            json={"slug": slug, "kind": "consent_wording", "title": "Newsletter consent"},
        ),
        201,
    )
    ok(
        client.post(f"/api/v1/notices/{slug}/versions", json={"text": "Yes, send it to me."}),
        201,
    )


def test_a_purpose_is_created_read_changed_and_archived(client: TestClient) -> None:
    _wording(client)
    no_note = {**STATUS, "legitimate_interest_note": None}
    detail = problem(client.post("/api/v1/purposes", json=no_note), 422, "invalid_input")
    assert "legitimate_interest_note" in detail["detail"]

    created = ok(client.post("/api/v1/purposes", json=STATUS), 201)
    assert created["lawful_basis"] == "LegitimateInterest"
    assert created["legitimate_interest_note"] == STATUS["legitimate_interest_note"]
    assert created["channels"] == ["email"] and created["sensitive"] is False
    newsletter = ok(client.post("/api/v1/purposes", json=NEWSLETTER), 201)
    assert newsletter["consent_notice"] == "newsletter-consent" and newsletter["is_marketing"]
    assert [p["slug"] for p in ok(client.get("/api/v1/purposes"))] == [
        "newsletter",
        "status-updates",
    ]
    assert ok(client.get("/api/v1/purposes/status-updates")) == created

    # A change of basis is a change of the promise: the audit entry names the old one.
    changed = {k: v for k, v in STATUS.items() if k != "slug"} | {"lawful_basis": "Contract"}
    updated = ok(client.put("/api/v1/purposes/status-updates", json=changed))
    assert updated["lawful_basis"] == "Contract" and updated["slug"] == "status-updates"
    last = [e for e in audit_events(client) if e["event"] == "purpose.changed"][-1]
    assert last["details"]["previous_basis"] == "LegitimateInterest"
    assert last["details"]["lawful_basis"] == "Contract"

    archived = ok(client.post("/api/v1/purposes/status-updates/archive"))
    assert archived["archived_at"] is not None
    assert [p["slug"] for p in ok(client.get("/api/v1/purposes"))] == ["newsletter"]
    listed = ok(client.get("/api/v1/purposes", params={"include_archived": True}))
    assert {p["slug"] for p in listed} == {"newsletter", "status-updates"}


def test_bad_purposes_are_refused_with_a_reason(runtime: Runtime, client: TestClient) -> None:
    ok(client.post("/api/v1/purposes", json=STATUS), 201)
    problem(client.post("/api/v1/purposes", json=STATUS), 409, "conflict")
    for bad in (
        {**STATUS, "slug": "Not A Slug"},
        {**STATUS, "slug": "x", "lawful_basis": "BecauseWeCan"},
        {**STATUS, "slug": "x", "channels": ["pigeon"]},
        {**STATUS, "slug": "x", "data_categories": ["favourite.colour"]},
        {**STATUS, "slug": "x", "surprise": True},
        {**NEWSLETTER, "slug": "x", "consent_notice": "no-such-wording"},
    ):
        problem(client.post("/api/v1/purposes", json=bad), 422, "invalid_input")
    problem(client.get("/api/v1/purposes/no-such-purpose"), 404, "not_found")
    body = {k: v for k, v in STATUS.items() if k != "slug"}
    problem(client.put("/api/v1/purposes/no-such-purpose", json=body), 404)
    problem(client.post("/api/v1/purposes/no-such-purpose/archive"), 404)
    reader = api_client(runtime, make_api_token(runtime, "acme", frozenset({Scope.PURPOSES_READ})))
    assert ok(reader.get("/api/v1/purposes"))[0]["slug"] == "status-updates"
    problem(reader.post("/api/v1/purposes", json={**STATUS, "slug": "y"}), 403, "forbidden")


def test_collection_points_say_what_they_collect_for_and_with_which_words(
    client: TestClient,
) -> None:
    _wording(client)
    ok(client.post("/api/v1/purposes", json=NEWSLETTER), 201)
    ok(client.post("/api/v1/purposes", json=STATUS), 201)
    point = {
        "slug": "signup",
        "name": "Sign-up form",
        "kind": "web_form",
        "purposes": [{"purpose": "newsletter"}, {"purpose": "status-updates"}],
    }
    created = ok(client.post("/api/v1/collection-points", json=point), 201)
    problem(client.post("/api/v1/collection-points", json=point), 409, "conflict")
    by_purpose = {p["purpose"]: p for p in created["purposes"]}
    assert by_purpose["newsletter"]["lawful_basis"] == "Consent"
    assert by_purpose["newsletter"]["consent_notice"] == "newsletter-consent"
    assert by_purpose["newsletter"]["wording_text"] == "Yes, send it to me."
    assert len(by_purpose["newsletter"]["wording_sha256"]) == 64
    assert by_purpose["status-updates"]["wording_version_id"] is None
    assert ok(client.get("/api/v1/purposes/newsletter"))["collection_points"] == ["signup"]

    # PUT replaces (200) or creates (201).
    body = {k: v for k, v in point.items() if k != "slug"} | {
        "purposes": [{"purpose": "status-updates"}]
    }
    replaced = ok(client.put("/api/v1/collection-points/signup", json=body), 200)
    assert [p["purpose"] for p in replaced["purposes"]] == ["status-updates"]
    ok(client.put("/api/v1/collection-points/status-page", json=body), 201)
    listed = ok(client.get("/api/v1/collection-points"))
    assert [p["slug"] for p in listed] == ["signup", "status-page"]
    assert ok(client.get("/api/v1/collection-points/status-page"))["name"] == "Sign-up form"

    # A consent purpose needs the exact words shown; purposes and kinds must exist.
    ok(
        client.post(
            "/api/v1/purposes",
            json={**NEWSLETTER, "slug": "offers", "consent_notice": None},
        ),
        201,
    )
    unworded = {**point, "slug": "offers-form", "purposes": [{"purpose": "offers"}]}
    detail = problem(client.post("/api/v1/collection-points", json=unworded), 422)["detail"]
    assert "consent wording" in detail
    worded = {
        **unworded,
        "purposes": [{"purpose": "offers", "consent_notice": "newsletter-consent"}],
    }
    ok(client.post("/api/v1/collection-points", json=worded), 201)
    problem(
        client.post("/api/v1/collection-points", json={**point, "slug": "x", "kind": "fax"}), 422
    )
    problem(
        client.post("/api/v1/collection-points", json={**point, "slug": "y", "purposes": []}), 422
    )
    missing = {**point, "slug": "z", "purposes": [{"purpose": "nope"}]}
    problem(client.post("/api/v1/collection-points", json=missing), 404)
    problem(client.get("/api/v1/collection-points/nowhere"), 404, "not_found")


def test_topics_belong_to_a_purpose(client: TestClient) -> None:
    _wording(client)
    ok(client.post("/api/v1/purposes", json=NEWSLETTER), 201)
    topic = {"slug": "weekly", "name": "Weekly digest", "purpose": "newsletter"}
    created = ok(client.post("/api/v1/topics", json=topic), 201)
    assert created["purpose"] == "newsletter" and created["is_marketing"] is True
    assert ok(client.get("/api/v1/topics")) == [created]
    problem(client.post("/api/v1/topics", json=topic), 409)
    problem(client.post("/api/v1/topics", json={**topic, "slug": "x", "purpose": "nope"}), 404)
    problem(client.post("/api/v1/topics", json={**topic, "slug": "*"}), 422)


# Seed 004 (Clik Limited): one purpose and lawful basis per collection channel.
LI, CONTRACT, CONSENT, LEGAL = "LegitimateInterest", "Contract", "Consent", "LegalObligation"
CLIK_CHANNELS = {
    "contact-email": {"record-keeping": LI, "marketing-preferences": LEGAL},
    "contact-phone": {"record-keeping": LI, "call-training": LI},
    "contact-letter": {"record-keeping": LI},
    "trade-show": {"record-keeping": LI},
    "website": {"site-analytics": LI},
    "trial": {"provide-service": CONTRACT, "software-help": LI, "service-analysis": LI},
    "demo": {"provide-service": CONTRACT, "software-help": LI, "service-analysis": LI},
    "product-interest": {"record-keeping": LI, "product-marketing": LI},
    "purchase": {
        "provide-service": CONTRACT,
        "software-help": LI,
        "service-analysis": LI,
        "marketing-preferences": LEGAL,
    },
    "sales-chat": {"record-keeping": LI, "product-info": CONSENT},
    "support-chat": {"support": LI},
    "newsletter": {"newsletter": CONSENT},
    "complaint": {"complaints": LI},
    "status-page": {"status-updates": LI},
}


def test_every_clik_channel_is_expressible_and_visible_through_the_api(
    client: TestClient, clik_tenant: str
) -> None:
    points = {p["slug"]: p for p in ok(client.get("/api/v1/collection-points"))}
    assert {
        slug: {i["purpose"]: i["lawful_basis"] for i in p["purposes"]} for slug, p in points.items()
    } == CLIK_CHANNELS
    for p in points.values():
        assert p["privacy_notice"] == "privacy"
        for item in p["purposes"]:
            if item["lawful_basis"] == CONSENT:
                # "we will always ask for consent in the live chat": the words are on record.
                assert item["wording_text"] and item["wording_version_id"]
            if item["lawful_basis"] == LI:
                assert item["legitimate_interest_note"]
    purposes = {p["slug"]: p for p in ok(client.get("/api/v1/purposes"))}
    for slug, collects in CLIK_CHANNELS.items():
        for purpose in collects:
            assert slug in purposes[purpose]["collection_points"]
    # "We may also record telephone calls for training purposes": what was said, not a voice
    # print — no special-category (Art. 9) data, so "limit sensitive data" does not stop it.
    assert purposes["call-training"]["sensitive"] is False
    assert purposes["marketing-preferences"]["lawful_basis"] == LEGAL
    topics = {t["slug"]: t for t in ok(client.get("/api/v1/topics"))}
    assert topics["status"]["purpose"] == "status-updates" and not topics["status"]["is_marketing"]
    assert topics["newsletter"]["is_marketing"]

    # And each channel does what the notice says: the trial gives a contract basis.
    sid = collect(client, "trial", "trial@example.com")
    state = ok(client.get(f"/api/v1/subjects/{sid}/privacy-state"))
    assert {r["purpose"]: r["lawful_basis"] for r in state["relationships"]} == CLIK_CHANNELS[
        "trial"
    ]
