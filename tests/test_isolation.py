"""Tenant isolation on every route: a principal of tenant B cannot read, list or change
anything of tenant A, and A's ids answer 404 exactly like missing ones.

The test enumerates the application's routes; a route with no case below fails the test, so
a new route cannot forget the tenant scope silently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from pledge.access import service as access
from pledge.access.permissions import ALL_SCOPES, Role
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.web.app import API_ROUTERS, PAGE_ROUTERS, create_app
from tests.conftest import PASSWORD, api_client, make_api_token, make_tenant, make_user

A_EMAIL = "only.in.a@example.com"


@dataclass
class World:
    a_subject: uuid.UUID
    a_key: uuid.UUID
    api: TestClient  # authenticated as tenant B (all scopes)
    page: TestClient  # signed in as tenant B's owner
    csrf: str


def login(client: TestClient, workspace: str, email: str, password: str = PASSWORD) -> str:
    client.get("/login")
    csrf = client.cookies["pledge_csrf"]
    r = client.post(
        "/login",
        data={
            "workspace": workspace,
            "email": email,
            "password": password,
            "csrf_token": csrf,
            "next": "/",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf


def build_world(runtime: Runtime) -> World:
    make_tenant(runtime, "tenant-a")
    make_tenant(runtime, "tenant-b")
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
    make_user(runtime, "tenant-b", "owner@b.example", Role.OWNER)
    page = TestClient(create_app(runtime), raise_server_exceptions=False)
    csrf = login(page, "tenant-b", "owner@b.example")
    return World(sid, key.id, api_client(runtime, make_api_token(runtime, "tenant-b")), page, csrf)


def _fill(path: str, w: World) -> str:
    return (
        path.replace("{subject_id}", str(w.a_subject))
        .replace("{name}", "first_name")
        .replace("{key_id}", str(w.a_key))
    )


# (method, path) → how B calls it and what must hold. "404" means: A's id must look missing.
INTERACTION = {
    "kind": "note",
    "occurred_at": "2026-01-02T00:00:00Z",
    "category": "user.content",
    "payload": {},
}
API_FOREIGN: dict[tuple[str, str], dict[str, Any] | None] = {
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
}
PAGE_FOREIGN: dict[tuple[str, str], dict[str, str] | None] = {
    ("GET", "/subjects/{subject_id}"): None,
    ("GET", "/subjects/{subject_id}/erase"): None,
    ("POST", "/subjects/{subject_id}/erase"): {"confirm": "erase"},
}


def check_api_lists(w: World) -> None:
    r = w.api.get("/api/v1/subjects")
    assert r.status_code == 200 and str(w.a_subject) not in r.text
    r = w.api.post("/api/v1/subjects/search", json={"email": A_EMAIL})
    assert r.status_code == 200 and r.json()["items"] == []
    r = w.api.get("/api/v1/audit/entries", params={"limit": 1000})
    assert r.status_code == 200 and str(w.a_subject) not in r.text
    r = w.api.get("/api/v1/audit/entries", params={"subject_id": str(w.a_subject)})
    assert r.status_code == 200 and r.json()["items"] == []
    r = w.api.post("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json()["ok"]
    r = w.api.get("/api/v1/api-keys")
    assert r.status_code == 200 and str(w.a_key) not in r.text
    r = w.api.post("/api/v1/api-keys", json={"name": "b2", "scopes": ["subjects:read"]})
    assert r.status_code == 201
    # The same e-mail is free in tenant B: blind indexes are keyed per tenant.
    r = w.api.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": A_EMAIL}]})
    assert r.status_code == 201, r.text


def check_page_lists(w: World) -> None:
    r = w.page.get("/subjects")
    assert r.status_code == 200 and str(w.a_subject) not in r.text
    r = w.page.post("/subjects/search", data={"email": A_EMAIL, "csrf_token": w.csrf})
    assert r.status_code == 200 and str(w.a_subject) not in r.text
    for path in ("/", "/audit", "/account"):
        r = w.page.get(path)
        assert r.status_code == 200 and str(w.a_subject) not in r.text, path
    r = w.page.post("/audit/verify", data={"csrf_token": w.csrf})
    assert r.status_code == 200 and "Chain intact" in r.text


NOT_TENANT_DATA = {
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
}
LIST_ROUTES = {
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
}


def all_routes(runtime: Runtime) -> set[tuple[str, str]]:
    """Every (method, path) the application serves: its own routes and its routers'."""
    found: set[tuple[str, str]] = set()
    routes: list[BaseRoute] = [
        r for r in create_app(runtime).routes if isinstance(r, APIRoute | Route)
    ]
    routes += [r for router in (*API_ROUTERS, *PAGE_ROUTERS) for r in router.routes]
    for route in routes:
        assert isinstance(route, APIRoute | Route), route
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_has_an_isolation_case(runtime: Runtime) -> None:
    covered = set(API_FOREIGN) | set(PAGE_FOREIGN) | NOT_TENANT_DATA | LIST_ROUTES
    missing = all_routes(runtime) - covered
    assert not missing, f"routes without a tenant-isolation case: {sorted(missing)}"


def test_tenant_b_cannot_reach_tenant_a(runtime: Runtime) -> None:
    w = build_world(runtime)
    for (method, path), body in API_FOREIGN.items():
        r = w.api.request(method, _fill(path, w), json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        # …exactly as for an id that exists nowhere.
        missing = path.replace("{subject_id}", str(uuid.uuid4())).replace(
            "{key_id}", str(uuid.uuid4())
        )
        r2 = w.api.request(method, missing.replace("{name}", "first_name"), json=body)
        assert (r2.status_code, r2.json()["code"]) == (404, r.json()["code"])
    for (method, path), form in PAGE_FOREIGN.items():
        data = {**(form or {}), "csrf_token": w.csrf} if method == "POST" else None
        r = w.page.request(method, _fill(path, w), data=data, headers={"accept": "text/html"})
        assert r.status_code == 404, (method, path, r.status_code)
        assert A_EMAIL not in r.text
    check_page_lists(w)
    check_api_lists(w)
    # Tenant A is untouched.
    with runtime.tenant_context("tenant-a") as ctx:
        view = subjects.read_subject(ctx, w.a_subject, interactions=10)
        assert view.status == "active"
        assert view.value("first_name") == "Ada"
        assert [i.payload for i in view.interactions] == [{"note": "secret of A"}]
        assert all(k.revoked_at is None for k in access.list_api_keys(ctx))
