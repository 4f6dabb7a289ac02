"""Values at the edge of what the API takes get a 422 naming the field, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx2 import Response

from pledge.presets import clik
from pledge.runtime import Runtime
from tests.conftest import api_client, login, make_user


def _subject(client: TestClient, email: str) -> str:
    r = client.post("/api/v1/subjects", json={"fields": [{"name": "email", "value": email}]})
    assert r.status_code == 201, r.text
    sid: str = r.json()["id"]
    return sid


def _post_interaction(client: TestClient, sid: str, occurred_at: str, payload: str) -> Response:
    # The JSON text as a client could send it (`\ud800` escapes and all).
    body = (
        '{"kind":"note","occurred_at":"' + occurred_at + '","category":"user.content",'
        '"payload":' + payload + "}"
    )
    return client.post(
        f"/api/v1/subjects/{sid}/interactions",
        content=body,
        headers={"content-type": "application/json"},
    )


def test_a_payload_with_a_lone_surrogate_is_refused(client: TestClient) -> None:
    sid = _subject(client, "p@example.com")
    when = "2026-01-01T00:00:00Z"
    for payload in ('{"t":"a\\ud800"}', '{"\\udfff":1}'):
        r = _post_interaction(client, sid, when, payload)
        assert r.status_code == 422 and "surrogate" in r.json()["detail"], r.text
    # A surrogate pair is one character, taken and given back.
    r = _post_interaction(client, sid, when, '{"t":"\\ud83d\\ude00"}')
    assert r.status_code == 201, r.text
    payloads = [i["payload"] for i in client.get(f"/api/v1/subjects/{sid}/interactions").json()]
    assert payloads == [{"t": "\U0001f600"}]


def test_an_interaction_time_outside_the_calendar_in_utc_is_refused(client: TestClient) -> None:
    sid = _subject(client, "t@example.com")
    # Both are valid local times whose UTC value falls past year 9999 or before year 1.
    for when in ("9999-12-31T23:00:00-14:00", "0001-01-01T01:00:00+14:00"):
        r = client.post(
            f"/api/v1/subjects/{sid}/interactions",
            json={"kind": "note", "occurred_at": when, "category": "user.content", "payload": {}},
        )
        assert r.status_code == 422, r.text
        assert "occurred_at" in r.json()["detail"]
    # The first and last moments of the calendar in UTC are taken, and read back.
    for when in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        r = client.post(
            f"/api/v1/subjects/{sid}/interactions",
            json={"kind": "note", "occurred_at": when, "category": "user.content", "payload": {}},
        )
        assert r.status_code == 201, r.text
    assert client.get(f"/api/v1/subjects/{sid}/interactions").status_code == 200
    assert len(client.get(f"/api/v1/subjects/{sid}/export").json()["interactions"]) == 2


def test_an_audit_cursor_past_the_largest_sequence_number_is_refused(
    client: TestClient, runtime: Runtime, tenant: str
) -> None:
    r = client.get("/api/v1/audit/entries", params={"cursor": str(2**70)})
    assert r.status_code == 422 and "cursor" in r.json()["detail"], r.text
    r = client.get("/api/v1/audit/entries", params={"cursor": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    make_user(runtime, tenant, "staff@acme.example")
    browser = api_client(runtime)
    login(browser, tenant, "staff@acme.example")
    assert browser.get("/audit", params={"before": str(2**70)}).status_code == 422
    assert browser.get("/audit", params={"before": str(2**63 - 1)}).status_code == 200


def test_times_outside_the_calendar_in_utc_are_refused_by_the_gate_and_notices(
    client: TestClient, runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        clik(ctx)
    sid = _subject(client, "g@example.com")
    for when in ("9999-12-31T23:00:00-14:00", "0001-01-01T01:00:00+14:00"):
        r = client.post(
            "/api/v1/gate/check", json={"subject_id": sid, "purpose": "newsletter", "at": when}
        )
        assert r.status_code == 422 and "at" in r.json()["detail"], r.text
        r = client.post(
            "/api/v1/notices/privacy/versions", json={"text": "New.", "effective_at": when}
        )
        assert r.status_code == 422 and "effective_at" in r.json()["detail"], r.text
    # The calendar's first and last moments are answered (the gate has nothing on file then).
    for when in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        r = client.post(
            "/api/v1/gate/check", json={"subject_id": sid, "purpose": "newsletter", "at": when}
        )
        assert r.status_code == 200 and r.json()["allowed"] is False, r.text


def test_a_body_that_is_not_utf8_is_refused_as_malformed_json(client: TestClient) -> None:
    # Found by tests/test_api_schema.py: such a body got FastAPI's bare 400 "There was an error
    # parsing the body" (code `http_error`, a status the contract does not name), where
    # malformed JSON gets a 422 naming the body. A Latin-1 client's "é" is one such body.
    for body in (b"\xff", b'{"fields": [{"name": "email", "value": "\xe9@example.com"}]}', b"{"):
        r = client.post(
            "/api/v1/subjects", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "invalid_input" and "body" in problem["detail"], body
        assert [e["type"] for e in problem["errors"]] == ["json_invalid"], body
    assert client.get("/api/v1/subjects").json()["items"] == []
