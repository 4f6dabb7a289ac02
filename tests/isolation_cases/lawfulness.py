"""Isolation cases of the lawfulness routes (issue 3): purposes, collection points, topics,
notices, the consent ledger and receipts, intake, relationships, objections, privacy state,
the gate, the lawful-basis report and the signal settings.

Tenant A has one purpose, one collection point and one notice, all with the slug `a-only`
(the routes share the path parameter `{slug}`), a consent given by the vault's subject of A
(`subject_id`, from vault.py), and a public host. Tenant B must see none of it.
"""

from __future__ import annotations

from sqlalchemy import select

from pledge.consent import service as consent
from pledge.consent.models import ConsentRecord
from pledge.consent.service import ConsentInput
from pledge.notices import service as notices
from pledge.purposes import service as purposes
from pledge.purposes.service import CollectionPointInput, CollectsFor, PurposeInput
from pledge.runtime import Runtime
from pledge.signals import settings
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from tests.isolation_cases import Cases, World
from tests.isolation_cases.vault import A_EMAIL

SLUG = "a-only"
A_NAME = "Purpose only tenant A has"
A_POINT = "Collection point only tenant A has"
A_TEXT = "Wording only tenant A ever showed."
A_HOST = "privacy.tenant-a.example"
A_RECEIPT: dict[str, str] = {}


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        notices.create_notice(ctx, slug=SLUG, kind="consent_wording", title="A's wording")
        notices.publish_version(ctx, SLUG, text=A_TEXT)
        version = notices.publish_version(ctx, SLUG, text=A_TEXT + "\nVersion two.")
        purposes.create_purpose(
            ctx,
            PurposeInput(
                slug=SLUG,
                name=A_NAME,
                lawful_basis="Consent",
                channels=["email"],
                consent_notice=SLUG,
            ),
        )
        purposes.save_collection_point(
            ctx,
            CollectionPointInput(
                slug=SLUG, name=A_POINT, kind="web_form", purposes=[CollectsFor(SLUG)]
            ),
        )
        subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, A_EMAIL)
        assert subject_id is not None
        record = consent.record_consent(
            ctx, subject_id, ConsentInput(SLUG, "grant", "api", version.id, SLUG)
        )
        A_RECEIPT["jws"] = record.receipt_jws or ""
        settings.update_signal_settings(ctx, public_hosts=[A_HOST])
    return {"slug": SLUG, "purpose": SLUG, "version_id": str(version.id)}


PURPOSE_BODY = {"name": "Mallory's", "lawful_basis": "Contract"}
POINT_BODY = {"name": "Mallory's point", "kind": "web_form", "purposes": [{"purpose": SLUG}]}


def check(w: World) -> None:
    a_subject = w.params["subject_id"]
    a_version = w.params["version_id"]
    page = w.page
    # Pages that list: nothing of A.
    for path in (
        "/purposes",
        "/purposes/new",
        "/collection-points",
        "/collection-points/new",
        "/notices",
        "/notices/new",
        "/gate",
        "/reports/lawful-basis",
    ):
        r = page.get(path)
        assert r.status_code == 200, path
        for secret in (A_NAME, A_POINT, SLUG, a_subject):
            assert secret not in r.text, (path, secret)
    r = page.post("/gate/check", data={"who": a_subject, "purpose": SLUG, "csrf_token": w.csrf})
    assert r.status_code == 422 and "No subject has that e-mail or id." in r.text
    r = page.post(
        "/reports/lawful-basis/erase",
        data={"subject_ids": a_subject, "confirm": "erase", "csrf_token": w.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("erased=0&skipped=1")
    # Creating in B with A's slugs makes B's own things; A's stay A's (verify_a).
    r = page.post(
        "/purposes",
        data={"slug": SLUG, "name": "B's", "lawful_basis": "Contract", "csrf_token": w.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = page.post(
        "/collection-points",
        data={
            "slug": "b-point",
            "name": "B's",
            "kind": "web_form",
            "purposes": SLUG,
            "csrf_token": w.csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = page.post(
        "/notices",
        data={"slug": SLUG, "kind": "privacy_notice", "title": "B's", "csrf_token": w.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

    api = w.api
    for path in (
        "/api/v1/purposes",
        "/api/v1/collection-points",
        "/api/v1/topics",
        "/api/v1/notices",
        "/api/v1/reports/lawful-basis",
        "/api/v1/settings/signals",
    ):
        r = api.get(path)
        assert r.status_code == 200, path
        for secret in (A_NAME, A_POINT, A_TEXT, a_subject, a_version, A_HOST):
            assert secret not in r.text, (path, secret)
    r = api.post("/api/v1/purposes", json={**PURPOSE_BODY, "slug": "b-api"})
    assert r.status_code == 201
    r = api.post("/api/v1/collection-points", json={**POINT_BODY, "slug": "b-api"})
    assert r.status_code == 201
    # PUT on A's point slug creates B's own point: 201, not a replacement of A's.
    r = api.put(f"/api/v1/collection-points/{SLUG}", json=POINT_BODY)
    assert r.status_code == 201 and r.json()["name"] == "Mallory's point"
    r = api.post("/api/v1/topics", json={"slug": SLUG, "name": "B's", "purpose": SLUG})
    assert r.status_code == 201
    r = api.post("/api/v1/notices", json={"slug": "b-api", "kind": "privacy_notice", "title": "B"})
    assert r.status_code == 201
    r = api.post("/api/v1/consent-receipts/verify", json={"receipt": A_RECEIPT["jws"]})
    assert r.status_code == 200 and r.json()["valid"] is False and r.json()["claims"] is None
    r = api.post(
        "/api/v1/collections",
        json={"collection_point": "b-api", "fields": [{"name": "email", "value": A_EMAIL}]},
    )
    assert r.status_code == 201 and r.json()["subject_id"] != a_subject
    for body in (
        {"subject_id": a_subject, "purpose": "b-api"},
        {"email": "x@a.example", "purpose": "b-api"},
    ):
        assert api.post("/api/v1/gate/check", json=body).status_code == 404
    r = api.post("/api/v1/gate/audience", json={"purpose": "b-api", "subject_ids": [a_subject]})
    assert r.status_code == 200 and r.json()["allowed_ids"] == []
    r = api.post(
        "/api/v1/reports/lawful-basis/erase", json={"subject_ids": [a_subject], "confirm": True}
    )
    assert r.status_code == 200 and r.json()["erased"] == [] and r.json()["skipped"] == [a_subject]
    r = api.put("/api/v1/settings/signals", json={"public_hosts": [A_HOST]})
    assert r.status_code == 409
    r = api.put(
        "/api/v1/settings/signals", json={"public_hosts": ["b.example"], "honour_gpc": False}
    )
    assert r.status_code == 200
    # The public statements answer per tenant: B's change does not speak for A.
    assert api.get("/.well-known/gpc.json", headers={"host": A_HOST}).json()["gpc"] is True
    assert api.get("/p/tenant-a/.well-known/gpc.json").json()["gpc"] is True
    assert api.get("/p/tenant-b/.well-known/gpc.json").json()["gpc"] is False


def verify_a(runtime: Runtime, params: dict[str, str]) -> None:
    with runtime.tenant_context("tenant-a") as ctx:
        purpose = purposes.get_purpose(ctx, SLUG)
        assert (purpose.name, purpose.lawful_basis, purpose.archived_at) == (
            A_NAME,
            "Consent",
            None,
        )
        point = purposes.get_collection_point(ctx, SLUG)
        assert point.name == A_POINT
        assert [p.slug for p, _ in purposes.collection_point_purposes(ctx, point)] == [SLUG]
        notice = notices.get_notice(ctx, SLUG)
        assert [v.text for v in notices.versions(ctx, notice)] == [
            A_TEXT,
            A_TEXT + "\nVersion two.",
        ]
        subject = subjects.get_subject_row(ctx, params["subject_id"])
        assert subject.restricted_at is None and subject.status == "active"
        assert consent.consent_states(ctx, subject.id) == {purpose.id: True}
        records = ctx.session.scalars(
            select(ConsentRecord).where(
                ConsentRecord.tenant_id == ctx.tenant_id, ConsentRecord.subject_id == subject.id
            )
        ).all()
        assert [r.action for r in records] == ["grant"]
        assert consent.relationship_for(ctx, subject.id, purpose.id) is None
        assert consent.objection_for(ctx, subject.id, purpose.id) is None
        assert ctx.tenant.public_hosts == [A_HOST] and ctx.tenant.honour_gpc is True


SUBJECT = "/api/v1/subjects/{subject_id}"

CASES = Cases(
    setup_a=setup_a,
    api_foreign={
        ("GET", "/api/v1/purposes/{slug}"): None,
        ("PUT", "/api/v1/purposes/{slug}"): PURPOSE_BODY,
        ("POST", "/api/v1/purposes/{slug}/archive"): None,
        ("GET", "/api/v1/collection-points/{slug}"): None,
        ("GET", "/api/v1/notices/{slug}"): None,
        ("POST", "/api/v1/notices/{slug}/versions"): {"text": "Mallory's words"},
        ("GET", "/api/v1/notices/{slug}/diff"): None,
        ("GET", "/api/v1/notice-versions/{version_id}"): None,
        ("POST", SUBJECT + "/consents"): {"purpose": SLUG, "action": "withdraw"},
        ("GET", SUBJECT + "/consents"): None,
        ("POST", SUBJECT + "/consents/withdraw-all"): None,
        ("POST", SUBJECT + "/relationships/{purpose}"): None,
        ("DELETE", SUBJECT + "/relationships/{purpose}"): None,
        ("POST", SUBJECT + "/objections/{purpose}"): None,
        ("POST", SUBJECT + "/objections/{purpose}/override"): {
            "grounds": "Mallory's compelling grounds, at length."
        },
        ("GET", SUBJECT + "/privacy-state"): None,
        ("PUT", SUBJECT + "/privacy-state"): {"restricted": True},
    },
    page_foreign={
        ("GET", "/purposes/{slug}"): None,
        ("POST", "/purposes/{slug}"): {"name": "Mallory's", "lawful_basis": "Contract"},
        ("POST", "/purposes/{slug}/archive"): None,
        ("GET", "/collection-points/{slug}"): None,
        ("POST", "/collection-points/{slug}"): {"name": "Mallory's", "kind": "web_form"},
        ("GET", "/notices/{slug}"): None,
        ("GET", "/notices/{slug}/versions/{version_id}"): None,
        ("GET", "/notices/{slug}/publish"): None,
        ("POST", "/notices/{slug}/versions"): {"text": "Mallory's words"},
        ("GET", "/notices/{slug}/diff"): None,
    },
    lists={
        ("GET", "/api/v1/purposes"),
        ("POST", "/api/v1/purposes"),
        ("GET", "/api/v1/collection-points"),
        ("POST", "/api/v1/collection-points"),
        ("PUT", "/api/v1/collection-points/{slug}"),  # an upsert: B's PUT makes B's own
        ("GET", "/api/v1/topics"),
        ("POST", "/api/v1/topics"),
        ("GET", "/api/v1/notices"),
        ("POST", "/api/v1/notices"),
        ("POST", "/api/v1/consent-receipts/verify"),
        ("POST", "/api/v1/collections"),
        ("POST", "/api/v1/gate/check"),
        ("POST", "/api/v1/gate/audience"),
        ("GET", "/api/v1/reports/lawful-basis"),
        ("POST", "/api/v1/reports/lawful-basis/erase"),
        ("GET", "/api/v1/settings/signals"),
        ("PUT", "/api/v1/settings/signals"),
        ("GET", "/purposes"),
        ("GET", "/purposes/new"),
        ("POST", "/purposes"),
        ("GET", "/collection-points"),
        ("GET", "/collection-points/new"),
        ("POST", "/collection-points"),
        ("GET", "/notices"),
        ("GET", "/notices/new"),
        ("POST", "/notices"),
        ("GET", "/gate"),
        ("POST", "/gate/check"),
        ("GET", "/reports/lawful-basis"),
        ("POST", "/reports/lawful-basis/erase"),
    },
    # Public by design, tested in tests/lawfulness/test_signals.py and test_consent_api.py:
    # they answer with one tenant's published statement or public keys, named by its own
    # host or slug, and hold nothing else.
    public={
        ("GET", "/.well-known/gpc.json"),
        ("GET", "/p/{tenant_slug}/.well-known/gpc.json"),
        ("GET", "/p/{tenant_slug}/.well-known/jwks.json"),
        ("GET", "/p/{slug}/privacy"),  # the tenant from its own path (test_public_notice.py)
    },
    check=check,
    verify_a=verify_a,
)
