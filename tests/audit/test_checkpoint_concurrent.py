"""The worker's checkpoint reads the chain's head, then walks the entries since the last
checkpoint, in an ordinary transaction. On PostgreSQL each statement sees what is committed
when it runs: an entry appended between the two reads made the chain look longer than its
head — "broken" in the worker's report, and no checkpoint — unless appends are held back
while it reads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.core.db import transaction
from pledge.runtime import Runtime


def test_an_entry_appended_during_the_workers_walk_is_no_break(
    runtime: Runtime, tenant: str
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers wait for the whole transaction already")
    with runtime.tenant_context(tenant) as ctx:
        tenant_id = ctx.tenant_id
        audit.record(ctx, AuditEvent.SUBJECT_VIEWED, subject_id=uuid.uuid4())
    with transaction(runtime.sessions) as session:
        first = audit.checkpoint(session, runtime.keystore, tenant_id)
    assert first.checkpoint is not None
    with runtime.tenant_context(tenant) as ctx:
        audit.record(ctx, AuditEvent.SUBJECT_VIEWED, subject_id=uuid.uuid4())
    appended: list[str] = []

    def append_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Just before the walk's query: the service appends an entry and commits (or, the
        head being held, gives up waiting for it)."""
        if appended or "FROM audit_entries" not in statement or "ORDER BY" not in statement:
            return
        appended.append("tried")
        try:
            with runtime.tenant_context(tenant) as other:
                other.session.execute(text("SET LOCAL lock_timeout = '500ms'"))
                audit.record(other, AuditEvent.SUBJECT_VIEWED, subject_id=uuid.uuid4())
            appended.append("committed")
        except OperationalError:
            appended.append("held back")

    event.listen(runtime.engine, "before_cursor_execute", append_meanwhile)
    try:
        with transaction(runtime.sessions) as session:
            outcome = audit.checkpoint(session, runtime.keystore, tenant_id, from_checkpoint=True)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", append_meanwhile)
    assert appended[0] == "tried"
    assert outcome.verified.ok, outcome.verified.reason
    assert outcome.checkpoint is not None and outcome.moved
    assert outcome.checkpoint.seq == first.checkpoint.seq + 1
    # The chain is whole, whatever became of the entry tried meanwhile.
    with transaction(runtime.sessions) as session:
        assert audit.verify_chain(session, runtime.keystore, tenant_id).ok
