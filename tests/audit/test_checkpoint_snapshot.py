"""`pledge audit verify` walks every tenant's chain in one read-only snapshot, while the
service and the worker go on: a checkpoint taken meanwhile (by the worker, of entries
appended after the snapshot began) is ahead of what the snapshot can see. That is not a
cut, and must not be reported as one; a real cut still is."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, update

from pledge.audit import service as audit
from pledge.audit.events import AuditEvent
from pledge.audit.models import AuditEntry, AuditHead
from pledge.core.db import read_transaction, transaction
from pledge.runtime import Runtime
from pledge.tenants import service as tenants


def _append(runtime: Runtime, tenant: str, n: int) -> None:
    with runtime.tenant_context(tenant) as ctx:
        for k in range(n):
            audit.record(ctx, AuditEvent.SUBJECT_VIEWED, subject_id=uuid.uuid4(), details={"k": k})


def _checkpoint_now(runtime: Runtime, tenant_id: uuid.UUID) -> int:
    with transaction(runtime.sessions) as session:
        taken = audit.checkpoint(session, runtime.keystore, tenant_id)
    assert taken.verified.ok and taken.checkpoint is not None
    return taken.checkpoint.seq


def test_a_checkpoint_newer_than_the_snapshot_is_no_cut(runtime: Runtime, tenant: str) -> None:
    _append(runtime, tenant, 4)
    with read_transaction(runtime.sessions) as snapshot:
        # As the CLI does: the tenants are listed first, which fixes the snapshot.
        tenant_id = tenants.get_tenant_by_slug(snapshot, tenant).id
        seen = _checkpoint_now(runtime, tenant_id)
        # Meanwhile the service appends and the worker anchors the new end.
        _append(runtime, tenant, 3)
        assert _checkpoint_now(runtime, tenant_id) == seen + 3
        outcome = audit.checkpoint(snapshot, runtime.keystore, tenant_id)
        assert outcome.verified.ok, outcome.verified.reason
        assert outcome.verified.checked == seen
        # The checkpoint stays where it is: never moved backwards.
        assert outcome.checkpoint is not None and outcome.checkpoint.seq == seen + 3
        assert not outcome.moved
        assert audit.verify_chain(snapshot, runtime.keystore, tenant_id).ok
        # The worker's walk from the checkpoint on finds nothing of it here: nothing wrong.
        since = audit.checkpoint(snapshot, runtime.keystore, tenant_id, from_checkpoint=True)
        assert since.verified.ok and since.verified.checked == 0 and not since.moved
        assert since.checkpoint is not None and since.checkpoint.seq == seen + 3


def test_a_cut_behind_the_checkpoint_is_still_caught_from_a_snapshot(
    runtime: Runtime, tenant: str
) -> None:
    _append(runtime, tenant, 4)
    with read_transaction(runtime.sessions) as snapshot:
        tenant_id = tenants.get_tenant_by_slug(snapshot, tenant).id
        _append(runtime, tenant, 3)
        anchored = _checkpoint_now(runtime, tenant_id)
        # Someone with the data store alone cuts the last entries and rewinds the head.
        with transaction(runtime.sessions) as session:
            kept = session.get(AuditEntry, (tenant_id, anchored - 2))
            assert kept is not None
            session.execute(
                delete(AuditEntry).where(
                    AuditEntry.tenant_id == tenant_id, AuditEntry.seq > anchored - 2
                )
            )
            session.execute(
                update(AuditHead)
                .where(AuditHead.tenant_id == tenant_id)
                .values(seq=anchored - 2, mac=kept.mac)
            )
        result = audit.checkpoint(snapshot, runtime.keystore, tenant_id).verified
        assert not result.ok and result.reason is not None
        assert "are gone: a checkpoint of" in result.reason
    with read_transaction(runtime.sessions) as fresh:
        result = audit.verify_chain(fresh, runtime.keystore, tenant_id)
    assert not result.ok and result.first_bad_seq == anchored - 1
