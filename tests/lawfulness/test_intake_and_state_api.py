"""Intake through a collection point (all or nothing), relationships, objections and the
privacy state — through the API, with the gate's answer as what a user notices."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pledge.access.permissions import Scope
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token
from tests.lawfulness.conftest import audit_events, collect, ok, person, problem


def _may(client: TestClient, sid: str, purpose: str, channel: str | None = "email") -> list[str]:
    body = {"subject_id": sid, "purpose": purpose, "channel": channel}
    reasons: list[str] = ok(client.post("/api/v1/gate/check", json=body))["reasons"]
    return reasons


def test_a_live_chat_records_the_relationship_and_only_the_ticked_consent(
    client: TestClient, clik_tenant: str
) -> None:
    """Seed 004: the sales chat rests on legitimate interest, and "we will always ask for
    consent in the live chat if you wish us to send you any information"."""
    body = {
        "collection_point": "sales-chat",
        "fields": person("chat@example.com"),
        "consents": [{"purpose": "product-info", "checked": True}],
        "method": "live_chat",
        "signals": {"dnt": True, "ip": "198.51.100.7", "user_agent": "Firefox"},
    }
    result = ok(client.post("/api/v1/collections", json=body), 201)
    assert result["created"] is True
    assert result["relationships"] == ["record-keeping"] and result["consents"] == ["product-info"]
    sid = result["subject_id"]
    (entry,) = ok(client.get(f"/api/v1/subjects/{sid}/consents"))["entries"]
    assert entry["method"] == "live_chat" and entry["dnt"] is True and entry["gpc"] is False
    assert entry["privacy_notice"]["notice"] == "privacy"
    assert _may(client, sid, "product-info") == []
    assert _may(client, sid, "record-keeping") == []

    # The same person again, box left unticked: no new consent, the old one stands.
    again = {**body, "consents": [{"purpose": "product-info", "checked": False}]}
    second = ok(client.post("/api/v1/collections", json=again), 201)
    assert second["subject_id"] == sid and second["created"] is False
    assert second["consents"] == []
    assert len(ok(client.get(f"/api/v1/subjects/{sid}/consents"))["entries"]) == 1


def test_a_prechecked_box_refuses_the_whole_submission(
    client: TestClient, clik_tenant: str
) -> None:
    body = {
        "collection_point": "newsletter",
        "fields": person("pre@example.com"),
        "consents": [{"purpose": "newsletter", "checked": True, "prechecked": True}],
    }
    assert "pre-checked" in problem(client.post("/api/v1/collections", json=body), 422)["detail"]
    assert ok(client.get("/api/v1/subjects"))["items"] == []
    assert not [e for e in audit_events(client) if e["event"].startswith(("subject.", "consent."))]
    not_here = {**body, "consents": [{"purpose": "product-info", "checked": True}]}
    assert (
        "does not collect"
        in problem(client.post("/api/v1/collections", json=not_here), 422)["detail"]
    )
    no_box = {
        **body,
        "collection_point": "trial",
        "consents": [{"purpose": "provide-service", "checked": True}],
    }
    problem(client.post("/api/v1/collections", json=no_box), 422)
    problem(client.post("/api/v1/collections", json={**body, "collection_point": "nope"}), 404)
    bad_field = {**body, "consents": [], "fields": [{"name": "email", "value": "not an e-mail"}]}
    problem(client.post("/api/v1/collections", json=bad_field), 422)
    assert ok(client.get("/api/v1/subjects"))["items"] == []


def test_intake_needs_both_subjects_and_consent_write(runtime: Runtime, clik_tenant: str) -> None:
    only_subjects = api_client(
        runtime, make_api_token(runtime, clik_tenant, frozenset({Scope.SUBJECTS_WRITE}))
    )
    body = {"collection_point": "newsletter", "fields": person("s@example.com")}
    problem(only_subjects.post("/api/v1/collections", json=body), 403, "forbidden")
    only_consent = api_client(
        runtime, make_api_token(runtime, clik_tenant, frozenset({Scope.CONSENT_WRITE}))
    )
    problem(only_consent.post("/api/v1/collections", json=body), 403, "forbidden")


def test_relationships_start_and_end_a_basis(client: TestClient, clik_tenant: str) -> None:
    sid = collect(client, "newsletter", "rel@example.com")
    assert _may(client, sid, "status-updates") == ["no_basis"]
    started = ok(
        client.post(
            f"/api/v1/subjects/{sid}/relationships/status-updates",
            json={"collection_point": "status-page"},
        )
    )
    assert started["in_force"] is True and started["lawful_basis"] == "LegitimateInterest"
    assert _may(client, sid, "status-updates") == []
    ended = ok(client.delete(f"/api/v1/subjects/{sid}/relationships/status-updates"))
    assert ended["in_force"] is False and ended["until"] is not None
    assert _may(client, sid, "status-updates") == ["basis_ended"]
    # Restarting it is recorded again.
    ok(client.post(f"/api/v1/subjects/{sid}/relationships/status-updates"))
    assert _may(client, sid, "status-updates") == []
    changes = [
        e["details"]["change"]
        for e in audit_events(client, sid)
        if e["event"] == "relationship.changed"
    ]
    assert changes == ["started", "ended", "started"]

    url = f"/api/v1/subjects/{sid}/relationships/newsletter"
    assert "record a consent" in problem(client.post(url), 422)["detail"]
    problem(client.delete(f"/api/v1/subjects/{sid}/relationships/provide-service"), 404)
    problem(client.post(f"/api/v1/subjects/{sid}/relationships/nope"), 404)
    problem(
        client.post(
            f"/api/v1/subjects/{sid}/relationships/support",
            json={"collection_point": "nowhere"},
        ),
        404,
    )


def test_objections_stop_a_purpose_and_only_compelling_grounds_override(
    client: TestClient, clik_tenant: str
) -> None:
    sid = collect(client, "product-interest", "obj@example.com")
    assert (
        _may(client, sid, "record-keeping") == [] and _may(client, sid, "product-marketing") == []
    )

    ok(client.post(f"/api/v1/subjects/{sid}/objections/record-keeping"))
    assert _may(client, sid, "record-keeping") == ["objected"]
    short = {"grounds": "because"}
    problem(
        client.post(f"/api/v1/subjects/{sid}/objections/record-keeping/override", json=short), 422
    )
    grounds = {"grounds": "A pending legal claim about the invoice needs this correspondence."}
    overridden = ok(
        client.post(f"/api/v1/subjects/{sid}/objections/record-keeping/override", json=grounds)
    )
    assert overridden["overridden"] is True
    assert _may(client, sid, "record-keeping") == []

    # Direct marketing: the objection is absolute (GDPR Art. 21(3), seed 004).
    ok(client.post(f"/api/v1/subjects/{sid}/objections/product-marketing"))
    assert _may(client, sid, "product-marketing") == ["objected"]
    url = f"/api/v1/subjects/{sid}/objections/product-marketing/override"
    assert "Art. 21(3)" in problem(client.post(url, json=grounds), 422)["detail"]
    problem(client.post(f"/api/v1/subjects/{sid}/objections/provide-service"), 422)
    problem(
        client.post(f"/api/v1/subjects/{sid}/objections/status-updates/override", json=grounds), 422
    )

    state = ok(client.get(f"/api/v1/subjects/{sid}/privacy-state"))
    assert {o["purpose"]: o["overridden"] for o in state["objections"]} == {
        "product-marketing": False,
        "record-keeping": True,
    }
    events = [e["event"] for e in audit_events(client, sid)]
    assert events.count("objection.recorded") == 2 and events.count("objection.overridden") == 1
    # The grounds are a note about a person: sealed, never in the audit trail.
    assert "legal claim" not in str(audit_events(client, sid))


def test_the_privacy_state_is_read_and_changed_flag_by_flag(
    client: TestClient, clik_tenant: str
) -> None:
    sid = collect(client, "newsletter", "kid@example.com", {"newsletter": True})
    url = f"/api/v1/subjects/{sid}/privacy-state"
    state = ok(client.get(url))
    assert state["consents"] == [{"purpose": "newsletter", "granted": True}]
    assert not any(state[k] for k in ("restricted", "sale_opt_out", "limit_sensitive", "is_child"))

    assert ok(client.put(url, json={"restricted": True}))["restricted"] is True
    assert _may(client, sid, "newsletter") == ["restricted"]
    ok(client.put(url, json={"restricted": False}))
    assert _may(client, sid, "newsletter") == []

    child = ok(client.put(url, json={"is_child": True}))
    assert child["is_child"] is True and child["parental_consent"] is False
    assert _may(client, sid, "newsletter") == ["child_without_parental_consent"]
    parent = ok(client.put(url, json={"parental_consent": True}))
    assert parent["is_child"] is True and parent["parental_consent_at"] is not None
    assert _may(client, sid, "newsletter") == []

    both = ok(client.put(url, json={"sale_opt_out": True, "limit_sensitive": True}))
    assert both["sale_opt_out"] and both["sale_opt_out_source"] == "api" and both["limit_sensitive"]
    adult = ok(client.put(url, json={"is_child": False, "parental_consent": False}))
    assert adult["is_child"] is False and adult["parental_consent"] is False
    problem(client.put(url, json={"parental_consent": True}), 422)
    problem(client.put(url, json={"restricted": "sometimes"}), 422)
    changes = [
        e["details"]["change"]
        for e in audit_events(client, sid)
        if e["event"] == "privacy_state.changed"
    ]
    assert changes == [
        "restricted",
        "restriction_lifted",
        "child",
        "child",
        "sale_opted_out",
        "sensitive_limited",
        "adult",
    ]
    problem(client.get("/api/v1/subjects/not-an-id/privacy-state"), 404)
