"""`Idempotency-Key` on the rights intake: a call sent again (its answer lost on the way)
gets the first answer and receives nobody twice — no second request, letter or audit entry."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta
from typing import Any

from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pledge import worker
from pledge.access import idempotency
from pledge.access.models import IdempotentCall
from pledge.audit.models import AuditEntry
from pledge.core.clock import frozen, utcnow
from pledge.mail.models import OutboxMessage
from pledge.rights.api import create_batch
from pledge.rights.models import RightsRequest
from pledge.rights.schemas import BatchOut, RequestBatchIn
from pledge.runtime import Runtime
from tests.conftest import api_client, make_api_token, make_tenant

LIST = {
    "requests": [
        {"type": "opt_out_sale", "requester": {"email": "ana@example.com"}},
        {"type": "limit_sensitive", "requester": {"email": "zed@example.com"}},
        {"type": "access", "requester": {"email": "ana@example.com"}},  # refused in place
    ]
}


def _count(runtime: Runtime, slug: str, model: Any) -> int:
    with runtime.tenant_context(slug) as ctx:
        return int(
            ctx.session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == ctx.tenant_id)
            )
            or 0
        )


def _counts(runtime: Runtime, slug: str = "acme") -> tuple[int, int, int]:
    return (
        _count(runtime, slug, RightsRequest),
        _count(runtime, slug, OutboxMessage),
        _count(runtime, slug, AuditEntry),
    )


def test_a_list_sent_again_with_its_key_gets_the_first_answer(
    runtime: Runtime, client: TestClient
) -> None:
    first = client.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    assert (first.json()["received"], first.json()["refused"]) == (2, 1)
    after_first = _counts(runtime)
    assert after_first[:2] == (2, 2)  # two requests, a letter each
    # The connection dropped; the agent sends it again (the key as a structured-field string).
    again = client.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": '"k-1"'})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _counts(runtime) == after_first
    # Without a key, or with another, the list is received again.
    other = client.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 200 and other.json()["results"] != first.json()["results"]
    assert _counts(runtime)[:2] == (4, 4)


def test_a_single_request_sent_again_is_received_once(runtime: Runtime, client: TestClient) -> None:
    body = {"type": "access", "requester": {"email": "ana@example.com"}, "jurisdiction": "EU"}
    key = {"Idempotency-Key": "2f1c0c8e-0b7e-4d3c-9a51-7f0e6c1d2a90"}
    first = client.post("/api/v1/requests", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/requests", json=body, headers=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _counts(runtime)[:2] == (1, 2)  # one request: its acknowledgement and its code


def test_the_same_key_with_another_body_or_a_malformed_key_is_refused(
    runtime: Runtime, client: TestClient
) -> None:
    sent = client.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k"})
    assert sent.status_code == 200, sent.text
    before = _counts(runtime)
    changed = {"requests": LIST["requests"][:1]}
    r = client.post("/api/v1/requests/batch", json=changed, headers={"Idempotency-Key": "k"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused", r.text
    assert r.headers["content-type"] == "application/problem+json"
    for bad in (b"", b"with space", b"x" * 256, "é".encode()):
        r = client.post("/api/v1/requests/batch", json=LIST, headers={b"Idempotency-Key": bad})
        assert r.status_code == 400 and r.json()["code"] == "idempotency_key_malformed", bad
    assert _counts(runtime) == before


def test_keys_belong_to_the_api_key_and_the_tenant_that_sent_them(
    runtime: Runtime, client: TestClient
) -> None:
    first = client.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k"})
    second_key = api_client(runtime, make_api_token(runtime, "acme"))
    mine = second_key.post("/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k"})
    assert "idempotent-replayed" not in mine.headers
    assert mine.json()["results"] != first.json()["results"]
    make_tenant(runtime, "other")
    theirs = api_client(runtime, make_api_token(runtime, "other")).post(
        "/api/v1/requests/batch", json=LIST, headers={"Idempotency-Key": "k"}
    )
    assert theirs.status_code == 200 and "idempotent-replayed" not in theirs.headers
    assert _counts(runtime, "other")[0] == 2 and _counts(runtime, "acme")[0] == 4


def _send(runtime: Runtime, key: str) -> tuple[BatchOut, bool]:
    """The batch route, called in a transaction of its own (as the operator)."""
    with runtime.tenant_context("acme") as ctx:
        response = Response()
        out = create_batch(RequestBatchIn.model_validate(LIST), ctx, response, key)
        return out, response.headers.get(idempotency.REPLAYED.lower()) == "true"


def test_answers_are_kept_sealed_for_a_day_then_purged(runtime: Runtime, tenant: str) -> None:
    first, replayed = _send(runtime, "secret-key-1")
    assert not replayed and first.received == 2
    assert _send(runtime, "secret-key-1") == (first, True)
    reference = first.results[0].request.reference  # type: ignore[union-attr]
    with runtime.tenant_context("acme") as ctx:
        (row,) = ctx.session.scalars(select(IdempotentCall)).all()
        stored = row.key_digest + row.answer_sealed
        assert b"secret-key-1" not in stored and reference.encode() not in stored
        assert row.expires_at - row.created_at == idempotency.KEEP
    # A day later the key is forgotten: the same call is received again.
    with frozen(utcnow() + timedelta(hours=25)):
        later, replayed = _send(runtime, "secret-key-1")
        assert not replayed and later.received == 2 and later != first
        worker.run_once(runtime)  # the new answer is a day from expiring
    assert _count(runtime, "acme", IdempotentCall) == 1
    with frozen(utcnow() + timedelta(hours=50)):
        report = worker.run_once(runtime)
    assert report.purged_answers == 1 and not report.errors
    assert _count(runtime, "acme", IdempotentCall) == 0
    assert _count(runtime, "acme", RightsRequest) == 4


def test_the_same_key_twice_at_once_is_answered_once(runtime: Runtime, tenant: str) -> None:
    # The second call starts while the first is still open. On SQLite it waits for the
    # write lock and replays the first answer; on PostgreSQL it does the work too, then waits
    # on the first's key at its insert and is refused (409), its work rolled back.
    second: list[BaseException | tuple[BatchOut, bool]] = []

    def send_again() -> None:
        try:
            second.append(_send(runtime, "k"))
        except idempotency.KeyInUse as exc:
            second.append(exc)

    with runtime.tenant_context("acme") as ctx:
        first = create_batch(RequestBatchIn.model_validate(LIST), ctx, Response(), "k")
        other = threading.Thread(target=send_again)
        other.start()
        other.join(timeout=0.5)  # it is waiting on this transaction
        assert other.is_alive()
    other.join()
    (outcome,) = second
    assert isinstance(outcome, idempotency.KeyInUse) or outcome == (first, True), outcome
    assert _count(runtime, "acme", RightsRequest) == 2


def test_the_body_is_compared_whatever_the_order_of_its_keys_and_kept_keyed(
    runtime: Runtime, client: TestClient
) -> None:
    one = {
        "type": "opt_out_sale",
        "requester": {"email": "ana@example.com", "name": "Ana"},
        "details": {"note": "by phone", "source": "call"},
    }
    reordered = {
        "details": {"source": "call", "note": "by phone"},
        "requester": {"name": "Ana", "email": "ana@example.com"},
        "type": "opt_out_sale",
    }
    first = client.post("/api/v1/requests", json=one, headers={"Idempotency-Key": "o"})
    again = client.post("/api/v1/requests", json=reordered, headers={"Idempotency-Key": "o"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The stored digest of the body is keyed: a copy of the database cannot be used to check
    # a guess of who sent it.
    with runtime.tenant_context("acme") as ctx:
        (row,) = ctx.session.scalars(select(IdempotentCall)).all()
    for text in (json.dumps(one), json.dumps(one, sort_keys=True), "ana@example.com"):
        assert row.body_digest != hashlib.sha256(text.encode()).digest()


def test_the_contract_names_the_400_a_malformed_key_gets(client: TestClient) -> None:
    # Found by tests/test_api_schema.py: both routes answered a 400 their contract left out,
    # so a client built from /openapi.json had no case for it.
    spec = client.get("/openapi.json").json()
    for path, body in (("/api/v1/requests", LIST["requests"][0]), ("/api/v1/requests/batch", LIST)):
        r = client.post(path, json=body, headers={"Idempotency-Key": "with space"})
        assert r.status_code == 400 and r.json()["code"] == "idempotency_key_malformed", r.text
        documented = spec["paths"][path]["post"]["responses"]["400"]["content"]
        assert documented["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
