"""Isolation cases of the foundation: subjects, audit, API keys, sign-in, the console."""

from __future__ import annotations

from datetime import UTC, datetime

from pledge.access import service as access
from pledge.access.permissions import ALL_SCOPES
from pledge.runtime import Runtime
from pledge.subjects import reading
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.isolation_cases import Cases, World

A_EMAIL = "only.in.a@example.com"
INTERACTION = {
    "kind": "note",
    "occurred_at": "2026-01-02T00:00:00Z",
    "category": "user.content",
    "payload": {},
}


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        sid = subjects.create_subject(
            ctx, [FieldInput("email", A_EMAIL), FieldInput("first_name", "Ada", "user.name.first")]
        )
        subjects.add_interaction(
            ctx,
            sid,
            kind="note",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            category="user.content.private",
            payload={"note": "secret of A"},
        )
        key, _ = access.create_api_key(ctx, name="a", scopes=ALL_SCOPES)
    return {"subject_id": str(sid), "key_id": str(key.id), "name": "first_name"}


def check(w: World) -> None:
    a_subject = w.params["subject_id"]
    r = w.page.get("/subjects")
    assert r.status_code == 200 and a_subject not in r.text
    r = w.page.post("/subjects/search", data={"email": A_EMAIL, "csrf_token": w.csrf})
    assert r.status_code == 200 and a_subject not in r.text
    for path in ("/", "/audit", "/account"):
        r = w.page.get(path)
        assert r.status_code == 200 and a_subject not in r.text, path
    r = w.page.post("/audit/verify", data={"csrf_token": w.csrf})
    assert r.status_code == 200 and "Chain intact" in r.text

    r = w.api.get("/api/v1/subjects")
    assert r.status_code == 200 and a_subject not in r.text
    r = w.api.post("/api/v1/subjects/search", json={"email": A_EMAIL})
    assert r.status_code == 200 and r.json()["items"] == []
    r = w.api.get("/api/v1/audit/entries", params={"limit": 1000})
    assert r.status_code == 200 and a_subject not in r.text
    r = w.api.get("/api/v1/audit/entries", params={"subject_id": a_subject})
    assert r.status_code == 200 and r.json()["items"] == []
    r = w.api.post("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json()["ok"]
    r = w.api.get("/api/v1/api-keys")
    assert r.status_code == 200 and w.params["key_id"] not in r.text
    r = w.api.post("/api/v1/api-keys", json={"name": "b2", "scopes": ["subjects:read"]})
    assert r.status_code == 201
    # The same e-mail is free in tenant B: blind indexes are keyed per tenant.
    r = w.api.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": A_EMAIL}]})
    assert r.status_code == 201, r.text


def verify_a(runtime: Runtime, params: dict[str, str]) -> None:
    with runtime.tenant_context("tenant-a") as ctx:
        view = reading.read_subject(ctx, params["subject_id"], interactions=10)
        assert view.status == "active"
        assert view.value("first_name") == "Ada"
        assert [i.payload for i in view.interactions] == [{"note": "secret of A"}]
        assert all(k.revoked_at is None for k in access.list_api_keys(ctx))


CASES = Cases(
    setup_a=setup_a,
    api_foreign={
        ("GET", "/api/v1/subjects/{subject_id}"): None,
        ("PUT", "/api/v1/subjects/{subject_id}/fields/{name}"): {
            "value": "Mallory",
            "category": "user.name.first",
        },
        ("GET", "/api/v1/subjects/{subject_id}/export"): None,
        ("DELETE", "/api/v1/subjects/{subject_id}"): None,
        ("POST", "/api/v1/subjects/{subject_id}/erase"): {"keep_classes": []},
        ("POST", "/api/v1/subjects/{subject_id}/interactions"): INTERACTION,
        ("GET", "/api/v1/subjects/{subject_id}/interactions"): None,
        ("DELETE", "/api/v1/api-keys/{key_id}"): None,
    },
    page_foreign={
        ("GET", "/subjects/{subject_id}"): None,
        ("GET", "/subjects/{subject_id}/erase"): None,
        ("POST", "/subjects/{subject_id}/erase"): {"confirm": "erase"},
    },
    lists={
        ("GET", "/api/v1/subjects"),
        ("POST", "/api/v1/subjects"),
        ("POST", "/api/v1/subjects/search"),
        ("GET", "/api/v1/audit/entries"),
        ("POST", "/api/v1/audit/verify"),
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("GET", "/subjects"),
        ("POST", "/subjects/search"),
        ("GET", "/"),
        ("GET", "/audit"),
        ("POST", "/audit/verify"),
        ("GET", "/account"),
    },
    public={
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/api/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/login/totp"),
        ("POST", "/login/totp"),
        ("POST", "/logout"),
        ("POST", "/account/totp"),
        ("POST", "/account/totp/confirm"),
    },
    check=check,
    verify_a=verify_a,
)
