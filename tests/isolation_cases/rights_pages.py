"""Isolation cases of the rights-request pages (issue 4): the console's queue and request
pages, and the privacy center (public: its tenant comes from the slug, the request from a
signed link or a reference; tests/rights/test_pages.py checks that A's links and references
do nothing under B's slug)."""

from __future__ import annotations

from sqlalchemy import select

from pledge.rights import workflow
from pledge.rights.models import RequestArtifact
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from tests.isolation_cases import Cases, World
from tests.isolation_cases.rights import A_PERSON

A_PAGE_REQUESTER = "page.requester.of.a@example.com"


def setup_a(runtime: Runtime) -> dict[str, str]:
    with runtime.tenant_context("tenant-a") as ctx:
        received = workflow.receive(ctx, RequestInput("erasure", Requester(A_PAGE_REQUESTER), "EU"))
        artifact = ctx.session.scalars(
            select(RequestArtifact).where(RequestArtifact.request_id == received.request.id)
        ).first()
        assert artifact is not None
    return {"request_id": str(received.request.id), "artifact_id": str(artifact.id)}


def check(w: World) -> None:
    for path in (
        "/requests",
        "/requests?state=awaiting_verification",
        "/requests?type=erasure",
        "/requests?mine=1",
        "/requests/sla",
    ):
        r = w.page.get(path)
        assert r.status_code == 200, path
        assert w.params["request_id"] not in r.text, path
    r = w.page.get("/requests/sla")
    assert "Awaiting verification" in r.text
    assert w.page.get("/requests/opt-outs").status_code == 200
    # B's list naming A's person: B holds nobody by that address (rights.verify_a checks
    # that A's person was left alone).
    r = w.page.post(
        "/requests/opt-outs",
        data={"csrf_token": w.csrf, "type": "opt_out_sale", "jurisdiction": "US-CA"},
        files={"file": ("list.csv", f"email\n{A_PERSON}\n".encode(), "text/csv")},
    )
    assert r.status_code == 200 and "0 applied to a subject on file" in r.text, r.text


CASES = Cases(
    setup_a=setup_a,
    page_foreign={
        ("GET", "/requests/{request_id}"): None,
        ("GET", "/requests/{request_id}/artifacts/{artifact_id}"): None,
        ("POST", "/requests/{request_id}/assign"): {"to": "me"},
        ("POST", "/requests/{request_id}/verify"): {"code": "123456"},
        ("POST", "/requests/{request_id}/start"): None,
        ("POST", "/requests/{request_id}/fulfil"): None,
        ("POST", "/requests/{request_id}/deny"): {"reason": "because we say so, really"},
        ("POST", "/requests/{request_id}/extend"): {"reason": "many years of data to search"},
        ("POST", "/requests/{request_id}/fee"): {"amount": "0", "reason": ""},
        ("POST", "/requests/{request_id}/pause"): {"reason": "need your account number"},
        ("POST", "/requests/{request_id}/resume"): None,
        ("POST", "/requests/{request_id}/appeal"): None,
        ("POST", "/requests/{request_id}/appeal-decision"): {"decision": "grant"},
        ("POST", "/requests/{request_id}/withdraw"): None,
        ("POST", "/requests/{request_id}/lift-restriction"): {
            "reason": "the dispute is settled now"
        },
    },
    lists={
        ("GET", "/requests"),
        ("GET", "/requests/sla"),
        ("GET", "/requests/opt-outs"),
        ("POST", "/requests/opt-outs"),
    },
    public={
        ("GET", "/p/{slug}/requests"),
        ("POST", "/p/{slug}/requests"),
        ("GET", "/p/{slug}/requests/confirm"),
        ("POST", "/p/{slug}/requests/confirm"),
        ("GET", "/p/{slug}/requests/verify/{token}"),
        ("POST", "/p/{slug}/requests/verify/{token}"),
        ("GET", "/p/{slug}/requests/status/{token}"),
        ("POST", "/p/{slug}/requests/status/{token}/appeal"),
        ("GET", "/p/{slug}/downloads/{token}"),
        ("POST", "/p/{slug}/downloads/{token}"),
    },
    check=check,
)
