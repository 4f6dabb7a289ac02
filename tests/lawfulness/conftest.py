"""Fixtures of the lawfulness tests: a tenant configured like Clik Limited (seed 004), and small
helpers that act through the API as an integrator would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pledge.presets import clik
from pledge.runtime import Runtime


@pytest.fixture
def clik_tenant(runtime: Runtime, tenant: str) -> str:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    return tenant


def ok(response: Any, status: int = 200) -> Any:
    """The JSON of a response that must have `status`; the body in the failure message."""
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if code:
        assert body["code"] == code, body
    return body


def person(email: str, first_name: str = "Sam") -> list[dict[str, str]]:
    return [
        {"name": "email", "value": email},
        {"name": "first_name", "value": first_name, "category": "user.name.first"},
    ]


def collect(
    client: TestClient,
    point: str,
    email: str,
    consents: Mapping[str, bool] | None = None,
    **extra: Any,
) -> str:
    """A form submitted through a collection point; returns the subject id."""
    body = {
        "collection_point": point,
        "fields": person(email),
        "consents": [{"purpose": p, "checked": c} for p, c in (consents or {}).items()],
        **extra,
    }
    return str(ok(client.post("/api/v1/collections", json=body), 201)["subject_id"])


def new_subject(client: TestClient, email: str) -> str:
    body = {"fields": person(email)}
    return str(ok(client.post("/api/v1/subjects", json=body), 201)["id"])


def wording_in_force(client: TestClient, point: str, purpose: str) -> dict[str, Any]:
    """What a form at `point` shows for `purpose`: the wording version in force."""
    found = ok(client.get(f"/api/v1/collection-points/{point}"))
    item: dict[str, Any] = next(p for p in found["purposes"] if p["purpose"] == purpose)
    return item


def grant(
    client: TestClient,
    subject_id: str,
    purpose: str,
    version_id: str,
    **extra: Any,
) -> dict[str, Any]:
    body = {"purpose": purpose, "wording_version_id": version_id, **extra}
    result: dict[str, Any] = ok(
        client.post(f"/api/v1/subjects/{subject_id}/consents", json=body), 201
    )
    return result


def audit_events(client: TestClient, subject_id: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 1000}
    if subject_id:
        params["subject_id"] = subject_id
    items: list[dict[str, Any]] = ok(client.get("/api/v1/audit/entries", params=params))["items"]
    return items
