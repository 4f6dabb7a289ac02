"""The gate through the API: one subject (by id or e-mail, now or at another moment) and whole
audiences with a digest."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.lawfulness.conftest import audit_events, collect, new_subject, ok, problem


def test_a_check_answers_with_the_basis_and_every_reason(
    client: TestClient, clik_tenant: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    sid = collect(client, "newsletter", "news@example.com", {"newsletter": True})
    by_id = ok(
        client.post(
            "/api/v1/gate/check",
            json={"subject_id": sid, "purpose": "newsletter", "channel": "email"},
        )
    )
    assert by_id["allowed"] is True and by_id["lawful_basis"] == "Consent"
    assert by_id["reasons"] == [] and by_id["explanations"] == []
    by_email = ok(
        client.post(
            "/api/v1/gate/check",
            json={"email": "NEWS@example.com", "purpose": "newsletter", "channel": "email"},
        )
    )
    assert by_email["subject_id"] == sid and by_email["allowed"]

    # Before the consent was given, the answer was no: the gate reads the ledger at `at`.
    past = ok(
        client.post(
            "/api/v1/gate/check",
            json={"subject_id": sid, "purpose": "newsletter", "at": before.isoformat()},
        )
    )
    assert past["allowed"] is False and past["reasons"] == ["no_consent"]

    # Several reasons at once, each explained.
    denied = ok(
        client.post(
            "/api/v1/gate/check",
            json={"subject_id": sid, "purpose": "status-updates", "channel": "sms"},
        )
    )
    assert denied["reasons"] == ["channel_not_allowed", "no_basis", "no_address"]
    assert denied["lawful_basis"] == "LegitimateInterest"
    assert len(denied["explanations"]) == 3 and "channel" in denied["explanations"][0]
    checks = [e for e in audit_events(client, sid) if e["event"] == "gate.checked"]
    assert [e["details"]["allowed"] for e in checks] == [True, True, False, False]


def test_gate_check_errors(client: TestClient, clik_tenant: str) -> None:
    sid = new_subject(client, "x@example.com")
    for body in (
        {"purpose": "newsletter"},
        {"subject_id": sid, "email": "x@example.com", "purpose": "newsletter"},
        {"subject_id": sid, "purpose": "newsletter", "channel": "pigeon"},
        {"subject_id": sid, "purpose": "newsletter", "at": "2026-01-01T00:00:00"},
        {"subject_id": "not-a-uuid", "purpose": "newsletter"},
    ):
        problem(client.post("/api/v1/gate/check", json=body), 422)
    problem(
        client.post(
            "/api/v1/gate/check", json={"email": "who@example.com", "purpose": "newsletter"}
        ),
        404,
    )
    problem(
        client.post(
            "/api/v1/gate/check", json={"subject_id": str(uuid.uuid4()), "purpose": "newsletter"}
        ),
        404,
    )
    problem(client.post("/api/v1/gate/check", json={"subject_id": sid, "purpose": "nope"}), 404)


def test_an_audience_is_everyone_allowed_with_a_digest_of_the_list(
    client: TestClient, clik_tenant: str
) -> None:
    yes = [
        collect(client, "newsletter", f"y{n}@example.com", {"newsletter": True}) for n in range(3)
    ]
    no = collect(client, "newsletter", "n@example.com", {"newsletter": False})
    everyone = ok(
        client.post("/api/v1/gate/audience", json={"purpose": "newsletter", "channel": "email"})
    )
    assert everyone["allowed_ids"] == sorted(yes) and everyone["allowed_count"] == 3
    assert everyone["candidates"] == 4 and everyone["denied"] == 1
    expected = hashlib.sha256(b"".join(uuid.UUID(i).bytes for i in sorted(yes))).hexdigest()
    assert everyone["digest"] == expected

    some = ok(
        client.post(
            "/api/v1/gate/audience",
            json={"purpose": "newsletter", "channel": "email", "subject_ids": [yes[0], no, yes[0]]},
        )
    )
    assert some["allowed_ids"] == [yes[0]] and some["candidates"] == 2
    first = next(e for e in audit_events(client) if e["event"] == "gate.audience_built")
    assert (first["details"]["allowed"], first["details"]["digest"]) == (3, expected)
    problem(client.post("/api/v1/gate/audience", json={"purpose": "nope"}), 404)
    problem(
        client.post("/api/v1/gate/audience", json={"purpose": "newsletter", "subject_ids": ["x"]}),
        422,
    )


def test_a_topic_the_tenant_does_not_have_is_refused_not_waved_through(
    client: TestClient, clik_tenant: str
) -> None:
    """A subject who unsubscribed from `status` is not mailed because the sender wrote
    `Status` or mistyped the topic: the gate refuses a topic it does not know."""
    sid = collect(client, "status-page", "status@example.com")
    opt_out = {"channel": "email", "topic": "status"}
    ok(client.post(f"/api/v1/subjects/{sid}/preferences/opt-out", json=opt_out))

    def check(topic: str | None) -> Any:
        body = {"subject_id": sid, "purpose": "status-updates", "channel": "email"}
        return client.post("/api/v1/gate/check", json={**body, "topic": topic})

    assert ok(check("status"))["reasons"] == ["topic_opt_out"]
    for topic in ("Status", "no-such-topic"):
        assert "unknown topic" in problem(check(topic), 422, "invalid_input")["detail"]
        audience = {"purpose": "status-updates", "channel": "email", "topic": topic}
        problem(client.post("/api/v1/gate/audience", json=audience), 422, "invalid_input")
    # No topic is still a question about the purpose alone.
    assert ok(check(None))["allowed"] is True
    assert ok(check("*"))["allowed"] is True  # every marketing topic: a service purpose passes
