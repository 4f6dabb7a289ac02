"""The consent ledger through the API: grants with the exact words shown and a signed receipt,
withdrawals, the proof over time (seed 000), GPC on the consent call, receipts verified."""

from __future__ import annotations

import base64
import hashlib
import json

from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet

from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token, make_tenant
from tests.lawfulness.conftest import (
    audit_events,
    collect,
    grant,
    new_subject,
    ok,
    problem,
    wording_in_force,
)

OFFERS_V1 = "Yes, e-mail me offers from One Click System."
OFFERS_V2 = "Yes, e-mail me offers from One Click System and its partners."


def _offers_setup(client: TestClient) -> None:
    """A tenant like One Click System's customers: one consent checkbox on a sign-up form."""
    ok(
        client.post(
            "/api/v1/notices",
            json={"slug": "offers-consent", "kind": "consent_wording", "title": "Offers"},
        ),
        201,
    )
    ok(client.post("/api/v1/notices/offers-consent/versions", json={"text": OFFERS_V1}), 201)
    ok(
        client.post(
            "/api/v1/purposes",
            json={
                "slug": "offers",
                "name": "E-mail offers",
                "lawful_basis": "Consent",
                "channels": ["email"],
                "is_marketing": True,
                "data_categories": ["user.contact.email"],
                "consent_notice": "offers-consent",
            },
        ),
        201,
    )
    ok(
        client.post(
            "/api/v1/collection-points",
            json={
                "slug": "signup",
                "name": "Sign-up form",
                "kind": "web_form",
                "purposes": [{"purpose": "offers"}],
            },
        ),
        201,
    )


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return claims


def test_the_proof_keeps_the_words_seen_after_the_wording_changes(client: TestClient) -> None:
    """Seed 000: "show the exact text your contacts agreed to" — even after it changed."""
    _offers_setup(client)
    v1 = wording_in_force(client, "signup", "offers")
    early = collect(client, "signup", "early@example.com", {"offers": True})
    ok(
        client.post(
            "/api/v1/notices/offers-consent/versions",
            json={"text": OFFERS_V2, "summary": "Partners' offers too"},
        ),
        201,
    )
    v2 = wording_in_force(client, "signup", "offers")
    assert v2["wording_text"] == OFFERS_V2 and v2["wording_version_id"] != v1["wording_version_id"]
    late = collect(client, "signup", "late@example.com", {"offers": True})

    proof = ok(client.get(f"/api/v1/subjects/{early}/consents"))
    (entry,) = proof["entries"]
    assert entry["action"] == "grant" and entry["method"] == "web_form"
    assert (
        entry["collection_point"] == "signup" and entry["collection_point_name"] == "Sign-up form"
    )
    assert entry["wording"]["text"] == OFFERS_V1
    assert entry["wording"]["version"] == 1
    assert entry["wording"]["sha256"] == hashlib.sha256(OFFERS_V1.encode()).hexdigest()
    assert entry["wording_sha256"] == entry["wording"]["sha256"]
    # The receipt given to the person names the same words, by version and hash.
    wording = _claims(entry["receipt"])["consentWording"]
    assert wording == {
        "versionId": v1["wording_version_id"],
        "version": 1,
        "sha256": entry["wording"]["sha256"],
    }
    assert ok(client.post("/api/v1/consent-receipts/verify", json={"receipt": entry["receipt"]}))[
        "valid"
    ]
    (late_entry,) = ok(client.get(f"/api/v1/subjects/{late}/consents"))["entries"]
    assert late_entry["wording"]["text"] == OFFERS_V2 and late_entry["wording"]["version"] == 2


def test_a_grant_returns_a_receipt_anyone_can_verify(runtime: Runtime, client: TestClient) -> None:
    _offers_setup(client)
    sid = new_subject(client, "ada@example.com")
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    record = grant(client, sid, "offers", version, collection_point="signup")
    assert record["action"] == "grant" and record["wording_version_id"] == version
    token = record["receipt"]
    claims = _claims(token)
    assert claims["consentReceiptID"] == record["id"] and claims["piiPrincipalId"] == sid
    assert claims["version"] == "KI-CR-v1.1.0" and claims["collectionMethod"] == "api"

    # The person needs no account: the tenant's public keys verify the receipt.
    keys = ok(client.get("/p/acme/.well-known/jwks.json"))
    assert [k["kty"] for k in keys["keys"]] and all("d" not in k for k in keys["keys"])
    verified = jws.deserialize_compact(token, KeySet.import_key_set(keys), algorithms=["Ed25519"])
    assert json.loads(verified.payload)["consentReceiptID"] == record["id"]
    problem(client.get("/p/no-such-tenant/.well-known/jwks.json"), 404)

    result = ok(client.post("/api/v1/consent-receipts/verify", json={"receipt": token}))
    assert result["valid"] is True and result["reason"] is None
    assert result["claims"]["consentReceiptID"] == record["id"]

    # An altered receipt: same signature, another person named in it.
    head, _payload, signature = token.split(".")
    forged = dict(_claims(token), piiPrincipalId="01890000-0000-7000-8000-000000000000")
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    tampered = ok(
        client.post(
            "/api/v1/consent-receipts/verify",
            json={"receipt": f"{head}.{forged_payload}.{signature}"},
        )
    )
    assert tampered["valid"] is False and "signature" in tampered["reason"]
    assert tampered["claims"] is None
    for garbage in ("not a receipt", "a.b.c", "....", head + ".."):
        checked = ok(client.post("/api/v1/consent-receipts/verify", json={"receipt": garbage}))
        assert checked["valid"] is False and checked["reason"]

    # Another tenant's receipt, however genuine, is not one of this tenant's.
    make_tenant(runtime, "other")
    other = api_client(runtime, make_api_token(runtime, "other"))
    _offers_setup(other)
    theirs = grant(
        other,
        new_subject(other, "ada@example.com"),
        "offers",
        wording_in_force(other, "signup", "offers")["wording_version_id"],
    )["receipt"]
    foreign = ok(client.post("/api/v1/consent-receipts/verify", json={"receipt": theirs}))
    assert foreign["valid"] is False and "never used" in foreign["reason"]
    assert ok(other.post("/api/v1/consent-receipts/verify", json={"receipt": theirs}))["valid"]

    checks = [e for e in audit_events(client) if e["event"] == "consent.receipt_verified"]
    assert [e["details"]["valid"] for e in checks] == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert checks[0]["details"]["receipt_id"] == record["id"]
    assert "claims" not in checks[0]["details"]


def test_what_is_not_consent_is_refused_and_nothing_is_written(client: TestClient) -> None:
    _offers_setup(client)
    ok(
        client.post(
            "/api/v1/purposes",
            json={
                "slug": "support",
                "name": "Support",
                "lawful_basis": "Contract",
                "data_categories": ["user.contact"],
            },
        ),
        201,
    )
    sid = new_subject(client, "bob@example.com")
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    url = f"/api/v1/subjects/{sid}/consents"
    refusals = [
        ({"purpose": "offers", "wording_version_id": version, "prechecked": True}, "pre-checked"),
        ({"purpose": "offers"}, "wording_version_id"),
        ({"purpose": "offers", "wording_version_id": "garbage"}, "wording_version_id"),
        ({"purpose": "support", "wording_version_id": version}, "not based on consent"),
        ({"purpose": "support", "action": "withdraw"}, "not based on consent"),
        ({"purpose": "offers", "wording_version_id": version, "method": "telepathy"}, ""),
        ({"purpose": "offers", "wording_version_id": version, "signals": {"gpc": [1]}}, ""),
    ]
    for body, why in refusals:
        detail = problem(client.post(url, json=body), 422)["detail"]
        assert why in detail, (body, detail)
    problem(client.post(url, json={"purpose": "nope", "wording_version_id": version}), 404)
    missing = "/api/v1/subjects/01890000-0000-7000-8000-000000000000/consents"
    problem(client.post(missing, json={"purpose": "offers", "wording_version_id": version}), 404)
    assert ok(client.get(url))["entries"] == []
    assert not [e for e in audit_events(client, sid) if e["event"].startswith("consent.")]

    # A form's words are those of its own collection point.
    ok(
        client.post(
            "/api/v1/collection-points",
            json={
                "slug": "helpdesk",
                "name": "Help desk",
                "kind": "live_chat",
                "purposes": [{"purpose": "support"}],
            },
        ),
        201,
    )
    body = {"purpose": "offers", "wording_version_id": version, "collection_point": "helpdesk"}
    assert "does not collect" in problem(client.post(url, json=body), 422)["detail"]


def test_withdrawal_is_as_easy_as_giving_and_stops_the_gate(client: TestClient) -> None:
    _offers_setup(client)
    ok(client.post("/api/v1/notices/offers-consent/versions", json={"text": OFFERS_V2}), 201)
    ok(
        client.post(
            "/api/v1/purposes",
            json={
                "slug": "surveys",
                "name": "Surveys",
                "lawful_basis": "Consent",
                "channels": ["email"],
                "consent_notice": "offers-consent",
            },
        ),
        201,
    )
    sid = new_subject(client, "cy@example.com")
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    grant(client, sid, "offers", version)
    grant(client, sid, "surveys", version)
    check = {"subject_id": sid, "purpose": "offers", "channel": "email"}
    assert ok(client.post("/api/v1/gate/check", json=check))["allowed"]

    withdrawn = ok(
        client.post(
            f"/api/v1/subjects/{sid}/consents",
            json={"purpose": "offers", "action": "withdraw", "method": "preference_center"},
        ),
        201,
    )
    assert withdrawn["receipt"] is None and withdrawn["wording_version_id"] is None
    decision = ok(client.post("/api/v1/gate/check", json=check))
    assert decision["reasons"] == ["consent_withdrawn"] and not decision["allowed"]

    everything = ok(client.post(f"/api/v1/subjects/{sid}/consents/withdraw-all"))
    assert [r["purpose"] for r in everything] == ["surveys"]
    assert ok(client.post(f"/api/v1/subjects/{sid}/consents/withdraw-all", json={})) == []
    timeline = ok(client.get(f"/api/v1/subjects/{sid}/consents"))["entries"]
    assert [(e["purpose"], e["action"]) for e in timeline] == [
        ("offers", "grant"),
        ("surveys", "grant"),
        ("offers", "withdraw"),
        ("surveys", "withdraw"),
    ]
    assert timeline[2]["method"] == "preference_center" and timeline[2]["wording"] is None
    events = [e["event"] for e in audit_events(client, sid)]
    assert events.count("consent.granted") == 2 and events.count("consent.withdrawn") == 2
    # Reading the proof is a read of the subject's data: audited.
    assert "subject.viewed" in events


def test_gpc_sent_with_a_consent_is_recorded_and_honoured(client: TestClient) -> None:
    _offers_setup(client)
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    sid = new_subject(client, "gpc@example.com")
    record = ok(
        client.post(
            f"/api/v1/subjects/{sid}/consents",
            json={"purpose": "offers", "wording_version_id": version},
            headers={"Sec-GPC": "1"},
        ),
        201,
    )
    assert record["gpc"] is True and record["signal_effects"] == ["sale_opt_out"]
    (entry,) = ok(client.get(f"/api/v1/subjects/{sid}/consents"))["entries"]
    assert entry["gpc"] is True
    state = ok(client.get(f"/api/v1/subjects/{sid}/privacy-state"))
    assert state["sale_opt_out"] is True and state["sale_opt_out_source"] == "gpc"
    entries = audit_events(client, sid)
    granted = next(e for e in entries if e["event"] == "consent.granted")
    assert granted["details"]["gpc"] is True
    signal = next(e for e in entries if e["event"] == "signal.received")
    assert signal["details"] == {"gpc": True, "dnt": None, "effects": ["sale_opt_out"]}

    # Only the exact value 1 counts; among several headers, any 1 counts.
    other = new_subject(client, "nogpc@example.com")
    url = f"/api/v1/subjects/{other}/consents"
    body = {"purpose": "offers", "wording_version_id": version}
    assert ok(client.post(url, json=body, headers={"Sec-GPC": "true"}), 201)["gpc"] is False
    third = new_subject(client, "two@example.com")
    both = client.post(
        f"/api/v1/subjects/{third}/consents",
        json=body,
        headers=[("Sec-GPC", "0"), ("Sec-GPC", "1"), ("DNT", "1")],
    )
    assert ok(both, 201)["gpc"] is True and both.json()["dnt"] is True

    # An explicit choice beats GPC (STANDARDS.md: GPC precedence).
    fourth = new_subject(client, "optin@example.com")
    ok(client.put(f"/api/v1/subjects/{fourth}/privacy-state", json={"sale_opt_out": True}))
    ok(client.put(f"/api/v1/subjects/{fourth}/privacy-state", json={"sale_opt_out": False}))
    kept = ok(
        client.post(f"/api/v1/subjects/{fourth}/consents", json=body, headers={"Sec-GPC": "1"}),
        201,
    )
    assert kept["gpc"] is True
    assert ok(client.get(f"/api/v1/subjects/{fourth}/privacy-state"))["sale_opt_out"] is False
    # What the signal did is said as it is: the person's opt-in stood (GPC was not applied);
    # a person opted out already stays so, nothing changed.
    assert kept["signal_effects"] == ["sale_opt_in_kept"]
    received = [e for e in audit_events(client, fourth) if e["event"] == "signal.received"]
    assert received[-1]["details"]["effects"] == ["sale_opt_in_kept"]
    again = client.post(f"/api/v1/subjects/{sid}/consents", json=body, headers={"Sec-GPC": "1"})
    assert ok(again, 201)["signal_effects"] == ["sale_opt_out_already"]


def test_a_tenant_that_does_not_honour_gpc_still_records_it(client: TestClient) -> None:
    _offers_setup(client)
    ok(client.put("/api/v1/settings/signals", json={"honour_gpc": False}))
    sid = new_subject(client, "rec@example.com")
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    record = grant(client, sid, "offers", version, signals={"gpc": True, "ip": "203.0.113.9"})
    assert record["gpc"] is True and record["signal_effects"] == []
    assert ok(client.get(f"/api/v1/subjects/{sid}/privacy-state"))["sale_opt_out"] is False


def test_an_erased_subject_cannot_consent(client: TestClient) -> None:
    _offers_setup(client)
    sid = new_subject(client, "gone@example.com")
    ok(client.delete(f"/api/v1/subjects/{sid}"))
    version = wording_in_force(client, "signup", "offers")["wording_version_id"]
    body = {"purpose": "offers", "wording_version_id": version}
    problem(client.post(f"/api/v1/subjects/{sid}/consents", json=body), 410, "subject_erased")
    assert ok(client.get(f"/api/v1/subjects/{sid}/consents"))["entries"] == []
