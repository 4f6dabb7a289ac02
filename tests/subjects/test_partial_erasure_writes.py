"""A partially erased subject keeps what a legal duty holds and takes nothing new."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token, make_tenant

PERSON = {
    "fields": [
        {"name": "email", "value": "grace@example.com"},
        {"name": "first_name", "value": "Grace", "category": "user.name.first"},
        {
            "name": "invoice_no",
            "value": "INV-1",
            "category": "user.financial",
            "retention_class": "billing",
        },
    ]
}


@pytest.fixture
def client(runtime: Runtime) -> TestClient:
    """A tenant with a second class the person never had data in (`claims`)."""
    make_tenant(
        runtime,
        "acme",
        retention_classes={"billing": "Billing records, 7 years", "claims": "Legal claims"},
    )
    return api_client(runtime, make_api_token(runtime, "acme"))


@pytest.fixture
def partially_erased(client: TestClient) -> str:
    """Grace, erased but for her invoices (billing, kept under a legal duty)."""
    r = client.post("/api/v1/subjects", json=PERSON)
    assert r.status_code == 201, r.text
    sid: str = r.json()["id"]
    r = client.post(f"/api/v1/subjects/{sid}/erase", json={"keep_classes": ["billing"]})
    assert r.status_code == 200 and r.json()["status"] == "partially_erased", r.text
    return sid


def _found(client: TestClient) -> list[object]:
    r = client.post("/api/v1/subjects/search", json={"email": "grace@example.com"})
    assert r.status_code == 200, r.text
    items: list[object] = r.json()["items"]
    return items


def test_a_partially_erased_subject_cannot_be_given_its_identity_back(
    client: TestClient, partially_erased: str
) -> None:
    sid = partially_erased
    assert _found(client) == []
    for retention_class in ("billing", "standard"):
        r = client.put(
            f"/api/v1/subjects/{sid}/fields/email",
            json={"value": "grace@example.com", "retention_class": retention_class},
        )
        assert r.status_code == 410, r.text
        assert r.json()["code"] == "subject_erased"
    assert _found(client) == []


def test_a_partially_erased_subject_takes_no_new_personal_data(
    client: TestClient, partially_erased: str
) -> None:
    sid = partially_erased
    # A new field under the kept class, or under a class the subject never had (a new key
    # would be made); a kept field moved to another class.
    for name, retention_class in [
        ("note", "billing"),
        ("claim", "claims"),
        ("invoice_no", "standard"),
    ]:
        r = client.put(
            f"/api/v1/subjects/{sid}/fields/{name}",
            json={
                "value": "INV-2",
                "category": "user.financial",
                "retention_class": retention_class,
            },
        )
        assert r.status_code == 410, (name, retention_class, r.text)
    r = client.post(
        f"/api/v1/subjects/{sid}/interactions",
        json={
            "kind": "order",
            "occurred_at": "2026-01-01T00:00:00Z",
            "category": "user.behavior.purchase_history",
            "retention_class": "billing",
            "payload": {"invoice": "INV-2"},
        },
    )
    assert r.status_code == 410, r.text
    # What the legal duty keeps is there, unchanged, and nothing was added.
    r = client.get(f"/api/v1/subjects/{sid}")
    assert r.status_code == 200, r.text
    assert [(f["name"], f["value"]) for f in r.json()["fields"]] == [("invoice_no", "INV-1")]
    assert client.get(f"/api/v1/subjects/{sid}/interactions").json() == []


def test_a_kept_field_can_still_be_corrected(client: TestClient, partially_erased: str) -> None:
    """GDPR Art. 16 reaches what is kept: a wrong invoice number is corrected in place."""
    sid = partially_erased
    r = client.put(
        f"/api/v1/subjects/{sid}/fields/invoice_no",
        json={"value": "INV-1A", "category": "user.financial", "retention_class": "billing"},
    )
    assert r.status_code == 200, r.text
    r = client.get(f"/api/v1/subjects/{sid}")
    assert r.json()["status"] == "partially_erased"
    assert [(f["name"], f["value"]) for f in r.json()["fields"]] == [("invoice_no", "INV-1A")]
    assert _found(client) == []
