"""Opt-outs and "limit" requests many at a time (`rights.immediate`, `POST
/api/v1/requests/batch`): the same result as one at a time, refusals in place, on both
databases."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pledge.access.context import TenantContext
from pledge.audit import service as audit
from pledge.audit.models import AuditEntry
from pledge.core.clock import utcnow
from pledge.core.errors import InvalidInput
from pledge.mail import reading as mail_reading
from pledge.presets import clik
from pledge.rights import fulfilment, immediate, letters, verification, workflow
from pledge.rights import service as rights
from pledge.rights.models import RightsRequest
from pledge.rights.service import Requester, RequestInput
from pledge.runtime import Runtime
from pledge.subjects import erasure, reading
from pledge.subjects import service as subjects
from pledge.subjects.identity import IdentityKind
from pledge.subjects.service import FieldInput
from pledge.webhooks import service as webhooks
from pledge.webhooks.models import WebhookDelivery
from tests.conftest import make_tenant

PEOPLE = ("ana@example.com", "ben@example.com", "cy@example.com", "erased@example.com")
# Opt-outs and limits from known people, someone unknown, an erased person, a repeat.
ASKED = (
    ("opt_out_sale", "ana@example.com"),
    ("limit_sensitive", "ben@example.com"),
    ("opt_out_sale", "nobody@example.com"),
    ("opt_out_sale", "erased@example.com"),
    ("opt_out_sale", "Ana@Example.com"),
    ("limit_sensitive", "cy@example.com"),
    ("opt_out_sale", "ana@example.com"),
    ("opt_out_sale", "ana@example.com"),
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _tenant_with_people(runtime: Runtime, slug: str) -> dict[uuid.UUID, str]:
    """A tenant holding PEOPLE (the last one erased) and a webhook endpoint; subject id →
    address."""
    make_tenant(runtime, slug, jurisdictions=["US-CA"])
    with runtime.tenant_context(slug) as ctx:
        clik(ctx)
        webhooks.add_endpoint(ctx, "http://127.0.0.1:9/hook", ["request.state_changed"])
        ids = {
            subjects.create_subject(
                ctx, [FieldInput("email", e), FieldInput("first_name", "X", "user.name.first")]
            ): e
            for e in PEOPLE
        }
        erasure.erase_subject(ctx, next(i for i, e in ids.items() if e == PEOPLE[-1]))
    return ids


def _inputs() -> list[RequestInput]:
    return [RequestInput(t, Requester(e, "Pat"), "US-CA") for t, e in ASKED]


_VARYING = {"at", "message_id", "reference"}  # moments and random parts, not behaviour


class _Aliases:
    """Ids of one tenant's run as aliases in order of appearance (so two runs compare)."""

    def __init__(self, named: dict[uuid.UUID, str]) -> None:
        self.names = {str(k): v for k, v in named.items()}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            value = str(value)
        if isinstance(value, str):
            return _UUID.sub(lambda m: self.names.setdefault(m[0], f"#{len(self.names)}"), value)
        if isinstance(value, dict):
            return {
                k: self(v) for k, v in value.items() if k not in {"at", "message_id", "reference"}
            }
        return value


def _outcome(ctx: TenantContext, named: dict[uuid.UUID, str], since: int) -> dict[str, Any]:
    """Everything a requester, the staff and an auditor can see of the requests."""
    alias = _Aliases(named)
    requests = list(
        ctx.session.scalars(
            select(RightsRequest)
            .where(RightsRequest.tenant_id == ctx.tenant_id)
            .order_by(RightsRequest.id)
        )
    )
    seen = []
    for r in requests:
        texts = [
            letters.open_artifact(ctx, r, a) or b"(erased)" for a in letters.list_artifacts(ctx, r)
        ]
        seen.append(
            {
                "type": r.type,
                "state": r.state,
                "outcome": r.outcome_code,
                "level": r.verification_level,
                "subject": alias(r.subject_id),
                "repetitive": r.repetitive,
                "due_on": r.due_on,
                "closed": r.closed_at is not None and r.purge_after is not None,
                "acknowledged": r.acknowledged_at is not None,
                "timeline": [
                    (e.kind, e.from_state, e.to_state, alias(e.details))
                    for e in rights.timeline(ctx, r)
                ],
                "letters": [
                    t.decode()
                    .replace(r.reference, "REF")
                    .replace(ctx.tenant.name, "TENANT")
                    .replace(f"/p/{ctx.tenant.slug}/", "/p/TENANT/")
                    .split("/requests/status/")[0]
                    for t in texts
                ],
            }
        )
    chain = [
        (e.event, alias(e.subject_id), alias(e.details))
        for e in ctx.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq > since)
            .order_by(AuditEntry.seq)
        )
    ]
    people = {
        e: (row.sale_opt_out_at is not None, row.sale_opt_out_source, row.limit_sensitive_at)
        for i, e in named.items()
        if (row := subjects.get_subject_row(ctx, i)).status != "erased"
    }
    outbox = sorted(
        (m.kind, (view := mail_reading.read_message(ctx, m.id).letter) and view.to)
        for m in mail_reading.list_messages(ctx)
    )
    hooks = [
        alias(json.loads(webhooks.payload(ctx.keystore, d))["data"])
        for d in ctx.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == ctx.tenant_id)
            .order_by(WebhookDelivery.id)
        )
    ]
    return {
        "requests": seen,
        "chain": chain,
        "people": {e: (o, s, lim is not None) for e, (o, s, lim) in people.items()},
        "outbox": outbox,
        "hooks": hooks,
        "chain_ok": audit.verify_chain(ctx.session, ctx.keystore, ctx.tenant_id).ok,
    }


def _head(runtime: Runtime, slug: str) -> int:
    with runtime.tenant_context(slug) as ctx:
        return int(
            ctx.session.scalar(
                select(func.max(AuditEntry.seq)).where(AuditEntry.tenant_id == ctx.tenant_id)
            )
            or 0
        )


def _through_the_staff_path(ctx: TenantContext, data: RequestInput) -> None:
    """An opt-out through the general steps every other type takes — what `workflow.receive`
    did for one before `rights.immediate` existed: submit, no verification needed, matched
    by the address given, fulfilled."""
    entries: list[audit.PendingEntry] = []
    request = rights.submit(ctx, data, pending=entries)
    request.acknowledged_at = utcnow()
    assert verification.begin(ctx, request, pending=entries) is None
    audit.record_many(ctx, entries)
    email = rights.private_part(ctx, request)["email"]
    request.subject_id = reading.find_subject_id(ctx, IdentityKind.EMAIL, email)
    fulfilment.fulfil(ctx, request)


def test_a_batch_is_answered_exactly_as_the_same_requests_one_by_one(
    runtime: Runtime, private_targets: None
) -> None:
    """The same requests three ways: through the general staff path, one at a time through
    the intake (the privacy center, `POST /requests`), and as one batch (an agent's list)."""
    tenants = {slug: _tenant_with_people(runtime, slug) for slug in ("staff", "one", "many")}
    since = {slug: _head(runtime, slug) for slug in tenants}
    for data in _inputs():
        with runtime.tenant_context("staff") as ctx:
            _through_the_staff_path(ctx, data)
        with runtime.tenant_context("one") as ctx:
            workflow.receive(ctx, data)
    with runtime.tenant_context("many") as ctx:
        results = immediate.answer_many(ctx, _inputs())
    assert all(isinstance(r, RightsRequest) for r in results)

    seen = {}
    for slug, named in tenants.items():
        with runtime.tenant_context(slug) as ctx:
            seen[slug] = _outcome(ctx, named, since[slug])
    staff, alone, together = seen["staff"], seen["one"], seen["many"]
    for outcome in (alone, together):
        for mine, theirs in zip(outcome["requests"], staff["requests"], strict=True):
            for key, value in theirs.items():
                assert mine[key] == value, (key, mine["type"])
        assert outcome == staff
    # And that outcome is the one the law asks for.
    assert [r["outcome"] for r in alone["requests"]] == [
        "opted_out",
        "sensitive_limited",
        "no_data",
        "no_data",
        "opted_out",
        "sensitive_limited",
        "opted_out",
        "opted_out",
    ]
    assert all(r["state"] == "completed" and r["level"] == "none" for r in alone["requests"])
    # Ana asked four times in a year: the fourth is flagged (the general limit of three:
    # California's two free requests a year are for access, not for opting out).
    assert [r["repetitive"] for r in alone["requests"]] == [False] * 7 + [True]
    assert alone["people"] == {
        "ana@example.com": (True, "request", False),
        "ben@example.com": (False, None, True),
        "cy@example.com": (False, None, True),
    }
    # One letter each, to the address given; a webhook per transition (3 each).
    assert [k for k, _ in alone["outbox"]] == ["rights_letter"] * len(ASKED)
    assert [h["state"] for h in alone["hooks"]] == ["verified", "in_progress", "completed"] * len(
        ASKED
    )
    # Ana's state changed once, not at each repeat.
    changes = [c for c in alone["chain"] if c[0] == "privacy_state.changed"]
    assert len(changes) == 3
    assert staff["chain_ok"] and alone["chain_ok"] and together["chain_ok"]


def test_invalid_requests_are_refused_in_place_and_write_nothing(
    runtime: Runtime, private_targets: None
) -> None:
    _tenant_with_people(runtime, "agents")
    inputs = [
        RequestInput("opt_out_sale", Requester("ana@example.com"), "US-CA"),
        RequestInput("erasure", Requester("ben@example.com"), "US-CA"),
        RequestInput("opt_out_sale", Requester("not an address"), "US-CA"),
        RequestInput("opt_out_sale", Requester("cy@example.com"), "XX"),
        RequestInput(
            "opt_out_sale",
            Requester("cy@example.com", agent_name="Agent"),
            "US-CA",
            channel="authorized_agent",
        ),
        RequestInput("limit_sensitive", Requester("ben@example.com"), "US-CA"),
        RequestInput(
            "opt_out_sale",
            Requester("cy@example.com", agent_name="A", agent_email="agent@", agent_permission="P"),
            "US-CA",
            channel="authorized_agent",
        ),
    ]
    with runtime.tenant_context("agents") as ctx:
        results = immediate.answer_many(ctx, inputs)
    refused = {i: str(r) for i, r in enumerate(results) if isinstance(r, InvalidInput)}
    assert sorted(refused) == [1, 2, 3, 4, 6]
    assert refused[6] == "the agent's e-mail address is not valid"
    assert "needs verification" in refused[1]
    assert "e-mail address is not valid" in refused[2]
    assert "jurisdiction" in refused[3]
    assert "signed permission" in refused[4]
    with runtime.tenant_context("agents") as ctx:
        stored = list(ctx.session.scalars(select(RightsRequest).order_by(RightsRequest.id)))
        assert [(r.type, r.state) for r in stored] == [
            ("opt_out_sale", "completed"),
            ("limit_sensitive", "completed"),
        ]
        assert [r.id for r in stored] == [r.id for r in results if isinstance(r, RightsRequest)]
        assert len(mail_reading.list_messages(ctx)) == 2


def test_batch_api_answers_each_request_in_place(runtime: Runtime, client: TestClient) -> None:
    with runtime.tenant_context("acme") as ctx:
        subject = subjects.create_subject(ctx, [FieldInput("email", "ana@example.com")])
    r = client.post(
        "/api/v1/requests/batch",
        json={
            "requests": [
                {"type": "opt_out_sale", "requester": {"email": "ana@example.com"}},
                {"type": "access", "requester": {"email": "ana@example.com"}},
                {
                    "type": "limit_sensitive",
                    "requester": {"email": "zed@example.com"},
                    "jurisdiction": "US-CA",
                },
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["refused"]) == (2, 1)
    first, second, third = body["results"]
    assert first["request"]["state"] == "completed" and first["request"]["subject_id"] == str(
        subject
    )
    assert first["request"]["outcome"] == "opted_out"
    assert second["request"] is None and second["error"]["code"] == "invalid_input"
    assert "needs verification" in second["error"]["detail"]
    assert third["request"]["outcome"] == "no_data" and third["position"] == 2
    # The opt-out is in force, and each answered request can be read back.
    with runtime.tenant_context("acme") as ctx:
        assert subjects.get_subject_row(ctx, subject).sale_opt_out_at is not None
    got = client.get(f"/api/v1/requests/{first['request']['id']}").json()
    assert [e["kind"] for e in got["timeline"]] == ["received", "verified", "started", "completed"]


def test_batch_api_limits_the_batch(client: TestClient) -> None:
    one = {"type": "opt_out_sale", "requester": {"email": "ana@example.com"}}
    for size in (0, 1001):
        r = client.post("/api/v1/requests/batch", json={"requests": [one] * size})
        assert r.status_code == 422, size
        assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/api/v1/requests/batch", json={"requests": [{"type": "opt_out_sale"}]})
    assert r.status_code == 422


def test_the_law_s_free_requests_count_only_the_types_it_names(runtime: Runtime) -> None:
    """California: access at most twice in 12 months (1798.130(b)), so the third is flagged
    for a human; deletion has no number (the general three); an opt-out is free and never
    counts against a state's number (Colorado's one a year is not for opting out)."""
    make_tenant(runtime, "freq", jurisdictions=["US-CA"])

    def flags(rtype: str, jurisdiction: str, times: int) -> list[bool]:
        out = []
        for _ in range(times):
            with runtime.tenant_context("freq") as ctx:
                request = workflow.receive(
                    ctx, RequestInput(rtype, Requester("pat@example.com"), jurisdiction)
                ).request
                out.append(request.repetitive)
        return out

    assert flags("access", "US-CA", 3) == [False, False, True]
    assert flags("erasure", "US-CA", 4) == [False, False, False, True]
    assert flags("opt_out_sale", "US-CO", 4) == [False, False, False, True]
