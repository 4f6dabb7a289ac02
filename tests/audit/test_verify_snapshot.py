"""Verifying the chain from the console or the API walks a snapshot of its own: the tenant's
other writers (on SQLite: every writer) are not held back for the walk, and the entries they
commit meanwhile are still verified and anchored (the walk goes on from the snapshot's end
with the head held)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import OperationalError

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.db import transaction
from pledge.runtime import Runtime


def _head(runtime: Runtime, tenant: str) -> int:
    with runtime.tenant_context(tenant) as ctx:
        head = ctx.session.get(AuditHead, ctx.tenant_id)
        assert head is not None
        return head.seq


def test_a_writer_of_the_tenant_goes_on_while_the_chain_is_walked(
    runtime: Runtime, tenant: str
) -> None:
    postgresql = runtime.engine.dialect.name == "postgresql"
    for _ in range(3):
        with runtime.tenant_context(tenant) as ctx:
            audit.record(ctx, AuditEvent.SUBJECTS_LISTED)
    appended: list[str] = []

    def append_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """As the walk's query starts: another act of the tenant is audited and committed
        (or, were the head held for the walk, gives up waiting)."""
        if appended or "FROM audit_entries" not in statement or "ORDER BY" not in statement:
            return
        appended.append("tried")
        try:
            with runtime.tenant_context(tenant) as other:
                if postgresql:  # (SQLite's writer would wait out its busy timeout)
                    other.session.execute(text("SET LOCAL lock_timeout = '500ms'"))
                audit.record(other, AuditEvent.SUBJECTS_LISTED)
            appended.append("committed")
        except OperationalError:
            appended.append("held back")

    walked_from = _head(runtime, tenant)
    event.listen(runtime.engine, "before_cursor_execute", append_meanwhile)
    try:
        with runtime.tenant_context(tenant) as ctx:
            tenant_id = ctx.tenant_id
            verification = audit.verify_and_record(ctx)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", append_meanwhile)
    assert appended == ["tried", "committed"]
    assert verification.verified.ok, verification.verified.reason
    # The entry committed during the walk was verified too, and is the one anchored.
    assert verification.verified.checked == walked_from + 1
    assert verification.anchors == walked_from + 1
    anchored = runtime.keystore.audit_checkpoint(tenant_id)
    assert anchored is not None and anchored.seq == walked_from + 1
    with transaction(runtime.sessions) as session:
        assert audit.verify_chain(session, runtime.keystore, tenant_id).ok


def test_verifying_through_the_api_anchors_a_sound_chain_and_names_a_tampered_entry(
    runtime: Runtime, client: TestClient, tenant: str
) -> None:
    for _ in range(3):
        assert client.get("/api/v1/subjects").status_code == 200
    last = _head(runtime, tenant)
    r = client.post("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] and r.json()["checked"] == last and r.json()["anchors"] == last
    with runtime.tenant_context(tenant) as ctx:
        tenant_id = ctx.tenant_id
    anchored = runtime.keystore.audit_checkpoint(tenant_id)
    assert anchored is not None and anchored.seq == last

    with transaction(runtime.sessions) as session:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.seq == 2)
            .values(details={"forged": True})
        )
    r = client.post("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    assert not r.json()["ok"] and r.json()["first_bad_seq"] == 2
    assert r.json()["anchors"] is None
    assert runtime.keystore.audit_checkpoint(tenant_id) == anchored  # not moved
    # The failed verification is on the record too.
    with runtime.tenant_context(tenant) as ctx:
        events = ctx.session.scalars(
            select(AuditEntry.details)
            .where(
                AuditEntry.tenant_id == tenant_id,
                AuditEntry.event == AuditEvent.AUDIT_VERIFIED.value,
            )
            .order_by(AuditEntry.seq)
        ).all()
    assert [e["ok"] for e in events] == [True, False]
