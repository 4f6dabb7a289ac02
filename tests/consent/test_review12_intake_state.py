"""Intake and the privacy state as an integrator and staff meet them: a no-op opt-in leaves GPC
in force, a public form cannot rewrite a known person's record, a double submission finds the
person the first one created, a child turned adult needs `is_child` alone, the subject page
shows the audit trail only to staff who may read the log, and opt-outs and withdrawals reach
the integrator's webhook without personal values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pledge.access.context import TenantContext
from pledge.access.permissions import Role
from pledge.consent import intake
from pledge.core.clock import utcnow
from pledge.core.errors import Conflict
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from tests.conftest import Second, login, make_user
from tests.lawfulness.conftest import audit_events, clik_tenant, collect, ok
from tests.rights.test_api_and_webhooks import Receiver

__all__ = ["clik_tenant"]  # the fixture, shared


def _state(client: TestClient, sid: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(client.get(f"/api/v1/subjects/{sid}/privacy-state"))
    return result


def _fields(client: TestClient, sid: str) -> dict[str, str]:
    view = ok(client.get(f"/api/v1/subjects/{sid}"))
    return {f["name"]: f["value"] for f in view["fields"]}


# ---------------------------------------------------------------------------------------------
# The sale opt-out and GPC


def test_a_no_op_sale_opt_in_does_not_switch_gpc_off_for_good(
    client: TestClient, clik_tenant: str
) -> None:
    """An integrator PUTs the flag as it already is (`sale_opt_out: false` for a person who
    never chose): nothing changed, nothing is recorded, and GPC, which beats the default
    (STANDARDS.md), still opts the person out when their browser sends it."""
    sid = collect(client, "newsletter", "noop@example.com")
    assert _state(client, sid)["sale_opt_out"] is False
    before = len(audit_events(client, sid))
    ok(client.put(f"/api/v1/subjects/{sid}/privacy-state", json={"sale_opt_out": False}))
    changes = [
        e["details"]["change"]
        for e in audit_events(client, sid)[before:]
        if e["event"] == "privacy_state.changed"
    ]
    assert changes == []
    collect(client, "newsletter", "noop@example.com", signals={"gpc": True})
    state = _state(client, sid)
    assert state["sale_opt_out"] is True and state["sale_opt_out_source"] == "gpc", state
    # An opt-in from that opt-out is the person's choice, and it beats the next signal.
    ok(client.put(f"/api/v1/subjects/{sid}/privacy-state", json={"sale_opt_out": False}))
    collect(client, "newsletter", "noop@example.com", signals={"gpc": True})
    assert _state(client, sid)["sale_opt_out"] is False


# ---------------------------------------------------------------------------------------------
# Intake of a known person


def test_a_form_submitted_with_someone_elses_address_does_not_rewrite_their_record(
    client: TestClient, clik_tenant: str
) -> None:
    """A collection point is a public form: anyone who knows a person's address can submit
    it. The person's own name stays (a change goes through rectification); what the record
    lacked is added."""
    sid = collect(client, "newsletter", "victim@example.com")  # first_name "Sam"
    before = len(audit_events(client, sid))
    body = {
        "collection_point": "newsletter",
        "fields": [
            {"name": "email", "value": "victim@example.com"},
            {"name": "first_name", "value": "Mallory", "category": "user.name.first"},
            {"name": "city", "value": "Leeds", "category": "user.contact.address.city"},
        ],
    }
    assert ok(client.post("/api/v1/collections", json=body), 201)["subject_id"] == sid
    fields = _fields(client, sid)
    assert fields["first_name"] == "Sam" and fields["city"] == "Leeds", fields
    replaced = [
        e["details"]
        for e in audit_events(client, sid)[before:]
        if e["event"] == "subject.field_rectified" and e["details"]["change"] == "replaced"
    ]
    assert replaced == []


def test_two_submissions_of_one_new_person_at_once_record_one_person(
    runtime: Runtime, clik_tenant: str
) -> None:
    """A double-clicked form: two submissions of the same new address at once. One creates
    the person, the other finds them — not a database error (a 500 on the API)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction")
    fields = [FieldInput("email", "twice@example.com", "user.contact.email")]
    found: list[intake.Collected] = []

    def submit(ctx: TenantContext) -> int:
        found.append(intake.collect(ctx, "newsletter", fields))
        return 1

    with runtime.tenant_context(clik_tenant) as ctx:
        first = intake.collect(ctx, "newsletter", fields)
        second = Second(runtime, utcnow(), clik_tenant, submit)
    assert second.result() == 1
    assert first.created and not found[0].created
    assert found[0].subject_id == first.subject_id


def test_two_creations_of_one_new_person_at_once_are_a_conflict(
    runtime: Runtime, clik_tenant: str
) -> None:
    """`POST /api/v1/subjects` twice at once for the same address: the second is told the
    person exists (409, with their id), as it would be a moment later — not a 500."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a second writer waits for the first's transaction")
    fields = [FieldInput("email", "racing@example.com", "user.contact.email")]
    told: list[Conflict] = []

    def create(ctx: TenantContext) -> int:
        try:
            subjects.create_subject(ctx, fields)
        except Conflict as exc:
            told.append(exc)
        return 1

    with runtime.tenant_context(clik_tenant) as ctx:
        created = subjects.create_subject(ctx, fields)
        second = Second(runtime, utcnow(), clik_tenant, create)
    assert second.result() == 1
    assert told and told[0].status == 409
    assert told[0].extra["subject_id"] == str(created)


# ---------------------------------------------------------------------------------------------
# A child turned adult


def test_marking_a_child_with_parental_consent_as_adult_needs_only_is_child(
    client: TestClient, clik_tenant: str
) -> None:
    """`PUT privacy-state` changes "the flags given (the others stay)": a child who turned
    adult is marked so with `is_child: false` alone; the parental consent ends with it."""
    sid = collect(client, "newsletter", "child@example.com")
    path = f"/api/v1/subjects/{sid}/privacy-state"
    ok(client.put(path, json={"is_child": True, "parental_consent": True}))
    state = ok(client.put(path, json={"is_child": False}))
    assert state["is_child"] is False and state["parental_consent"] is False, state
    # Made a child again, the old parent's consent does not come back with them.
    state = ok(client.put(path, json={"is_child": True}))
    assert state["is_child"] is True and state["parental_consent"] is False, state


# ---------------------------------------------------------------------------------------------
# The subject page's audit trail


def test_a_viewer_without_audit_read_does_not_see_the_audit_trail_on_a_subject_page(
    runtime: Runtime, client: TestClient, clik_tenant: str
) -> None:
    """The audit log needs `audit:read`: a viewer is refused /audit, and the subject page
    does not show them the subject's entries (who read it, when, every detail) either; an
    owner still sees them there."""
    sid = collect(client, "newsletter", "trail@example.com")
    ok(client.get(f"/api/v1/subjects/{sid}"))  # a read by the integrator, audited
    make_user(runtime, clik_tenant, "viewer@acme.example", Role.VIEWER)
    make_user(runtime, clik_tenant, "owner@acme.example", Role.OWNER)
    viewer = TestClient(client.app, raise_server_exceptions=False)
    login(viewer, clik_tenant, "viewer@acme.example")
    assert viewer.get("/audit").status_code in (403, 404)
    page = viewer.get(f"/subjects/{sid}")
    assert page.status_code == 200, page.text
    assert "Audit trail" not in page.text
    assert "subject.collected" not in page.text and "subject.viewed" not in page.text
    owner = TestClient(client.app, raise_server_exceptions=False)
    login(owner, clik_tenant, "owner@acme.example")
    page = owner.get(f"/subjects/{sid}")
    assert page.status_code == 200 and "subject.collected" in page.text


# ---------------------------------------------------------------------------------------------
# Webhooks for opt-outs and withdrawals


@pytest.fixture
def hooked(private_targets: None, client: TestClient, clik_tenant: str) -> Iterator[Receiver]:
    """The integrator's endpoint, subscribed to the opt-out and consent events."""
    with Receiver() as receiver:
        events = ["subject.sale_opted_out", "subject.sale_opted_in", "consent.withdrawn"]
        ok(client.post("/api/v1/webhooks", json={"url": receiver.url, "events": events}), 201)
        yield receiver


def _heard(receiver: Receiver) -> list[tuple[str, dict[str, Any], bytes]]:
    return [
        (hit["headers"]["Pledge-Event"], json.loads(hit["body"])["data"], hit["body"])
        for hit in receiver.received
    ]


def test_a_gpc_opt_out_and_an_opt_in_reach_the_integrators_webhook(
    client: TestClient, hooked: Receiver
) -> None:
    """The integrator hears at once that a browser's GPC opted the person out of sale and
    sharing (and when the person opted in again), by id only: no e-mail in the payload.
    A flag set as it already was is no event."""
    email = "gpc.hook@example.com"
    sid = collect(client, "newsletter", email, signals={"gpc": True})
    collect(client, "newsletter", email, signals={"gpc": True})  # already opted out
    ok(client.put(f"/api/v1/subjects/{sid}/privacy-state", json={"sale_opt_out": False}))
    ok(client.put(f"/api/v1/subjects/{sid}/privacy-state", json={"sale_opt_out": False}))
    heard = _heard(hooked)
    assert [(event, data["subject_id"], data["source"]) for event, data, _ in heard] == [
        ("subject.sale_opted_out", sid, "gpc"),
        ("subject.sale_opted_in", sid, "api"),
    ]
    for _event, data, body in heard:
        assert data["at"] and b"gpc.hook" not in body and b"Sam" not in body


def test_an_opt_out_request_reaches_the_integrators_webhook_too(
    client: TestClient, hooked: Receiver
) -> None:
    """A "do not sell" request from the privacy center is answered at once on its own path:
    the integrator hears of the opt-out as from any other source."""
    sid = collect(client, "newsletter", "request.hook@example.com")
    r = client.post(
        "/api/v1/requests",
        json={
            "type": "opt_out_sale",
            "requester": {"email": "request.hook@example.com"},
            "jurisdiction": "US-CA",
        },
    )
    assert r.status_code == 201 and r.json()["state"] == "completed", r.text
    heard = _heard(hooked)
    assert [(event, data["subject_id"]) for event, data, _ in heard] == [
        ("subject.sale_opted_out", sid)
    ]
    assert b"request.hook" not in heard[0][2]


def test_a_withdrawal_reaches_the_integrators_webhook(client: TestClient, hooked: Receiver) -> None:
    """A consent withdrawn — one purpose, or every consent at once — is sent to the
    integrator as it happens, by ids only."""
    one = collect(client, "newsletter", "withdraw.one@example.com", {"newsletter": True})
    everything = collect(client, "newsletter", "withdraw.all@example.com", {"newsletter": True})
    assert hooked.received == []  # a grant is no withdrawal
    ok(
        client.post(
            f"/api/v1/subjects/{one}/consents",
            json={"purpose": "newsletter", "action": "withdraw"},
        ),
        201,
    )
    ok(client.post(f"/api/v1/subjects/{everything}/consents/withdraw-all"))
    # Withdrawn again, or never given: on the ledger, but nothing changed — no event.
    ok(
        client.post(
            f"/api/v1/subjects/{one}/consents",
            json={"purpose": "newsletter", "action": "withdraw"},
        ),
        201,
    )
    heard = _heard(hooked)
    assert [(event, data["subject_id"], data["purpose"]) for event, data, _ in heard] == [
        ("consent.withdrawn", one, "newsletter"),
        ("consent.withdrawn", everything, "newsletter"),
    ]
    for _event, data, body in heard:
        assert data["record_id"] and data["at"]
        assert b"withdraw." not in body and b"Sam" not in body
