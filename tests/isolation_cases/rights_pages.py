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
    },
    lists={
        ("GET", "/requests"),
        ("GET", "/requests/sla"),
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
