"""A JSON body's values are taken in their own JSON type only (DESIGN.md §4 invariant 5).

Pydantic's lax mode would convert the others, and change what they mean: `"cents": false`
cleared a fee, `"occurred_at": 0` put 1970-01-01 on a person's record, `"sale_opt_out": 1`
opted a person out. Each is refused with a 422 problem naming the field, and nothing is written.
Found by tests/test_api_schema.py with Schemathesis's `negative_data_rejection` check.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from pledge.presets import clik
from pledge.runtime import Runtime


def _refused(r: Response, field: str, error_type: str) -> None:
    """A 422 problem naming `field` (in `detail` and in `errors`), and nothing else."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "invalid_input", problem
    assert problem["detail"].startswith(f"{field}: "), problem
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["body", field], error_type)], (
        problem
    )


def _subject(client: TestClient, email: str) -> str:
    r = client.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": email}]})
    assert r.status_code == 201, r.text
    sid: str = r.json()["id"]
    return sid


def test_a_boolean_is_taken_only_as_true_or_false(client: TestClient) -> None:
    sid = _subject(client, "b@example.com")
    state = f"/api/v1/subjects/{sid}/privacy-state"
    for value in (1, "true", "yes", 1.0):
        _refused(client.put(state, json={"sale_opt_out": value}), "sale_opt_out", "bool_type")
        _refused(client.put(state, json={"restricted": value}), "restricted", "bool_type")
    r = client.get(state)
    assert r.json()["sale_opt_out"] is False and r.json()["restricted"] is False, r.text
    # A JSON boolean does what it says.
    r = client.put(state, json={"sale_opt_out": True})
    assert r.status_code == 200 and r.json()["sale_opt_out"] is True, r.text
    _refused(client.put(state, json={"sale_opt_out": 0}), "sale_opt_out", "bool_type")
    assert client.get(state).json()["sale_opt_out"] is True


def test_an_integer_is_taken_only_as_a_json_integer(
    client: TestClient, runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)

    def ask() -> str:
        r = client.post(
            "/api/v1/requests",
            json={
                "type": "access",
                "requester": {"email": "f@example.com"},
                "jurisdiction": "US-CA",
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    # CCPA: the third access request in 12 months may bear a fee.
    third = f"/api/v1/requests/{[ask() for _ in range(3)][-1]}"
    r = client.post(f"{third}/fee", json={"cents": 1500, "reason": "third access this year"})
    assert r.status_code == 200 and r.json()["fee_cents"] == 1500, r.text
    timeline = client.get(third).json()["timeline"]
    for value in (False, True, "12", "0"):
        body: dict[str, Any] = {"cents": value, "reason": "third access this year"}
        _refused(client.post(f"{third}/fee", json=body), "cents", "int_type")
    after = client.get(third).json()
    assert after["fee_cents"] == 1500 and after["timeline"] == timeline


def test_a_time_is_taken_only_as_text_with_a_date_and_a_time_of_day(client: TestClient) -> None:
    sid = _subject(client, "t@example.com")
    interactions = f"/api/v1/subjects/{sid}/interactions"

    def note(occurred_at: object) -> Response:
        body = {"kind": "note", "occurred_at": occurred_at, "category": "user.content"}
        return client.post(interactions, json={**body, "payload": {}})

    # Seconds since 1970, as a number or as digits; a date without its time of day.
    for when in (0, 1767225600, 1.5, True, "0", "1767225600", "2026-01-01"):
        _refused(note(when), "occurred_at", "datetime_type")
    assert client.get(interactions).json() == []
    # RFC 3339 text is taken (its date and time may be parted by a space, RFC 3339 §5.6).
    for when in ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00+02:00", "2026-01-01 10:00:00Z"):
        assert note(when).status_code == 201, when
    assert len(client.get(interactions).json()) == 3
