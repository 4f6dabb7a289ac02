"""An authorized agent holding the person's power of attorney (issue 4 §3; CCPA 11 CCR
7063(b), seed 000): in California the request need not wait for the person's own
confirmation — once staff accepted the power of attorney. Rejected, it takes the normal agent
path (the person is asked to confirm). Elsewhere it cannot be claimed. On both databases."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.clock import frozen, utcnow
from pledge.mail import backends
from pledge.mail.backends import MemoryBackend
from pledge.rights import letters, verification, workflow
from pledge.rights import service as rights
from pledge.rights.models import RequestArtifact
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import api_client, make_api_token, make_tenant
from tests.rights.test_pages import letters_to, staff_client, verification_mail
from tests.rights.test_verification_cases import (
    AGENT,
    EMAIL,
    customer,  # noqa: F401 -- a fixture
    state_and_level,
    verification_results,
)

POA = "Durable power of attorney signed 2 Feb 2026, notarised, ref. POA-77"
CHECKED = "checked the notarised POA and the agent's driving licence"


def agent_request(rtype: str, jurisdiction: str = "US-CA", **requester: str) -> dict[str, Any]:
    """The body of `POST /api/v1/requests` for an agent holding a power of attorney."""
    return {
        "type": rtype,
        "jurisdiction": jurisdiction,
        "channel": "authorized_agent",
        "requester": {
            "email": EMAIL,
            "name": "Rita",
            "agent_name": "Ada Gent",
            "agent_email": AGENT,
            "agent_permission": "signed permission PS-114",
            "agent_power_of_attorney": POA,
            **requester,
        },
    }


def received_with_poa(api: TestClient, rtype: str) -> dict[str, Any]:
    r = api.post("/api/v1/requests", json=agent_request(rtype))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def codes_sent(runtime: Runtime, tenant: str) -> list[str]:
    """The verification letters the person was sent."""
    return [t for t in letters_to(runtime, tenant, EMAIL) if "enter this code" in t]


def results(runtime: Runtime, tenant: str, request_id: str) -> list[object]:
    return [d["result"] for d in verification_results(runtime, tenant, request_id)]


def test_accepted_the_request_proceeds_without_the_persons_confirmation(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    api = api_client(runtime, make_api_token(runtime, customer))
    made = received_with_poa(api, "erasure")
    request_id = made["id"]
    # It waits for staff, not for the person: no code goes to anyone.
    assert made["state"] == "awaiting_verification"
    assert made["timeline"][-1]["kind"] == "power_of_attorney_received"
    assert codes_sent(runtime, customer) == []
    assert not any("enter this code" in t for t in letters_to(runtime, customer, AGENT))
    # Nor can a code be sent while the power of attorney waits for a decision.
    r = api.post(f"/api/v1/requests/{request_id}/resend-verification")
    assert r.status_code == 409 and "power of attorney" in r.json()["detail"]
    path = f"/api/v1/requests/{request_id}/power-of-attorney"
    r = api.post(path, json={"accept": True, "reason": "ok"})
    assert r.status_code == 422 and "power of attorney" in r.json()["detail"]
    r = api.post(path, json={"accept": True, "reason": CHECKED})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "verified" and out["verification_level"] == "power_of_attorney"
    assert out["subject_id"]  # matched to the person, as their confirmation would have
    assert [e["kind"] for e in out["timeline"]][-2:] == ["power_of_attorney_accepted", "verified"]
    # The request proceeds; the person was never asked to confirm.
    r = api.post(f"/api/v1/requests/{request_id}/start")
    assert r.status_code == 200 and r.json()["state"] == "in_progress", r.text
    assert codes_sent(runtime, customer) == []
    # Audited: claimed, accepted, verified — the reason sealed with the request, not audited.
    assert results(runtime, customer, request_id) == [
        "power_of_attorney_received",
        "power_of_attorney_accepted",
        "verified",
    ]
    assert CHECKED not in str(verification_results(runtime, customer, request_id))
    with runtime.tenant_context(customer) as ctx:
        found = rights.get_request(ctx, request_id)
        [note] = ctx.session.scalars(
            select(RequestArtifact).where(
                RequestArtifact.request_id == found.id, RequestArtifact.kind == "verification"
            )
        ).all()
        content = letters.open_artifact(ctx, found, note)
        assert rights.private_part(ctx, found)["agent"]["power_of_attorney"]["document"] == POA
    assert content is not None and CHECKED in content.decode()
    # Decided once.
    assert api.post(path, json={"accept": False, "reason": CHECKED}).status_code == 409


def test_rejected_the_person_is_asked_to_confirm_from_the_request_page(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "erasure")["id"]
    client, csrf = staff_client(runtime, customer)
    page = client.get(f"/requests/{request_id}")
    assert POA in page.text and "Power of attorney" in page.text
    assert "Send a new code" not in page.text  # nothing to resend: no code was sent
    r = client.post(
        f"/requests/{request_id}/power-of-attorney",
        data={"csrf_token": csrf, "decision": "reject", "reason": "not signed by the person"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "the person is asked to confirm" in page.text
    # The normal agent path: the code goes to the person, naming the agent.
    [letter] = codes_sent(runtime, customer)
    assert "Ada Gent" in letter and "on your behalf" in letter
    assert state_and_level(runtime, customer, request_id) == ("awaiting_verification", "none")
    assert results(runtime, customer, request_id) == [
        "power_of_attorney_received",
        "power_of_attorney_rejected",
    ]
    code, _link = verification_mail(runtime, customer, EMAIL)
    r = api.post(
        f"/api/v1/requests/{request_id}/verify",
        json={"code": code, "data_points": {"phone": "+447700900555"}},
    )
    assert r.status_code == 200 and r.json()["state"] == "verified", r.text
    assert r.json()["verification_level"] == "email+1"


def test_accepted_from_the_request_page_with_the_declaration_specific_pieces_need(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "access")["id"]
    client, csrf = staff_client(runtime, customer)
    form = {"csrf_token": csrf, "decision": "accept", "reason": CHECKED}
    path = f"/requests/{request_id}/power-of-attorney"
    r = client.post(path, data=form, follow_redirects=False)
    assert r.status_code == 422 and "declaration" in r.text
    assert state_and_level(runtime, customer, request_id)[0] == "awaiting_verification"
    r = client.post(path, data={**form, "declaration": "yes"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"])
    assert "without the person" in page.text
    assert state_and_level(runtime, customer, request_id) == (
        "verified",
        "power_of_attorney+declaration",
    )
    assert codes_sent(runtime, customer) == []


def test_waiting_for_staff_is_not_closed_as_unverified(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """The person did all they had to: staff's decision is what is missing."""
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "erasure")["id"]
    with frozen(utcnow() + timedelta(days=60)), runtime.tenant_context(customer) as ctx:
        assert workflow.close_unverified(ctx) == 0
    assert state_and_level(runtime, customer, request_id)[0] == "awaiting_verification"


def test_rejected_late_the_person_has_the_whole_time_to_confirm(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """Staff took 31 days to reject the document: the person, sent a code only now, has the
    30 days from now — not a request closed as 'not verified within 30 days' at the next
    worker run, their code dead."""
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "erasure")["id"]
    later = utcnow() + timedelta(days=31)
    with frozen(later), runtime.tenant_context(customer) as ctx:
        workflow.reject_power_of_attorney(
            ctx, rights.get_request(ctx, request_id), "not signed by the person"
        )
    assert len(codes_sent(runtime, customer)) == 1
    with frozen(later + timedelta(days=29)), runtime.tenant_context(customer) as ctx:
        assert workflow.close_unverified(ctx) == 0
    assert state_and_level(runtime, customer, request_id)[0] == "awaiting_verification"
    # Thirty days after the code, unconfirmed, it closes as any request does.
    with frozen(later + timedelta(days=30, minutes=1)), runtime.tenant_context(customer) as ctx:
        assert workflow.close_unverified(ctx) == 1
    assert state_and_level(runtime, customer, request_id)[0] == "closed_unverified"


def test_the_status_page_says_who_the_request_waits_for(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """The agent follows the status link of their acknowledgement: while staff check the
    document nobody is asked to confirm; rejected, the person is — never the agent."""
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "erasure")["id"]
    [ack] = letters_to(runtime, customer, AGENT)
    link = re.search(r"/p/[^/\s]+/requests/status/\S+", ack)
    assert link, ack
    browser = TestClient(create_app(runtime), raise_server_exceptions=False)
    page = browser.get(link.group(0))
    assert page.status_code == 200
    assert "We are checking the power of attorney" in page.text
    assert "Waiting for you to confirm it" not in page.text
    with runtime.tenant_context(customer) as ctx:
        workflow.reject_power_of_attorney(
            ctx, rights.get_request(ctx, request_id), "not signed by the person"
        )
    page = browser.get(link.group(0))
    assert "Waiting for the person it is about to confirm it" in page.text
    assert "Waiting for you to confirm it" not in page.text


def test_only_where_the_law_provides_for_it(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """An EU request, a person asking for themselves, an opt-out: refused whole, nothing
    received and nothing sent."""
    api = api_client(runtime, make_api_token(runtime, customer))
    r = api.post("/api/v1/requests", json=agent_request("erasure", "EU"))
    assert r.status_code == 422 and "California" in r.json()["detail"], r.text
    r = api.post(
        "/api/v1/requests",
        json=agent_request("erasure", agent_name="", agent_email="", agent_permission=""),
    )
    assert r.status_code == 422 and "authorized agent" in r.json()["detail"], r.text
    r = api.post("/api/v1/requests", json=agent_request("withdraw_consent"))
    assert r.status_code == 422 and "power of attorney" in r.json()["detail"], r.text
    r = api.post("/api/v1/requests/batch", json={"requests": [agent_request("opt_out_sale")]})
    assert r.status_code == 422 and "power of attorney" in r.json()["detail"], r.text
    assert api.get("/api/v1/requests").json() == []
    assert letters_to(runtime, customer, EMAIL) == letters_to(runtime, customer, AGENT) == []


def test_another_tenant_cannot_decide_on_it(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """A's request id answers 404 to B, on the API and the page, and nothing changes."""
    request_id = received_with_poa(
        api_client(runtime, make_api_token(runtime, customer)), "erasure"
    )["id"]
    make_tenant(runtime, "other")
    b_api = api_client(runtime, make_api_token(runtime, "other"))
    r = b_api.post(
        f"/api/v1/requests/{request_id}/power-of-attorney", json={"accept": True, "reason": CHECKED}
    )
    assert r.status_code == 404, r.text
    client, csrf = staff_client(runtime, "other")
    r = client.post(
        f"/requests/{request_id}/power-of-attorney",
        data={"csrf_token": csrf, "decision": "reject", "reason": CHECKED},
        follow_redirects=False,
    )
    assert r.status_code == 404, r.text
    assert state_and_level(runtime, customer, request_id) == ("awaiting_verification", "none")
    assert codes_sent(runtime, customer) == []


# ---------------------------------------------------------------------------------------------
# Accepted, the person is told at once: a false power of attorney is noticed.

TOLD = "They act under a power of attorney from you"


def told(runtime: Runtime, tenant: str, address: str) -> list[str]:
    """The letters telling `address` that a power of attorney was accepted."""
    return [t for t in letters_to(runtime, tenant, address) if TOLD in t]


def letter_audit(runtime: Runtime, tenant: str, request_id: str) -> list[object]:
    with runtime.tenant_context(tenant) as ctx:
        return [
            e.details.get("letter")
            for e in audit.list_entries(ctx, limit=500)
            if e.event == AuditEvent.RIGHTS_LETTER_SENT.value
            and e.details.get("request_id") == request_id
        ]


def test_accepted_the_person_is_told_at_their_address_on_file(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """The letter names the agent and the request, goes to the address on file (greeting the
    person by the name on file, not the one the agent typed), is kept sealed with the
    request and audited; the agent is sent nothing more, and does not see it on the status
    page of their request."""
    api = api_client(runtime, make_api_token(runtime, customer))
    made = utcnow()
    with frozen(made):
        r = api.post("/api/v1/requests", json=agent_request("erasure", name="R. Requester"))
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    to_agent = letters_to(runtime, customer, AGENT)
    assert told(runtime, customer, EMAIL) == []
    accepted = made + timedelta(days=3)
    with frozen(accepted):
        r = api.post(
            f"/api/v1/requests/{request_id}/power-of-attorney",
            json={"accept": True, "reason": CHECKED},
        )
    assert r.status_code == 200, r.text
    [letter] = told(runtime, customer, EMAIL)
    on = made.strftime("%d %B %Y")
    assert letter.startswith("Dear Rita,\n")
    assert f"On {on}, Ada Gent ({AGENT}) sent us a request on your behalf: erasure." in letter
    assert f"we checked and accepted on {accepted.strftime('%d %B %Y')}" in letter
    assert "If you did not give them a power of attorney" in letter
    assert "R. Requester" not in letter and POA not in letter and CHECKED not in letter
    assert letters_to(runtime, customer, AGENT) == to_agent  # nothing new for the agent
    assert letter_audit(runtime, customer, request_id)[-1] == "power_of_attorney_accepted"
    with runtime.tenant_context(customer) as ctx:
        found = rights.get_request(ctx, request_id)
        [kept] = [
            a
            for a in letters.list_artifacts(ctx, found)
            if a.name == "power_of_attorney_accepted.txt"
        ]
        assert kept.key_scope == "subject"  # sealed under the person's key: erasure reaches it
        assert letters.open_artifact(ctx, found, kept) == letter.encode()
    [ack] = to_agent
    link = re.search(r"/p/[^/\s]+/requests/status/\S+", ack)
    assert link, ack
    page = TestClient(create_app(runtime)).get(link.group(0))
    assert page.status_code == 200 and TOLD not in page.text


def test_accepted_for_nobody_on_file_no_letter_goes_to_the_address_the_agent_gave(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    api = api_client(runtime, make_api_token(runtime, customer))
    stranger = "not.on.file@example.com"
    r = api.post("/api/v1/requests", json=agent_request("erasure", email=stranger))
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    r = api.post(
        f"/api/v1/requests/{request_id}/power-of-attorney", json={"accept": True, "reason": CHECKED}
    )
    assert r.status_code == 200 and r.json()["subject_id"] is None, r.text
    assert told(runtime, customer, stranger) == told(runtime, customer, AGENT) == []
    assert "power_of_attorney_accepted" not in letter_audit(runtime, customer, request_id)


def test_rejected_no_such_letter(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    api = api_client(runtime, make_api_token(runtime, customer))
    request_id = received_with_poa(api, "erasure")["id"]
    r = api.post(
        f"/api/v1/requests/{request_id}/power-of-attorney",
        json={"accept": False, "reason": "not signed by the person"},
    )
    assert r.status_code == 200, r.text
    assert len(codes_sent(runtime, customer)) == 1  # the person confirms instead
    assert told(runtime, customer, EMAIL) == told(runtime, customer, AGENT) == []


def test_the_letter_leaves_only_after_commit(
    runtime: Runtime,
    customer: str,  # noqa: F811 -- the fixture imported above
) -> None:
    request_id = received_with_poa(
        api_client(runtime, make_api_token(runtime, customer)), "erasure"
    )["id"]
    with backends.override(MemoryBackend()) as mailbox:
        with pytest.raises(RuntimeError), runtime.tenant_context(customer) as ctx:
            verification.accept_power_of_attorney(ctx, rights.get_request(ctx, request_id), CHECKED)
            raise RuntimeError("rolled back")
        assert mailbox.sent == [] and told(runtime, customer, EMAIL) == []
        with runtime.tenant_context(customer) as ctx:
            verification.accept_power_of_attorney(ctx, rights.get_request(ctx, request_id), CHECKED)
            assert mailbox.sent == []  # not before the commit
        [sent] = mailbox.sent
    assert sent["To"] == EMAIL and TOLD in sent.get_content()
