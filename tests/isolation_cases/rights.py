"""Isolation cases of rights requests, recipients (issue 4)."""

from __future__ import annotations

from sqlalchemy import select

from pledge.rights import recipients, workflow
from pledge.rights.models import RequestArtifact
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import service as subjects
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from tests.isolation_cases import Cases, World

A_REQUESTER = "requester.of.a@example.com"
A_PERSON = "person.of.a@example.com"


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        received = workflow.receive(ctx, RequestInput("access", Requester(A_REQUESTER), "EU"))
        artifact = ctx.session.scalars(
            select(RequestArtifact).where(RequestArtifact.request_id == received.request.id)
        ).first()
        assert artifact is not None
        recipients.add_recipient(
            ctx, slug="a-crm", name="A's CRM", kind="sub_processor", country="US", webhook_url=None
        )
        endpoint, _secret = webhooks.add_endpoint(ctx, "https://a.example/hook", ["*"])
        a_person = subjects.create_subject(ctx, [FieldInput("email", A_PERSON)])
    return {
        "a_person": str(a_person),
        "request_id": str(received.request.id),
        "artifact_id": str(artifact.id),
        "endpoint_id": str(endpoint.id),
        "recipient_slug": "a-crm",
    }


def check(w: World) -> None:
    a_request = w.params["request_id"]
    for path in (
        "/api/v1/requests",
        "/api/v1/requests?open_only=false",
        "/api/v1/requests/sla",
        "/api/v1/recipients",
    ):
        r = w.api.get(path)
        assert r.status_code == 200 and a_request not in r.text and "a-crm" not in r.text, path
    r = w.api.post(
        "/api/v1/requests", json={"type": "opt_out_sale", "requester": {"email": A_REQUESTER}}
    )
    assert r.status_code == 201 and r.json()["subject_id"] is None  # A's person is unknown in B
    r = w.api.post(
        "/api/v1/requests/batch",
        json={"requests": [{"type": "opt_out_sale", "requester": {"email": A_PERSON}}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["request"]["subject_id"] is None  # A's subject: not in B
    r = w.api.post("/api/v1/recipients", json={"slug": "a-crm", "name": "B's own", "country": "DE"})
    assert r.status_code == 201  # the same slug is free in B
    r = w.api.get("/api/v1/webhooks")
    assert r.status_code == 200 and "a.example" not in r.text
    r = w.api.post("/api/v1/webhooks", json={"url": "https://b.example/hook", "events": ["*"]})
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")


def verify_a(runtime: Runtime, params: dict[str, str]) -> None:
    """B's opt-outs naming A's person changed nothing in A."""
    with runtime.tenant_context("tenant-a") as ctx:
        row = subjects.get_subject_row(ctx, params["a_person"])
        assert row.sale_opt_out_at is None
        # B's deactivate and rotate-secret naming A's endpoint changed nothing in A.
        (endpoint,) = webhooks.list_endpoints(ctx)
        assert endpoint.active
        # B's change naming A's recipient changed nothing in A.
        (recipient,) = recipients.list_recipients(ctx)
        assert (recipient.name, recipient.active) == ("A's CRM", True)


CASES = Cases(
    setup_a=setup_a,
    api_foreign={
        ("POST", "/api/v1/webhooks/{endpoint_id}/deactivate"): None,
        ("POST", "/api/v1/webhooks/{endpoint_id}/activate"): None,
        ("POST", "/api/v1/webhooks/{endpoint_id}/rotate-secret"): None,
        ("PATCH", "/api/v1/recipients/{recipient_slug}"): {"name": "B's", "active": False},
        ("GET", "/api/v1/requests/{request_id}"): None,
        ("POST", "/api/v1/requests/{request_id}/verify"): {"code": "123456"},
        ("POST", "/api/v1/requests/{request_id}/verify-otherwise"): {
            "reason": "saw the passport at the desk"
        },
        ("POST", "/api/v1/requests/{request_id}/resend-verification"): None,
        ("POST", "/api/v1/requests/{request_id}/start"): None,
        ("POST", "/api/v1/requests/{request_id}/fulfil"): {},
        ("POST", "/api/v1/requests/{request_id}/deny"): {"reason": "because we say so, really"},
        ("POST", "/api/v1/requests/{request_id}/extend"): {
            "reason": "many years of data to search"
        },
        ("POST", "/api/v1/requests/{request_id}/pause"): {"reason": "need your account number"},
        ("POST", "/api/v1/requests/{request_id}/resume"): None,
        ("POST", "/api/v1/requests/{request_id}/fee"): {"cents": 0, "reason": ""},
        ("POST", "/api/v1/requests/{request_id}/withdraw"): None,
        ("POST", "/api/v1/requests/{request_id}/lift-restriction"): {
            "reason": "the dispute is settled now"
        },
        ("POST", "/api/v1/requests/{request_id}/appeal"): None,
        ("POST", "/api/v1/requests/{request_id}/appeal-decision"): {"grant": True},
        ("POST", "/api/v1/requests/{request_id}/extend-appeal"): {
            "reason": "many appeals to go through"
        },
        ("POST", "/api/v1/requests/{request_id}/assign"): {"user_id": None},
        ("POST", "/api/v1/requests/{request_id}/power-of-attorney"): {
            "accept": True,
            "reason": "checked the notarised document",
        },
        ("GET", "/api/v1/requests/{request_id}/artifacts/{artifact_id}"): None,
    },
    page_foreign={
        ("POST", "/requests/{request_id}/extend-appeal"): {"reason": "many appeals to go through"},
        ("POST", "/requests/{request_id}/verify-otherwise"): {
            "reason": "saw the passport at the desk"
        },
        ("POST", "/requests/{request_id}/resend-verification"): None,
        ("POST", "/requests/{request_id}/power-of-attorney"): {
            "decision": "accept",
            "reason": "checked the notarised document",
        },
    },
    # The privacy center's "send me a new code": its tenant from the slug, the request from
    # its reference (tests/rights/test_verification_cases.py).
    public={("POST", "/p/{slug}/requests/confirm/resend")},
    lists={
        ("POST", "/api/v1/requests"),
        ("POST", "/api/v1/requests/batch"),
        ("GET", "/api/v1/requests"),
        ("GET", "/api/v1/requests/sla"),
        ("GET", "/api/v1/recipients"),
        ("POST", "/api/v1/recipients"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
    },
    check=check,
    verify_a=verify_a,
)
