"""What a verification tells the people who run it: the keystore checkpoint in force and what
the verification anchors (console page, API), and how far a long walk has got (the CLI's bar)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pledge.access.permissions import Role
from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.db import read_transaction, transaction
from pledge.runtime import Runtime
from pledge.web.app import create_app
from tests.conftest import login, make_user


def _head_seq(runtime: Runtime, tenant_id: uuid.UUID) -> int:
    with transaction(runtime.sessions) as session:
        seq = session.scalar(select(AuditHead.seq).where(AuditHead.tenant_id == tenant_id))
        assert seq is not None
        return seq


def _tenant_id(runtime: Runtime, slug: str) -> uuid.UUID:
    with runtime.tenant_context(slug) as ctx:
        return ctx.tenant_id


def test_the_walk_reports_its_progress_up_to_the_chain_length(
    runtime: Runtime, tenant: str
) -> None:
    with runtime.tenant_context(tenant) as ctx:
        audit.record_many(
            ctx,
            [audit.PendingEntry(AuditEvent.SUBJECT_VIEWED)] * (2 * audit.PROGRESS_EVERY + 500),
        )
        tenant_id = ctx.tenant_id
    length = _head_seq(runtime, tenant_id)

    with read_transaction(runtime.sessions) as session:
        quiet = audit.verify_chain(session, runtime.keystore, tenant_id)
        walked: list[int] = []
        result = audit.verify_chain(session, runtime.keystore, tenant_id, progress=walked.append)
    assert result == quiet and result.ok and result.checked == length
    assert walked == [audit.PROGRESS_EVERY, 2 * audit.PROGRESS_EVERY, length]

    # The CLI's walk: the same counts, and the checkpoint is taken as without a bar.
    walked = []
    with read_transaction(runtime.sessions) as session:
        outcome = audit.checkpoint(session, runtime.keystore, tenant_id, progress=walked.append)
    assert walked == [audit.PROGRESS_EVERY, 2 * audit.PROGRESS_EVERY, length]
    assert outcome.verified.ok and outcome.checkpoint is not None
    assert outcome.checkpoint.seq == length


def test_a_short_chain_reports_its_length_once(runtime: Runtime, tenant: str) -> None:
    tenant_id = _tenant_id(runtime, tenant)
    walked: list[int] = []
    with read_transaction(runtime.sessions) as session:
        audit.verify_chain(session, runtime.keystore, tenant_id, progress=walked.append)
    assert walked == [_head_seq(runtime, tenant_id)]


@pytest.fixture
def browser(runtime: Runtime, tenant: str) -> tuple[TestClient, str]:
    make_user(runtime, tenant, "owner@acme.example", Role.OWNER)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    return client, login(client, tenant, "owner@acme.example")


def test_the_verify_page_shows_the_checkpoint_and_what_it_anchors(
    runtime: Runtime, tenant: str, browser: tuple[TestClient, str]
) -> None:
    client, csrf = browser
    tenant_id = _tenant_id(runtime, tenant)
    before = _head_seq(runtime, tenant_id)

    # No checkpoint yet: said so, with what that leaves open, and that this one takes it.
    r = client.post("/audit/verify", data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Chain intact" in r.text
    text = " ".join(r.text.split())
    assert "No checkpoint is in the keystore yet" in text
    assert "entries cut from the end of the chain" in text and "cannot be detected" in text
    assert f"This verification takes the first, at entry {before}." in text
    first = runtime.keystore.audit_checkpoint(tenant_id)
    assert first is not None and first.seq == before

    # The next verification: the checkpoint the first took, and the entry this one anchors
    # (the chain has grown by the first verification's own entry, at least).
    grown = _head_seq(runtime, tenant_id)
    assert grown > before
    r = client.post("/audit/verify", data={"csrf_token": csrf})
    text = " ".join(r.text.split())
    when = first.taken_at.strftime("%Y-%m-%d %H:%M UTC")
    assert f"Anchored in the keystore at entry {before} ({when}); " in text
    assert f"this verification anchors entry {grown}." in text
    assert "No checkpoint" not in text

    # A broken chain: the checkpoint in force is still shown, and nothing is anchored.
    with transaction(runtime.sessions) as session:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq == 1)
            .values(details={"forged": True})
        )
    r = client.post("/audit/verify", data={"csrf_token": csrf}, headers={"HX-Request": "true"})
    text = " ".join(r.text.split())
    assert "Chain broken at entry 1" in text
    second = runtime.keystore.audit_checkpoint(tenant_id)
    assert second is not None and second.seq == grown
    assert f"Anchored in the keystore at entry {grown} (" in text
    assert "A broken chain is not anchored." in text and "this verification anchors" not in text


def test_the_page_writes_large_entry_numbers_with_separators(
    runtime: Runtime, tenant: str, browser: tuple[TestClient, str]
) -> None:
    client, csrf = browser
    with runtime.tenant_context(tenant) as ctx:
        audit.record_many(ctx, [audit.PendingEntry(AuditEvent.SUBJECT_VIEWED)] * 1000)
        tenant_id = ctx.tenant_id
    length = _head_seq(runtime, tenant_id)
    r = client.post("/audit/verify", data={"csrf_token": csrf})
    assert f"at entry {length:,}." in " ".join(r.text.split())


def test_the_api_answer_carries_the_checkpoint(
    runtime: Runtime, tenant: str, client: TestClient
) -> None:
    tenant_id = _tenant_id(runtime, tenant)
    r = client.post("/api/v1/audit/verify")
    body = r.json()
    assert body["ok"] is True and body["checkpoint"] is None
    assert body["anchors"] == body["checked"]
    taken = runtime.keystore.audit_checkpoint(tenant_id)
    assert taken is not None and taken.seq == body["anchors"]

    body = client.post("/api/v1/audit/verify").json()
    assert set(body["checkpoint"]) == {"seq", "taken_at"}
    assert body["checkpoint"]["seq"] == taken.seq
    assert datetime.fromisoformat(body["checkpoint"]["taken_at"]) == taken.taken_at
    assert body["anchors"] == body["checked"] > taken.seq
    assert taken.mac.hex() not in r.text + str(body)

    spec = client.get("/openapi.json").json()
    out = spec["components"]["schemas"]["VerifyOut"]["properties"]
    assert {"checkpoint", "anchors"} <= set(out) and "description" in out["checkpoint"]
    checkpoint = spec["components"]["schemas"]["CheckpointOut"]["properties"]
    assert set(checkpoint) == {"seq", "taken_at"}
